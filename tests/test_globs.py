"""Globs on model IDs and target names: what include/exclude, routes and
``changes --model`` select."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.globs import ModelFilter, glob_problem, matches


@pytest.mark.parametrize(
    ("name", "patterns", "expected"),
    [
        ("meta-llama/llama-3.3-70b", ("meta-llama/*",), True),
        ("meta-llama/llama-3.3-70b", ("Meta-Llama/*",), False),  # case-sensitive
        ("deepseek/deepseek-r1:free", ("*:free",), True),
        ("deepseek/deepseek-r1:free-ish", ("*:free",), False),  # the whole name
        ("gpt-4o", ("gpt-4?",), True),
        ("gpt-4o-mini", ("gpt-4?",), False),
        ("claude-3", ("claude-[0-9]",), True),
        ("claude-x", ("claude-[!x]",), False),
        ("a/b/c", ("a/*",), True),  # * crosses "/", as in shell case patterns
        ("anything", (), False),
        ("dos-ai", ("openrouter", "dos-*"), True),
    ],
)
def test_a_glob_matches_the_whole_name_case_sensitively(
    name: str, patterns: tuple[str, ...], expected: bool
) -> None:
    assert matches(name, patterns) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "is not a glob"),
        (3, "is not a glob"),
        ("meta-llama/[", "has a '[' with no closing ']'"),
        ("x[!", "has a '[' with no closing ']'"),
        ("x[]", "has a '[' with no closing ']'"),
        ("x[]]", None),
        ("x[!]]", None),
        ("a]b", None),
        ("meta-llama/*", None),
    ],
)
def test_an_unusable_glob_says_why(pattern: object, problem: str | None) -> None:
    found = glob_problem(pattern)
    assert found == problem if problem is None else problem in (found or "")


@pytest.mark.parametrize(
    ("include", "exclude", "passing"),
    [
        ((), (), {"meta-llama/a", "meta-llama/a:free", "deepseek/b", "gpt-4o"}),
        (("meta-llama/*", "deepseek/*"), (), {"meta-llama/a", "meta-llama/a:free", "deepseek/b"}),
        ((), ("*:free",), {"meta-llama/a", "deepseek/b", "gpt-4o"}),
        (("meta-llama/*",), ("*:free",), {"meta-llama/a"}),  # exclude wins
    ],
)
def test_include_empty_means_all_and_exclude_wins(
    include: tuple[str, ...], exclude: tuple[str, ...], passing: set[str]
) -> None:
    ids = ["meta-llama/a", "meta-llama/a:free", "deepseek/b", "gpt-4o"]
    selected = ModelFilter(include, exclude)
    assert selected.select(ids) == passing
    assert bool(selected) is bool(include or exclude)


_names = st.text(alphabet="ab/:-*?x", max_size=8)


@given(name=_names, patterns=st.lists(st.text(alphabet="ab/:-*?x", min_size=1, max_size=5)))
def test_matching_is_fnmatchcase_of_any(name: str, patterns: list[str]) -> None:
    assert matches(name, tuple(patterns)) == any(fnmatch.fnmatchcase(name, p) for p in patterns)


@given(
    ids=st.sets(_names, max_size=12),
    include=st.lists(_names.filter(bool), max_size=3),
    exclude=st.lists(_names.filter(bool), max_size=3),
)
def test_a_filter_never_selects_an_excluded_id_nor_more_than_include(
    ids: set[str], include: list[str], exclude: list[str]
) -> None:
    selected = ModelFilter(tuple(include), tuple(exclude)).select(ids)
    assert selected <= ids
    assert not any(matches(i, tuple(exclude)) for i in selected)
    if include:
        assert all(matches(i, tuple(include)) for i in selected)
    else:
        assert selected == {i for i in ids if not matches(i, tuple(exclude))}

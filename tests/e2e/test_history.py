"""History a person wants to read: one model's life, and exports for spreadsheets."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from conftest import Workspace, dos_target
from servers import ProviderServer, model


def test_the_life_of_one_model_and_the_export(
    workspace: Workspace, provider: ProviderServer
) -> None:
    workspace.write_config([dos_target(provider, watch_fields=["pricing.prompt"])])
    priced = {**model("deepseek-v3"), "pricing": {"prompt": "0.27"}}
    provider.models = [model("dos-ai"), priced]
    assert workspace.run("check").code == 0
    provider.models = [model("dos-ai")]  # deepseek-v3 goes ...
    assert workspace.run("check").code == 0
    provider.models = [model("dos-ai"), {**priced, "pricing": {"prompt": "0.14"}}]  # ... back
    assert workspace.run("check").code == 0
    provider.models = [model("dos-ai"), {**priced, "pricing": {"prompt": "0.12"}}]
    assert workspace.run("check").code == 0

    life = workspace.run("model", "deepseek-v3", "--json").json()
    (on_dos,) = life["targets"]
    assert on_dos["target"] == "dos-ai" and on_dos["listed_now"] is True
    assert [(e["what"], e.get("old"), e.get("new")) for e in on_dos["events"]] == [
        ("removed", None, None),
        ("added", None, None),
        ("changed", "0.14", "0.12"),
    ]
    assert on_dos["first_seen"] < on_dos["events"][0]["at"] <= on_dos["last_seen"]
    text = workspace.run("model", "deepseek-v3").stdout
    assert "went away" in text and "came back" in text and "pricing.prompt 0.14 → 0.12" in text
    unknown = workspace.run("model", "gpt-9")
    assert unknown.code == 2 and "no poll ever listed a model 'gpt-9'" in unknown.stderr

    exported = workspace.run("export", "--format", "csv")
    assert exported.code == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["change"], r["model_id"], r["field"], r["old"], r["new"]) for r in rows] == [
        ("removed", "deepseek-v3", "", "", ""),
        ("added", "deepseek-v3", "", "", ""),
        ("changed", "deepseek-v3", "pricing.prompt", "0.14", "0.12"),
    ]
    assert all(r["target"] == "dos-ai" and r["detected_at"].endswith("Z") for r in rows)
    as_json = workspace.run("export", "--format", "json", "--target", "dos-ai").json()
    assert [len(e["added"]) + len(e["removed"]) + len(e["changed"]) for e in as_json] == [1, 1, 1]
    assert workspace.run("export", "--format", "xml").code == 2


def test_a_models_life_is_told_in_time_order(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)])
    for ids in (["dos-ai"], ["dos-ai", "qwen3"], ["dos-ai"], ["dos-ai"]):
        provider.set_ids(ids)  # qwen3 appears after the baseline, then goes for good
        assert ws.run("check").code == 0

    header, *lines = ws.run("model", "qwen3").stdout.splitlines()
    assert header == "qwen3 on dos-ai (not listed now)"
    told = [line.split(None, 1) for line in lines]
    times = [datetime.fromisoformat(at) for at, _ in told]
    assert times == sorted(times), lines
    # it was never there before, so it did not "come back"; it was last seen before
    # the poll that found it gone
    assert [what for _, what in told] == ["first seen", "added", "last seen", "went away"]

    (life,) = ws.run("model", "qwen3", "--json").json()["targets"]
    at = [(datetime.fromisoformat(e["at"]), e["event_id"]) for e in life["events"]]
    assert at == sorted(at) and [e["what"] for e in life["events"]] == ["added", "removed"]
    assert life["first_seen"] == life["events"][0]["at"] == life["last_seen"]


def test_a_prune_leaves_every_models_life_and_past_lists_reading_as_before(
    workspace: Workspace, provider: ProviderServer
) -> None:
    """Prune keeps what a model's life needs: its first sighting (not the poll that
    confirmed it) and its last sighting before it went (not the old baseline), and
    each side of those moments, so ``model`` and ``models --at`` read the same."""
    ws = workspace
    ws.write_config([dos_target(provider, confirm_polls=2)])
    plan = [["dos-ai"]] + [["dos-ai", "qwen3"]] * 4 + [["dos-ai"]] * 4
    for ids in plan:  # qwen3 seen, confirmed, listed a while, missed, confirmed gone
        provider.set_ids(ids)
        assert ws.run("check").code == 0
    polls = [p["fetched_at"] for p in reversed(ws.listing("history"))]
    assert len(polls) == len(plan)

    def read() -> tuple[object, ...]:
        at = [
            [m["id"] for m in ws.run("models", "--at", when, "--json").json()["models"]]
            for when in polls
        ]
        return ws.run("model", "qwen3", "--json").json(), ws.run("model", "qwen3").stdout, at

    before = read()
    life, text, at = before
    assert at == plan
    (on_dos,) = life["targets"]  # type: ignore[index]
    assert (on_dos["first_seen"], on_dos["last_seen"]) == (polls[1], polls[4])
    told = [line.split(None, 1)[1] for line in str(text).splitlines()[1:]]
    assert told == ["first seen", "added", "last seen", "went away"]  # not "came back"

    pruned = ws.run("prune", "--older-than", "0.001s", "--vacuum", "--json")
    assert pruned.code == 0, pruned.stderr
    assert pruned.json()["snapshots"] > 0
    vacuum = pruned.json()["vacuum"]  # sizes on disk (shrinking: tests/store/test_retention.py)
    assert vacuum["bytes_before"] > 0 and vacuum["bytes_after"] > 0
    assert len(ws.listing("history")) < len(plan)
    assert read() == before

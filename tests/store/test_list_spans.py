"""List membership stored as spans over lineages (schema 0005), on SQLite and PostgreSQL.

What a user would notice: every snapshot reads back exactly the models it saw, however
its list was stored; a changed big list costs rows for what changed, not for every
model; SQL tools still join ``model_list_entries``; retention keeps the rest readable.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from builders import count_rows, record_poll
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from monitor.modellist import ModelList
from monitor.store import Store, lists, open_engine, schema, upgrade
from monitor.store.lists import LINEAGE_SLACK

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def model(i: int, price: int = 0) -> dict[str, object]:
    return {"id": f"m{i:03d}", "object": "model", "pricing": {"prompt": str(price)}}


def poll(store: Store, target: str, at: datetime, objects: list[dict[str, object]]) -> int:
    with store.transaction() as tx:
        return record_poll(tx, target, at, ModelList.from_objects(objects)).id


def read_back(store: Store, snapshot_id: int) -> list[dict[str, object]]:
    return store.models(store.snapshot(snapshot_id))


def by_id(objects: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(objects, key=lambda o: str(o["id"]))


def view_ids(store: Store, snapshot_id: int) -> list[str]:
    """What a SQL tool sees through the documented join."""
    with store.engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT o.model_id FROM snapshots s "
                    "JOIN model_list_entries e ON e.list_id = s.model_list_id "
                    "JOIN model_objects o ON o.id = e.object_id "
                    "WHERE s.id = :id ORDER BY o.model_id"
                ),
                {"id": snapshot_id},
            )
        )


def test_every_snapshot_reads_back_what_it_saw(store: Store) -> None:
    lists = [
        [model(i) for i in range(10)],
        [model(i) for i in range(10) if i != 3],  # one dropped
        [model(i) for i in range(11) if i != 3],  # one added
        [model(i, price=1 if i == 5 else 0) for i in range(11) if i != 3],  # a price
        [model(i) for i in range(11)],  # the dropped one back, the price back
        [],  # an empty list (allow_empty)
        [model(i) for i in range(2)],
    ]
    ids = [poll(store, "dos-ai", T0 + n * MINUTE, lst) for n, lst in enumerate(lists)]
    for snapshot_id, lst in zip(ids, lists, strict=True):
        assert read_back(store, snapshot_id) == by_id(lst)
        assert view_ids(store, snapshot_id) == sorted(str(o["id"]) for o in lst)
        with store.transaction() as tx:
            assert tx.snapshot_model_ids(snapshot_id) == {o["id"] for o in lst}


def test_a_changed_big_list_stores_rows_for_the_change_only(store: Store) -> None:
    big = [model(i) for i in range(400)]
    poll(store, "openrouter", T0, big)
    assert count_rows(store, schema.ModelListSpan) == 400
    for n in range(1, 11):  # ten changes: one model replaced, then one price changed
        big = [*big[1:], model(400 + n)] if n % 2 else [*big[:-1], model(400 + n - 1, price=n)]
        poll(store, "openrouter", T0 + n * MINUTE, big)
    assert count_rows(store, schema.ModelListRow) == 11
    assert count_rows(store, schema.ModelListSpan) == 410  # a span per new object, no more
    assert count_rows(store, schema.ModelListLineage) == 1


def test_a_lineage_restarts_before_reading_a_list_gets_dear(store: Store) -> None:
    """Spans of a lineage stay within twice the list plus the slack, so reading any
    list reads a bounded number of rows however long the history."""
    size = 20
    limit = 2 * size + LINEAGE_SLACK
    snapshots = []
    for n in range(3 * limit):
        lst = [model(n + i) for i in range(size)]  # a window sliding by one model
        snapshots.append((poll(store, "sliding", T0 + n * MINUTE, lst), lst))
    with store.engine.connect() as connection:
        widest = connection.scalar(select(func.max(schema.ModelListLineage.span_count)))
        counted = connection.execute(
            select(schema.ModelListSpan.lineage_id, func.count()).group_by(
                schema.ModelListSpan.lineage_id
            )
        ).all()
    assert widest is not None and widest <= limit
    assert all(n <= limit for _, n in counted)
    assert len(counted) >= 3
    for snapshot_id, lst in snapshots[:: len(snapshots) // 7]:
        assert read_back(store, snapshot_id) == by_id(lst)


def test_targets_sharing_a_list_then_diverging_read_back_their_own(store: Store) -> None:
    common = [model(i) for i in range(6)]
    poll(store, "key-a", T0, common)
    poll(store, "key-b", T0, common)
    seen = {}
    for n in range(1, 6):
        a = [*common, model(100 + n)]
        b = [o for o in common if o["id"] != f"m{n:03d}"]
        seen[poll(store, "key-a", T0 + n * MINUTE, a)] = a
        seen[poll(store, "key-b", T0 + n * MINUTE, b)] = b
    for snapshot_id, lst in seen.items():
        assert read_back(store, snapshot_id) == by_id(lst)


def test_concurrent_writers_extending_one_lineage(db_url: str) -> None:
    """Two replicas (two engines) store different next lists of targets that share a
    lineage, at the same moment: both read back exactly."""
    first, second = Store(open_engine(db_url, create=True)), None
    try:
        upgrade(first.engine)
        second = Store(open_engine(db_url, create=False))
        base = [model(i) for i in range(50)]
        for name in ("a", "b", "c", "d"):
            poll(first, name, T0, base)
        barrier = threading.Barrier(2)
        results: dict[int, list[dict[str, object]]] = {}
        errors: list[BaseException] = []

        def writer(store: Store, names: tuple[str, str], offset: int) -> None:
            try:
                barrier.wait()
                for round_ in range(1, 6):
                    for name in names:
                        lst = [*base, model(1000 + offset + round_)]
                        if name in ("b", "d"):
                            lst = lst[round_:]
                        results[poll(store, name, T0 + round_ * MINUTE, lst)] = lst
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=writer, args=(first, ("a", "b"), 0)),
            threading.Thread(target=writer, args=(second, ("c", "d"), 100)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        assert len(results) == 20
        for snapshot_id, lst in results.items():
            assert read_back(first, snapshot_id) == by_id(lst)
    finally:
        first.close()
        if second is not None:
            second.close()


def test_pruning_keeps_what_remains_readable_and_frees_the_rest(store: Store) -> None:
    day = timedelta(days=1)
    lists = {}
    for n in range(30):
        lst = [model(i) for i in range(n, n + 10)]  # one model replaced a day
        lists[poll(store, "dos-ai", T0 + n * day, lst)] = lst
    spans_before = count_rows(store, schema.ModelListSpan)
    report = store.prune(T0 + 20 * day)
    assert report.snapshots == 20 and report.lists == 20
    assert count_rows(store, schema.ModelListSpan) < spans_before
    assert report.objects == 20  # m000..m019 are in no remaining list
    for snapshot_id, lst in list(lists.items())[20:]:
        assert read_back(store, snapshot_id) == by_id(lst)
    # the lineage goes on from where it was
    nxt = [model(i) for i in range(31, 41)]
    assert read_back(store, poll(store, "dos-ai", T0 + 31 * day, nxt)) == by_id(nxt)


def unlisted_objects(store: Store) -> int:
    """Model objects stored that no list holds: what retention should have freed."""
    with store.engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT count(*) FROM model_objects o WHERE NOT EXISTS "
                    "(SELECT 1 FROM model_list_entries e WHERE e.object_id = o.id)"
                )
            )
            or 0
        )


def test_pruning_a_list_flapped_away_from_frees_what_only_it_held(store: Store) -> None:
    a = [model(i) for i in range(10)]
    b = [*a, model(99)]
    poll(store, "dos-ai", T0, a)
    poll(store, "dos-ai", T0 + MINUTE, b)
    poll(store, "dos-ai", T0 + 2 * MINUTE, a)  # back: the lineage's newest list is b
    report = store.prune(T0 + 3 * MINUTE)
    assert (report.lists, report.objects) == (1, 1)  # b, and m099 that only b held
    assert unlisted_objects(store) == 0
    c = [*a, model(100)]
    assert read_back(store, poll(store, "dos-ai", T0 + 4 * MINUTE, c)) == by_id(c)
    assert read_back(store, store.history()[1].id) == by_id(a)


def test_an_abandoned_lineage_frees_what_only_its_gone_lists_held(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists, "LINEAGE_SLACK", 0)
    a = [model(i) for i in range(10)]
    poll(store, "x", T0, a)
    poll(store, "x", T0 + MINUTE, [*a, model(99)])
    poll(store, "x", T0 + 2 * MINUTE, [model(i) for i in range(50, 60)])  # a new lineage
    poll(store, "y", T0 + 3 * MINUTE, a)  # keeps a, in the old lineage
    report = store.prune(T0 + 3 * MINUTE)
    assert report.objects == 1  # m099
    assert unlisted_objects(store) == 0
    assert read_back(store, store.history(target="y")[0].id) == by_id(a)


universe = st.integers(min_value=0, max_value=11)
a_list = st.dictionaries(universe, st.integers(min_value=0, max_value=2), max_size=10)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    history=st.lists(st.tuples(st.sampled_from(["x", "y"]), a_list), min_size=1, max_size=12),
    prune_at=st.integers(min_value=0, max_value=12),
    after_prune=st.lists(st.tuples(st.sampled_from(["x", "y"]), a_list), max_size=3),
    slack=st.sampled_from([0, 2, LINEAGE_SLACK]),  # small: lineages restart often
)
def test_any_history_reads_back_exactly_even_after_pruning(
    store: Store,
    history: list[tuple[str, dict[int, int]]],
    prune_at: int,
    after_prune: list[tuple[str, dict[int, int]]],
    slack: int,
) -> None:
    with patch.object(lists, "LINEAGE_SLACK", slack):
        _history_reads_back(store, history, prune_at, after_prune)


def _history_reads_back(
    store: Store,
    history: list[tuple[str, dict[int, int]]],
    prune_at: int,
    after_prune: list[tuple[str, dict[int, int]]],
) -> None:
    with store.engine.begin() as connection:  # a fresh database per example
        for table in ("snapshots", "model_lists", "model_list_spans", "model_list_lineages"):
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("DELETE FROM model_objects"))
    seen = []
    for n, (target, content) in enumerate(history):
        lst = [model(i, price) for i, price in content.items()]
        seen.append((poll(store, target, T0 + n * MINUTE, lst), lst))
    store.prune(T0 + prune_at * MINUTE)
    kept = {s.id for s in store.history()}
    assert kept  # each target's latest stays
    assert unlisted_objects(store) == 0
    for snapshot_id, lst in seen:
        if snapshot_id in kept:
            assert read_back(store, snapshot_id) == by_id(lst)
            assert view_ids(store, snapshot_id) == sorted(str(o["id"]) for o in lst)
    # the lineages go on after pruning
    for n, (target, content) in enumerate(after_prune, start=len(history)):
        lst = [model(i, price) for i, price in content.items()]
        assert read_back(store, poll(store, target, T0 + n * MINUTE, lst)) == by_id(lst)

"""The look count (replicas.looks, first_look_at, looks_over), the durations a first look is placed from and the
judged copies the look budget's strictness is decided from, on every backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from store_helpers import make_replication

from imagesync.adapters.sql import SqlStateStore, downgrade, make_engine, upgrade
from imagesync.adapters.sql.schema import replicas, replications
from imagesync.domain.models import Replica
from imagesync.domain.states import ReplicaState

S = ReplicaState
T0 = datetime(2026, 11, 29, 8, 0, 0, 250000, tzinfo=timezone.utc)


def _move(store: SqlStateStore, r: Replica, state: ReplicaState, at: datetime, **changes: object) -> Replica:
    saved = store.save_replica(r.moved(state, at, **changes), expected_version=r.version, expected_state=r.state)
    assert saved is not None
    return saved


def _copy(
    store: SqlStateStore,
    image: str,
    region: str,
    start: datetime,
    took: float,
    end: S = S.SUCCEEDED,
    looks_over: int | None = None,
    pace_changed: int | None = None,
) -> str:
    rep = store.create_replication(make_replication([image], [region], created_at=start))
    r = _move(store, rep.replicas[0], S.COPYING, start, destination_image_id="img-d" + image[-7:], started_at=start)
    end_at = start + timedelta(seconds=took)
    return _move(store, r, end, end_at, ended_at=end_at, looks_over=looks_over, pace_changed=pace_changed).id


def test_recent_judged_newest_first_with_either_verdict_skipping_copies_with_neither(store: SqlStateStore) -> None:
    _copy(store, "img-0000001", "ap-shanghai", T0, 700.0, looks_over=1)
    _copy(store, "img-0000002", "ap-beijing", T0 + timedelta(minutes=1), 1200.0, looks_over=0)
    _copy(store, "img-0000003", "ap-shanghai", T0 + timedelta(minutes=2), 650.0)  # neither verdict
    judged = _copy(store, "img-0000004", "ap-shanghai", T0 + timedelta(minutes=3), 800.0, looks_over=2)
    # a strict budget's copy: its looks never went ahead, its pace judged (08:14:40 + 600 s)
    _copy(store, "img-0000007", "ap-chengdu", T0 + timedelta(minutes=4, seconds=40), 600.0, pace_changed=1)
    _copy(store, "img-0000005", "ap-shanghai", T0 + timedelta(minutes=4), 300.0, end=S.FAILED, looks_over=1)
    _copy(store, "img-0000006", "ap-nanjing", T0 - timedelta(days=2), 900.0, looks_over=1)  # before the window
    since = T0 - timedelta(days=1)
    got = store.recent_judged(since, 10)
    # ends: #1 08:11:40, #2 08:21:00, #4 08:16:20, #7 08:14:40 -> newest end first
    assert got == [("ap-beijing", 0, None), ("ap-shanghai", 2, None), ("ap-chengdu", None, 1), ("ap-shanghai", 1, None)]
    assert store.recent_judged(since, 1) == got[:1]
    assert store.recent_judged(since, 0) == []
    stored = store.get_replica(judged)
    assert stored is not None and stored.looks_over == 2 and stored.pace_changed is None


def test_recent_durations_newest_succeeded_first_within_the_window(store: SqlStateStore) -> None:
    _copy(store, "img-0000001", "ap-shanghai", T0, 700.5)
    _copy(store, "img-0000002", "ap-beijing", T0 + timedelta(minutes=1), 1200.0)
    _copy(store, "img-0000003", "ap-shanghai", T0 + timedelta(minutes=2), 650.0)
    _copy(store, "img-0000004", "ap-shanghai", T0 + timedelta(minutes=3), 300.0, end=S.FAILED)  # not a duration
    _copy(store, "img-0000005", "ap-nanjing", T0 - timedelta(days=4), 900.0)  # before the window
    # an encrypted copy (same region, its own pace) is no sample either
    plain = make_replication(["img-0000006"], ["ap-shanghai"], created_at=T0)
    encrypted = plain.model_copy(update={"replicas": [plain.replicas[0].model_copy(update={"kms_key_id": "kms-1"})]})
    rep = store.create_replication(encrypted)
    enc = _move(store, rep.replicas[0], S.COPYING, T0, destination_image_id="img-d0000006", started_at=T0)
    _move(store, enc, S.SUCCEEDED, T0 + timedelta(seconds=60))
    # a copy still in flight: no end yet
    rep = store.create_replication(make_replication(["img-0000007"], ["ap-shanghai"], created_at=T0))
    _move(store, rep.replicas[0], S.COPYING, T0, destination_image_id="img-d0000007", started_at=T0)

    since = T0 - timedelta(days=3)
    got = store.recent_durations(since, 10)
    # ends: #1 at 08:11:40.75, #2 at 08:21:00.25, #3 at 08:12:50.25 -> newest end first
    assert got == [("ap-beijing", 1200.0), ("ap-shanghai", 650.0), ("ap-shanghai", 700.5)]
    assert store.recent_durations(since, 2) == got[:2]
    assert store.recent_durations(T0 + timedelta(minutes=12), 10) == got[:2]  # ended at or after `since`
    assert store.recent_durations(since, 0) == []


def test_looks_and_first_look_round_trip_through_both_writes(store: SqlStateStore) -> None:
    rep = store.create_replication(make_replication(["img-0000001"], ["ap-shanghai", "ap-beijing"], created_at=T0))
    fresh = store.get_replication(rep.id)
    assert fresh is not None and {(r.looks, r.first_look_at) for r in fresh.replicas} == {(0, None)}
    a, b = (
        _move(store, r, S.COPYING, T0, destination_image_id=f"img-d000000{i}", started_at=T0)
        for i, r in enumerate(rep.replicas)
    )
    first = T0 + timedelta(minutes=10)
    store.save_progress(
        [(r.moved(S.COPYING, first, sync_percent=50, looks=1, first_look_at=first), r.version) for r in (a, b)]
    )
    a2, b2 = (store.get_replica(r.id) for r in (a, b))
    assert a2 is not None and b2 is not None
    assert (a2.looks, a2.first_look_at, b2.looks, b2.first_look_at) == (1, first, 1, first)
    # the look that sees the end is counted with the end (save_replica)
    ended = _move(store, a2, S.SUCCEEDED, first + timedelta(minutes=5), looks=2)
    assert ended.looks == 2
    stored = store.get_replica(a2.id)
    assert stored is not None and (stored.looks, stored.first_look_at) == (2, first)


def _stored_as_of(engine: Engine, revision: str, leave_out: set[str], **values: object) -> str:
    """A replication and its replica as `revision` stored them (the Replica's fields but `leave_out`); the id."""
    assert upgrade(engine, revision) == revision
    rep = make_replication(["img-0000001"], ["ap-shanghai"], created_at=T0)
    row = rep.replicas[0]
    with engine.begin() as conn:
        conn.execute(
            insert(replications).values(
                id=rep.id,
                source_region="ap-guangzhou",
                image_ids="[]",
                destination_regions="[]",
                dry_run=False,
                origin="cli",
                requested_by="me",
                created_at=T0,
            )
        )
        fields = {name: getattr(row, name) for name in Replica.model_fields if name not in leave_out}
        fields.update(state=row.state.value, inflight_key="k", **values)
        conn.execute(insert(replicas).values(**fields))
    return row.id


@pytest.mark.parametrize(
    ("before", "after", "leave_out", "values", "new", "kept"),
    [
        # 0007: no existing replica gets a looks_over verdict; looks are kept both ways
        ("0006", "0007", {"looks_over", "pace_changed"}, {"looks": 3}, "looks_over", "looks"),
        # 0008: no existing replica gets a pace verdict; looks_over is kept both ways
        ("0007", "0008", {"pace_changed"}, {"looks": 2, "looks_over": 1}, "pace_changed", "looks_over"),
    ],
)
def test_upgrade_gives_existing_replicas_no_verdict_and_downgrade_keeps_them(
    empty_url: str, before: str, after: str, leave_out: set[str], values: dict[str, int], new: str, kept: str
) -> None:
    engine = make_engine(empty_url)
    row_id = _stored_as_of(engine, before, leave_out, **values)
    assert upgrade(engine, after) == after
    with engine.connect() as conn:
        got = conn.execute(select(replicas.c[kept], replicas.c[new])).all()
    assert [tuple(g) for g in got] == [(values[kept], None)]
    assert downgrade(engine, before) == before
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT id, {kept} FROM replicas")).all() == [(row_id, values[kept])]


def test_upgrade_to_0005_gives_existing_replicas_no_looks_and_downgrade_keeps_them(empty_url: str) -> None:
    engine = make_engine(empty_url)
    row_id = _stored_as_of(engine, "0004", {"looks", "first_look_at", "looks_over", "pace_changed"})
    assert upgrade(engine, "0005") == "0005"
    with engine.connect() as conn:
        got = conn.execute(select(replicas.c.looks, replicas.c.first_look_at)).all()
    assert [tuple(g) for g in got] == [(0, None)]
    assert downgrade(engine, "0004") == "0004"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM replicas")).scalars().all() == [row_id]

"""The StateStore contract, run unchanged on SQLite, MariaDB/MySQL and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from store_helpers import make_replication, utcnow

from imagesync.adapters.sql import SqlStateStore
from imagesync.domain.errors import AlreadyInFlight
from imagesync.domain.models import CompletionMessage, InFlight, Replica
from imagesync.domain.states import IllegalTransition, ReplicaState

S = ReplicaState
T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def _advance(store: SqlStateStore, r: Replica, state: ReplicaState, **changes: object) -> Replica:
    saved = store.save_replica(r.moved(state, utcnow(), **changes), expected_version=r.version, expected_state=r.state)
    assert saved is not None
    return saved


def _finish(store: SqlStateStore, r: Replica) -> Replica:
    r = _advance(store, r, S.COPYING, destination_image_id="img-00000001", started_at=utcnow())
    return _advance(store, r, S.SUCCEEDED)


# -- replications ----------------------------------------------------------------------------------------------


def test_create_and_get_round_trip_with_utc_datetimes(store: SqlStateStore) -> None:
    cst = timezone(timedelta(hours=8))
    rep = make_replication(["img-aaaaaaa1", "img-aaaaaaa2"], ["ap-shanghai", "ap-beijing"], created_at=T0)
    rep = rep.model_copy(update={"name": "golden", "requested_by": "alice", "created_at": T0.astimezone(cst)})
    assert store.create_replication(rep).id == rep.id
    got = store.get_replication(rep.id)
    assert got is not None
    assert got == rep  # same instants, same fields, replicas in request order
    assert [(r.source_image_id, r.destination_region) for r in got.replicas] == [
        ("img-aaaaaaa1", "ap-shanghai"),
        ("img-aaaaaaa1", "ap-beijing"),
        ("img-aaaaaaa2", "ap-shanghai"),
        ("img-aaaaaaa2", "ap-beijing"),
    ]
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert got.created_at == T0 and got.created_at.microsecond == 123456
    for r in got.replicas:
        assert r.deadline_at.utcoffset() == timedelta(0) and r.version == 0
    assert store.get_replica(got.replicas[0].id) == got.replicas[0]


def test_unknown_ids_are_none(store: SqlStateStore) -> None:
    assert store.get_replication("rep-nope") is None
    assert store.get_replica("rpl-nope") is None
    assert store.find_active("ap-guangzhou", "img-00000000", "ap-shanghai") is None


def test_naive_datetimes_are_refused(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    rep = rep.model_copy(update={"created_at": datetime(2026, 1, 1)})
    with pytest.raises(Exception, match="naive"):
        store.create_replication(rep)
    assert store.get_replication(rep.id) is None


def test_second_copy_in_flight_is_refused_with_the_existing_id(store: SqlStateStore) -> None:
    first = make_replication(["img-aaaaaaa1"], ["ap-shanghai", "ap-beijing"])
    store.create_replication(first)
    second = make_replication(["img-aaaaaaa1", "img-aaaaaaa2"], ["ap-beijing"])
    with pytest.raises(AlreadyInFlight) as err:
        store.create_replication(second)
    assert err.value.replication_id == first.id
    assert store.get_replication(second.id) is None  # nothing of it inserted
    assert store.find_active("ap-guangzhou", "img-aaaaaaa2", "ap-beijing") is None
    active = store.find_active("ap-guangzhou", "img-aaaaaaa1", "ap-beijing")
    assert active is not None and active.replication_id == first.id


def test_copy_can_be_requested_again_once_terminal(store: SqlStateStore) -> None:
    first = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    store.create_replication(first)
    _finish(store, first.replicas[0])
    assert store.find_active("ap-guangzhou", "img-aaaaaaa1", "ap-shanghai") is None
    again = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    store.create_replication(again)
    found = store.find_active("ap-guangzhou", "img-aaaaaaa1", "ap-shanghai")
    assert found is not None and found.replication_id == again.id


def test_create_is_idempotent_by_replication_id(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    store.create_replication(rep)
    assert store.create_replication(rep) == rep
    assert store.count_by_state()["PENDING"] == 1


def test_terminal_replicas_at_create_go_to_the_outbox(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"], state=S.FAILED)
    rep = rep.model_copy(
        update={"replicas": [rep.replicas[0].model_copy(update={"error_code": "Region.QuotaExceeded"})]}
    )
    store.create_replication(rep)
    msgs = store.pending_outbox()
    assert [(m.replica_id, m.state, m.error_code) for m in msgs] == [
        (rep.replicas[0].id, S.FAILED, "Region.QuotaExceeded")
    ]
    assert store.find_active("ap-guangzhou", "img-aaaaaaa1", "ap-shanghai") is None
    store.create_replication(make_replication(["img-aaaaaaa1"], ["ap-shanghai"]))  # not in flight


def test_duplicate_copy_inside_one_replication_is_a_value_error(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaa1", "img-aaaaaaa1"], ["ap-shanghai"])
    with pytest.raises(ValueError):
        store.create_replication(rep)


def test_racing_creates_of_one_copy_admit_exactly_one(store: SqlStateStore) -> None:
    reps = [make_replication(["img-aaaaaaa1"], ["ap-shanghai"]) for _ in range(8)]
    barrier = threading.Barrier(len(reps))
    outcomes: list[str] = []

    def go(i: int) -> None:
        barrier.wait()
        try:
            store.create_replication(reps[i])
            outcomes.append("won:" + reps[i].id)
        except AlreadyInFlight as exc:
            outcomes.append("refused:" + exc.replication_id)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(reps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o.split(":")[1] for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1, outcomes
    assert all(o == "refused:" + winners[0] for o in outcomes if o.startswith("refused:"))
    assert store.count_by_state()["PENDING"] == 1


def test_list_newest_first_with_cursor_and_filters(store: SqlStateStore) -> None:
    reps = []
    for i in range(7):
        rep = make_replication([f"img-0000000{i}"], ["ap-shanghai", "ap-beijing"], created_at=T0 + timedelta(i))
        store.create_replication(rep)
        reps.append(rep)
    # two replications created in the same microsecond: the id breaks the tie
    twin = make_replication(["img-0000000x"], ["ap-chengdu"], created_at=T0 + timedelta(6))
    store.create_replication(twin)
    expected = sorted([*reps, twin], key=lambda r: (r.created_at, r.id), reverse=True)
    seen, cursor = [], None
    while True:
        page, cursor = store.list_replications(limit=3, cursor=cursor)
        seen.extend(page)
        if cursor is None:
            break
    assert [r.id for r in seen] == [r.id for r in expected]
    assert seen[0].replicas  # pages carry their replicas

    _finish(store, reps[2].replicas[0])
    page, nxt = store.list_replications(state=S.SUCCEEDED)
    assert [r.id for r in page] == [reps[2].id] and nxt is None
    page, _ = store.list_replications(image_id="img-00000004")
    assert [r.id for r in page] == [reps[4].id]
    page, _ = store.list_replications(region="ap-chengdu")
    assert [r.id for r in page] == [twin.id]
    page, _ = store.list_replications(region="ap-guangzhou", limit=100)  # the source region
    assert len(page) == 8
    page, _ = store.list_replications(state=S.SUCCEEDED, region="ap-beijing")  # one replica must match both
    assert page == []
    with pytest.raises(ValueError):
        store.list_replications(cursor="not-a-cursor")


# -- compare-and-set ---------------------------------------------------------------------------------------------


def test_save_is_compare_and_set(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    store.create_replication(rep)
    r0 = rep.replicas[0]
    r1 = _advance(store, r0, S.WAITING_SOURCE, attempts=1)
    assert r1.version == 1 and store.get_replica(r0.id) == r1
    # stale version, stale state: somebody else won, nothing written
    assert store.save_replica(r0.moved(S.COPYING, utcnow()), expected_version=0, expected_state=S.PENDING) is None
    assert store.save_replica(r1.moved(S.COPYING, utcnow()), expected_version=1, expected_state=S.PENDING) is None
    assert store.get_replica(r0.id) == r1
    # a self-transition records progress and still bumps the version
    r2 = _advance(store, r1, S.WAITING_SOURCE, attempts=2)
    assert r2.version == 2 and store.get_replica(r0.id) == r2
    # unknown replica
    ghost = r2.model_copy(update={"id": "rpl-ghost"})
    assert store.save_replica(ghost, expected_version=2, expected_state=S.WAITING_SOURCE) is None


def test_illegal_transition_is_refused_before_writing(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    store.create_replication(rep)
    done = _finish(store, rep.replicas[0])
    bad = done.model_copy(update={"state": S.COPYING})
    with pytest.raises(IllegalTransition):
        store.save_replica(bad, expected_version=done.version, expected_state=S.SUCCEEDED)
    pending = rep.replicas[0].model_copy(update={"state": S.SUCCEEDED, "ended_at": utcnow()})
    with pytest.raises(IllegalTransition):  # PENDING -> SUCCEEDED skips COPYING
        store.save_replica(pending, expected_version=0, expected_state=S.PENDING)
    assert store.get_replica(done.id) == done


def test_terminal_save_writes_one_outbox_message_and_clears_in_flight(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai", "ap-beijing"])
    store.create_replication(rep)
    r = rep.replicas[0]
    done = _finish(store, r)
    assert done.state is S.SUCCEEDED and done.ended_at is not None and done.version == 2
    msgs = store.pending_outbox()
    assert len(msgs) == 1
    m = msgs[0]
    expected = CompletionMessage.for_replica(done, message_id=m.message_id)
    assert m == expected
    assert store.find_active(r.source_region, r.source_image_id, r.destination_region) is None
    failed = _advance(store, rep.replicas[1], S.FAILED, error_code="Cloud.Error", error_message="boom")
    assert failed.ended_at is not None
    assert {x.state for x in store.pending_outbox()} == {S.SUCCEEDED, S.FAILED}


# -- leases --------------------------------------------------------------------------------------------------------


def test_claim_due_leases_oldest_due_active_first(store: SqlStateStore) -> None:
    now = utcnow()
    reps = []
    for i in range(5):
        rep = make_replication([f"img-0000000{i}"], ["ap-shanghai"], next_check_at=now - timedelta(minutes=5 - i))
        store.create_replication(rep)
        reps.append(rep.replicas[0])
    later = make_replication(["img-0000000z"], ["ap-shanghai"], next_check_at=now + timedelta(minutes=5))
    store.create_replication(later)
    _finish(store, reps[4])  # terminal: never claimed

    got = store.claim_due("a", now, 30, 3)
    assert [r.id for r in got] == [r.id for r in reps[:3]]
    assert [r.id for r in store.claim_due("b", now, 30, 10)] == [reps[3].id]  # the rest, not a's
    assert store.claim_due("c", now, 30, 10) == []
    # a crashed owner's lease runs out
    assert [r.id for r in store.claim_due("c", now + timedelta(seconds=31), 30, 2)] == [r.id for r in reps[:2]]
    assert store.claim_due("d", now, 30, 0) == []


def test_claim_in_flight_leases_as_claim_due_does_and_reads_the_views_fields(store: SqlStateStore) -> None:
    now = utcnow()
    reps = []
    for i in range(4):
        rep = make_replication([f"img-0000000{i}"], ["ap-shanghai"], next_check_at=now - timedelta(minutes=5 - i))
        store.create_replication(rep)
        reps.append(rep.replicas[0])
    copying = _advance(store, reps[0], S.COPYING, destination_image_id="img-c0000001", sync_percent=7, looks=2)
    copying = _advance(store, copying, S.COPYING, first_look_at=now, started_at=now - timedelta(minutes=1))

    got = store.claim_in_flight("a", now, 30, 3)
    assert [v.id for v in got] == [r.id for r in reps[:3]]
    whole = store.get_replicas([v.id for v in got] + ["rpl-none"])
    assert sorted(whole) == sorted(v.id for v in got)  # an id not found is absent
    for view in got:
        replica = whole[view.id]
        assert view == tuple(getattr(replica, name) for name in InFlight._fields)
        assert view.state is replica.state and view.deadline_at.tzinfo is not None
    assert got[0].version == copying.version and got[0].first_look_at == now and got[0].looks == 2
    # the same leases as claim_due's: the one left goes to the next owner, then none
    assert [r.id for r in store.claim_due("b", now, 30, 10)] == [reps[3].id]
    assert store.claim_in_flight("c", now, 30, 10) == [] and store.get_replicas([]) == {}

    # a progress write from a view: the compare-and-set and the lease release as from a Replica
    later = now + timedelta(seconds=1)
    view = got[0]
    moved = view._replace(updated_at=later, sync_percent=40, next_check_at=now, looks=3)
    assert store.save_progress([(moved, view.version)], release={view.id: "a"}) == 1
    row = store.get_replica(view.id)
    assert row is not None and (row.version, row.sync_percent, row.looks) == (view.version + 1, 40, 3)
    assert row.first_look_at == now and row.updated_at == later
    assert store.save_progress([(moved, view.version)]) == 0  # the version moved on
    assert [v.id for v in store.claim_in_flight("d", now, 30, 10)] == [view.id]  # its lease given up


def test_release_frees_only_the_owners_leases(store: SqlStateStore) -> None:
    now = utcnow()
    rep = make_replication(["img-aaaaaaa1", "img-aaaaaaa2"], ["ap-shanghai"], next_check_at=now)
    store.create_replication(rep)
    a = store.claim_due("a", now, 30, 1)
    b = store.claim_due("b", now, 30, 1)
    assert len(a) == len(b) == 1 and a[0].id != b[0].id
    store.release([a[0].id, b[0].id], "a")
    assert [r.id for r in store.claim_due("c", now, 30, 5)] == [a[0].id]
    store.release([], "a")


def test_saving_keeps_the_lease_until_release(store: SqlStateStore) -> None:
    now = utcnow()
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"], next_check_at=now)
    store.create_replication(rep)
    (r,) = store.claim_due("a", now, 30, 5)
    _advance(store, r, S.COPYING, next_check_at=now)
    assert store.claim_due("b", now, 30, 5) == []
    store.release([r.id], "a")
    (again,) = store.claim_due("b", now, 30, 5)
    assert again.state is S.COPYING and again.version == 1


# -- outbox, counts, audit -------------------------------------------------------------------------------------------


def test_outbox_oldest_first_and_marked_sent(store: SqlStateStore) -> None:
    rep = make_replication([f"img-0000000{i}" for i in range(4)], ["ap-shanghai"])
    store.create_replication(rep)
    ends = [T0 + timedelta(minutes=m) for m in (3, 1, 2, 0)]
    for r, end in zip(rep.replicas, ends, strict=True):
        c = _advance(store, r, S.COPYING)
        s = store.save_replica(c.moved(S.SUCCEEDED, end), expected_version=1, expected_state=S.COPYING)
        assert s is not None and s.ended_at == end
    msgs = store.pending_outbox()
    assert [m.ended_at for m in msgs] == sorted(ends)
    assert len(store.pending_outbox(limit=2)) == 2
    store.mark_outbox_sent([msgs[0].message_id, msgs[1].message_id])
    store.mark_outbox_sent([msgs[0].message_id])  # again: harmless
    store.mark_outbox_sent([])
    assert [m.message_id for m in store.pending_outbox()] == [m.message_id for m in msgs[2:]]


def test_count_by_state(store: SqlStateStore) -> None:
    assert store.count_by_state() == {s.value: 0 for s in S}
    rep = make_replication(["img-aaaaaaa1", "img-aaaaaaa2", "img-aaaaaaa3"], ["ap-shanghai"])
    store.create_replication(rep)
    _finish(store, rep.replicas[0])
    _advance(store, rep.replicas[1], S.WAITING_SOURCE)
    counts = store.count_by_state()
    assert counts["SUCCEEDED"] == 1 and counts["WAITING_SOURCE"] == 1 and counts["PENDING"] == 1
    assert sum(counts.values()) == 3


def test_audit_trail_in_order(store: SqlStateStore) -> None:
    before = utcnow()
    store.record_audit("rep-1", "requested", actor="alice", origin="http", detail={"images": ["img-1"], "at": T0})
    store.record_audit("rep-1", "completed", actor="status_sweep", origin="rule", detail={"outcome": "SUCCEEDED"})
    store.record_audit("rep-2", "requested", actor="bob", origin="cli", detail={})
    trail = store.audit_trail("rep-1")
    assert [(a["event"], a["actor"], a["origin"]) for a in trail] == [
        ("requested", "alice", "http"),
        ("completed", "status_sweep", "rule"),
    ]
    assert trail[0]["detail"] == {"images": ["img-1"], "at": str(T0)}
    assert all(a["at"].utcoffset() == timedelta(0) and a["at"] >= before - timedelta(seconds=1) for a in trail)
    assert store.audit_trail("rep-none") == []


# -- idempotency ------------------------------------------------------------------------------------------------------


def test_idempotency_claim_complete_replay(store: SqlStateStore) -> None:
    now = utcnow()
    kw = {"now": now, "expires_at": now + timedelta(hours=1), "in_progress_until": now + timedelta(seconds=30)}
    assert store.idempotency_claim("k1", "h1", **kw) is None
    rec = store.idempotency_claim("k1", "h1", **kw)
    assert rec is not None and rec.status == "INPROGRESS" and rec.payload_hash == "h1" and rec.result is None
    assert rec.in_progress_until == now + timedelta(seconds=30)
    store.idempotency_complete("k1", {"replication_id": "rep-1", "n": 2}, expires_at=now + timedelta(hours=2))
    rec = store.idempotency_claim("k1", "other-hash", **kw)  # the caller refuses the reused key
    assert rec is not None and rec.status == "COMPLETED" and rec.payload_hash == "h1"
    assert rec.result == {"replication_id": "rep-1", "n": 2}
    assert rec.expires_at == now + timedelta(hours=2) and rec.in_progress_until is None
    store.idempotency_release("k1")  # a completed record stays
    assert store.idempotency_claim("k1", "h1", **kw) is not None


def test_idempotency_takeover_of_expired_and_overdue_records(store: SqlStateStore) -> None:
    now = utcnow()
    store.idempotency_claim(
        "stuck", "h", now=now, expires_at=now + timedelta(hours=1), in_progress_until=now + timedelta(seconds=10)
    )
    later = now + timedelta(seconds=11)  # the first invocation outlived its deadline
    kw = {"expires_at": later + timedelta(hours=1), "in_progress_until": later + timedelta(seconds=10)}
    assert store.idempotency_claim("stuck", "h", now=later, **kw) is None
    rec = store.idempotency_claim("stuck", "h", now=later, **kw)
    assert rec is not None and rec.in_progress_until == later + timedelta(seconds=10)

    store.idempotency_claim("old", "h", now=now, expires_at=now + timedelta(seconds=5), in_progress_until=now)
    store.idempotency_complete("old", {"x": 1}, expires_at=now + timedelta(seconds=5))
    assert store.idempotency_claim("old", "h2", now=now + timedelta(seconds=6), **kw) is None  # expired: as new
    rec = store.idempotency_claim("old", "h2", now=now + timedelta(seconds=6), **kw)
    assert rec is not None and rec.status == "INPROGRESS" and rec.payload_hash == "h2" and rec.result is None


def test_a_taken_over_claim_cannot_complete_or_release_the_new_owners_record(store: SqlStateStore) -> None:
    now = utcnow()
    first = now + timedelta(seconds=10)
    store.idempotency_claim("k", "h", now=now, expires_at=now + timedelta(hours=1), in_progress_until=first)
    later = now + timedelta(seconds=11)
    second = later + timedelta(seconds=10)
    assert (
        store.idempotency_claim("k", "h", now=later, expires_at=later + timedelta(hours=1), in_progress_until=second)
        is None
    )  # taken over
    # the first invocation wakes up late: neither its completion nor its release touches the new claim
    store.idempotency_complete("k", {"by": "first"}, expires_at=later + timedelta(hours=1), claimed_until=first)
    store.idempotency_release("k", claimed_until=first)
    rec = store.idempotency_claim("k", "h", now=later, expires_at=later, in_progress_until=second)
    assert rec is not None and rec.status == "INPROGRESS" and rec.in_progress_until == second
    store.idempotency_complete("k", {"by": "second"}, expires_at=later + timedelta(hours=1), claimed_until=second)
    rec = store.idempotency_claim("k", "h", now=later, expires_at=later, in_progress_until=second)
    assert rec is not None and rec.status == "COMPLETED" and rec.result == {"by": "second"}


def test_idempotency_release_and_purge(store: SqlStateStore) -> None:
    now = utcnow()
    kw = {"now": now, "in_progress_until": now + timedelta(seconds=30)}
    store.idempotency_claim("a", "h", expires_at=now + timedelta(seconds=1), **kw)
    store.idempotency_release("a")
    assert store.idempotency_claim("a", "h", expires_at=now + timedelta(seconds=1), **kw) is None  # runs again
    store.idempotency_claim("b", "h", expires_at=now + timedelta(seconds=2), **kw)
    store.idempotency_claim("c", "h", expires_at=now + timedelta(hours=1), **kw)
    assert store.purge_expired(now + timedelta(seconds=5)) == 2
    assert store.purge_expired(now + timedelta(seconds=5)) == 0
    assert store.idempotency_claim("c", "h", expires_at=now + timedelta(hours=1), **kw) is not None


def test_idempotency_racing_claims_admit_exactly_one(store: SqlStateStore) -> None:
    now = utcnow()
    n = 8
    barrier = threading.Barrier(n)
    results: list[object] = []

    def go() -> None:
        barrier.wait()
        results.append(
            store.idempotency_claim(
                "race", "h", now=now, expires_at=now + timedelta(hours=1), in_progress_until=now + timedelta(minutes=1)
            )
        )

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(None) == 1


def test_in_memory_sqlite_is_one_database_shared_by_threads() -> None:
    from imagesync.adapters.sql import make_engine

    mem = SqlStateStore(make_engine("sqlite://"), auto_create=True)

    def work(i: int) -> None:
        for j in range(20):
            mem.record_audit(f"rep-{i}", "e", actor="a", origin="cli", detail={"j": j})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(mem.audit_trail(f"rep-{i}")) for i in range(4)] == [20] * 4


def test_save_progress_writes_many_by_compare_and_set(store: SqlStateStore) -> None:
    rep = store.create_replication(make_replication(["img-aaaaaaaa"], ["ap-shanghai", "ap-beijing", "ap-nanjing"]))
    now = utcnow()
    copying = []
    for r in rep.replicas:
        moved = r.moved(S.COPYING, now, destination_image_id="img-" + r.id[-8:])
        saved = store.save_replica(moved, expected_version=r.version, expected_state=r.state)
        assert saved is not None
        copying.append(saved)
    later = now + timedelta(minutes=5)
    # somebody else moves the third one first: its progress write must not land
    third = store.save_replica(
        copying[2].moved(S.COPYING, now, sync_percent=99), expected_version=copying[2].version, expected_state=S.COPYING
    )
    assert third is not None
    written = store.save_progress(
        [
            (r.moved(S.COPYING, later, sync_percent=40 + i, next_check_at=later + timedelta(minutes=1)), r.version)
            for i, r in enumerate(copying)
        ]
    )
    assert written == 2  # the third lost its compare-and-set
    got = {r.id: r for r in store.get_replication(rep.id).replicas}
    for i, r in enumerate(copying[:2]):
        row = got[r.id]
        assert (row.sync_percent, row.version, row.state) == (40 + i, r.version + 1, S.COPYING)
        assert row.next_check_at == later + timedelta(minutes=1) and row.updated_at == later
    assert (got[copying[2].id].sync_percent, got[copying[2].id].version) == (99, third.version)
    assert store.save_progress([]) == 0  # nothing to write is fine
    with pytest.raises(ValueError):
        store.save_progress([(copying[0].moved(S.SUCCEEDED, later), copying[0].version)])


def test_save_progress_releases_the_writers_own_leases_on_the_rows_it_writes(store: SqlStateStore) -> None:
    now = utcnow()
    rep = store.create_replication(
        make_replication(["img-aaaaaaaa"], ["ap-shanghai", "ap-beijing", "ap-nanjing", "ap-chengdu"], next_check_at=now)
    )
    copying = {}
    for r in rep.replicas:
        saved = store.save_replica(
            r.moved(S.COPYING, now, destination_image_id="img-" + r.id[-8:], next_check_at=now),
            expected_version=r.version,
            expected_state=r.state,
        )
        assert saved is not None
        copying[saved.id] = saved
    mine = store.claim_due("a", now, 30, 3)
    (theirs,) = store.claim_due("b", now, 30, 5)
    assert len(mine) == 3
    # the first of mine changes under us: its progress write loses, so its lease must stay mine
    lost = store.save_replica(
        mine[0].moved(S.COPYING, now, sync_percent=7), expected_version=mine[0].version, expected_state=S.COPYING
    )
    assert lost is not None
    owners = {r.id: "a" for r in mine} | {theirs.id: "a"}  # "a" does not hold theirs: that lease must stay b's
    later = now + timedelta(seconds=1)
    written = store.save_progress(
        [(r.moved(S.COPYING, later, sync_percent=50, next_check_at=now), r.version) for r in [*mine, theirs]],
        release=owners,
    )
    assert written == 4 - 1
    # due again at once (next_check_at = now): only the rows whose lease the write gave up can be claimed
    assert sorted(r.id for r in store.claim_due("c", now, 30, 10)) == sorted(r.id for r in mine[1:])
    store.release([mine[0].id], "a")
    assert [r.id for r in store.claim_due("d", now, 30, 10)] == [mine[0].id]
    store.release([theirs.id], "b")
    assert [r.id for r in store.claim_due("e", now, 30, 10)] == [theirs.id]
    # without `release`, a progress write keeps the lease (as save_replica does) until release
    (again,) = store.claim_due("f", now + timedelta(seconds=31), 30, 1)
    assert store.save_progress([(again.moved(S.COPYING, later, next_check_at=now), again.version)]) == 1
    assert again.id not in {r.id for r in store.claim_due("g", now + timedelta(seconds=31), 30, 10)}


def test_claim_due_rounds_never_return_the_same_replica_twice(store: SqlStateStore) -> None:
    """The sweep claims in rounds under one lease instant: each round gets the next oldest, none twice."""
    now = utcnow()
    for i in range(7):
        store.create_replication(
            make_replication([f"img-0000001{i}"], ["ap-shanghai"], next_check_at=now - timedelta(minutes=10 - i))
        )
    rounds = [store.claim_due(f"swp.{n}", now, 30, 3, lease_now=now) for n in range(4)]
    assert [len(r) for r in rounds] == [3, 3, 1, 0]
    ids = [r.id for batch in rounds for r in batch]
    assert len(set(ids)) == 7
    assert [r.next_check_at for batch in rounds for r in batch] == sorted(r.next_check_at for b in rounds for r in b)


def test_save_progress_of_hundreds_of_rows_keeps_the_compare_and_set_per_row(store: SqlStateStore) -> None:
    """More rows than one statement of a server backend takes (PROGRESS_CHUNK), columns alike and unlike across
    rows, NULLs among values: each row is written, or left when it changed meanwhile, and only its own lease goes."""
    now = utcnow()
    images = [f"img-{i:08d}" for i in range(60)]
    rep = store.create_replication(
        make_replication(images, ["ap-shanghai", "ap-beijing", "ap-nanjing", "ap-chengdu"], next_check_at=now)
    )
    for r in rep.replicas:
        assert store.save_replica(
            r.moved(S.COPYING, now, next_check_at=now), expected_version=0, expected_state=r.state
        )
    claimed = store.claim_due("a", now, 30, 1000)
    assert len(claimed) == 240
    stale = {r.id for r in claimed[::7]}  # changed by somebody else before the progress write
    for r in claimed:
        if r.id in stale:
            assert store.save_replica(
                r.moved(S.COPYING, now, sync_percent=1), expected_version=r.version, expected_state=S.COPYING
            )
    owners = {r.id: ("zzz" if i % 5 == 0 else "a") for i, r in enumerate(claimed) if i % 11}  # zzz holds none
    later = now + timedelta(seconds=1)
    changes = [
        (
            r.moved(
                S.COPYING,
                later,
                sync_percent=None if i % 13 == 0 else i % 100,
                next_check_at=now,
                looks=i % 3,
                first_look_at=None if i % 2 else later + timedelta(microseconds=i),
            ),
            r.version,
        )
        for i, r in enumerate(claimed)
    ]
    assert store.save_progress(changes, release=owners) == 240 - len(stale)
    got = {r.id: r for r in store.get_replication(rep.id).replicas}
    for (moved, version), r in zip(changes, claimed, strict=True):
        row = got[r.id]
        if r.id in stale:
            assert (row.version, row.sync_percent, row.looks) == (version + 1, 1, 0)
            continue
        assert row.version == version + 1
        assert (row.sync_percent, row.looks, row.first_look_at) == (
            moved.sync_percent,
            moved.looks,
            moved.first_look_at,
        )
        assert (row.next_check_at, row.updated_at) == (now, later)
    # due again at once: only the rows written whose lease "a" held in the map are free now
    freed = {r.id for r in claimed if r.id not in stale and owners.get(r.id) == "a"}
    assert {r.id for r in store.claim_due("c", now, 30, 1000)} == freed

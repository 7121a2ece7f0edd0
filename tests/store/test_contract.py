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


def test_the_sweepers_lease_is_held_by_one_owner_until_released_or_run_out(store: SqlStateStore) -> None:
    now = utcnow()
    assert store.acquire("a", now, 30)  # first use: the row is written
    assert not store.acquire("b", now + timedelta(seconds=29), 30)
    store.release("b")  # not b's: a's lease is untouched
    assert not store.acquire("b", now, 30)
    store.release("a")
    assert store.acquire("b", now, 30)
    # a crashed owner's lease runs out at its expiry (the caller's real clock)
    assert not store.acquire("c", now + timedelta(seconds=29, microseconds=999_999), 30)
    assert store.acquire("c", now + timedelta(seconds=30), 30)
    # what the owner took is recognised as its own (a re-run after a lost COMMIT); another take of it is not
    assert store.acquire("c", now + timedelta(seconds=30), 30)
    assert not store.acquire("c", now + timedelta(seconds=31), 30)
    store.release("c")
    store.release("c")  # twice: a no-op


def test_racing_first_acquires_give_the_lease_to_one(store: SqlStateStore) -> None:
    """On an empty `leases` table the row is inserted by the first taker; the others lose on its key and look
    again: exactly one of eight racing sweepers holds the lease."""
    now = utcnow()
    barrier = threading.Barrier(8)
    got: list[tuple[str, bool]] = []

    def take(n: int) -> None:
        barrier.wait()
        got.append((f"s{n}", store.acquire(f"s{n}", now, 30)))

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [owner for owner, won in got if won]
    assert len(got) == 8 and len(winners) == 1
    assert not store.acquire("late", now, 30)
    store.release(winners[0])
    assert store.acquire("late", now, 30)


def test_due_in_flight_reads_the_oldest_due_active_copies(store: SqlStateStore) -> None:
    now = utcnow()
    reps = []
    for i in range(6):
        rep = make_replication([f"img-0000000{i}"], ["ap-shanghai"], next_check_at=now - timedelta(minutes=5 - i))
        store.create_replication(rep)
        reps.append(rep.replicas[0])
    same = make_replication(["img-0000000s"], ["ap-beijing"], next_check_at=reps[1].next_check_at)
    store.create_replication(same)  # the same next_check_at as reps[1]: the id orders them
    later = make_replication(["img-0000000z"], ["ap-shanghai"], next_check_at=now + timedelta(minutes=5))
    store.create_replication(later)
    _finish(store, reps[5])  # terminal: never due
    copying = _advance(store, reps[0], S.COPYING, destination_image_id="img-c0000001", sync_percent=7, looks=2)
    copying = _advance(store, copying, S.COPYING, first_look_at=now, started_at=now - timedelta(minutes=1))

    expected = sorted([*reps[:5], same.replicas[0]], key=lambda r: (r.next_check_at, r.id))
    got = store.due_in_flight(now, 10)
    assert [v.id for v in got] == [r.id for r in expected]  # oldest first
    assert [v.id for v in store.due_in_flight(now, 4)] == [r.id for r in expected[:4]]
    # nothing is written: the same copies are due again, for anyone
    assert [v.id for v in store.due_in_flight(now, 10)] == [r.id for r in expected]
    assert store.due_in_flight(now, 0) == []

    # the views hold what the whole replicas hold
    whole = store.get_replicas([v.id for v in got] + ["rpl-none"])
    assert sorted(whole) == sorted(v.id for v in got)  # an id not found is absent
    for view in got:
        replica = whole[view.id]
        assert view == tuple(getattr(replica, name) for name in InFlight._fields)
        assert view.state is replica.state and view.deadline_at.tzinfo is not None
    (first,) = [v for v in got if v.id == copying.id]
    assert first.version == copying.version and first.first_look_at == now and first.looks == 2
    assert store.get_replicas([]) == {}

    # a progress write from a view: the compare-and-set as from a Replica; then it is no longer due
    later_now = now + timedelta(seconds=1)
    moved = first._replace(updated_at=later_now, sync_percent=40, next_check_at=now + timedelta(minutes=1), looks=3)
    assert store.save_progress([(moved, first.version)]) == 1
    row = store.get_replica(first.id)
    assert row is not None and (row.version, row.sync_percent, row.looks) == (first.version + 1, 40, 3)
    assert row.first_look_at == now and row.updated_at == later_now
    assert store.save_progress([(moved, first.version)]) == 0  # the version moved on
    assert first.id not in {v.id for v in store.due_in_flight(now, 10)}


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


def test_save_progress_of_hundreds_of_rows_keeps_the_compare_and_set_per_row(store: SqlStateStore) -> None:
    """More rows than one statement of a server backend takes (PROGRESS_CHUNK), columns alike and unlike across
    rows, NULLs among values: each row is written, or left when it changed meanwhile."""
    now = utcnow()
    images = [f"img-{i:08d}" for i in range(60)]
    rep = store.create_replication(
        make_replication(images, ["ap-shanghai", "ap-beijing", "ap-nanjing", "ap-chengdu"], next_check_at=now)
    )
    for r in rep.replicas:
        assert store.save_replica(
            r.moved(S.COPYING, now, next_check_at=now), expected_version=0, expected_state=r.state
        )
    due = store.due_in_flight(now, 1000)
    whole = store.get_replicas([v.id for v in due])
    claimed = [whole[v.id] for v in due]
    assert len(claimed) == 240
    stale = {r.id for r in claimed[::7]}  # changed by somebody else before the progress write
    for r in claimed:
        if r.id in stale:
            assert store.save_replica(
                r.moved(S.COPYING, now, sync_percent=1), expected_version=r.version, expected_state=S.COPYING
            )
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
                pace_changed=(None, 0, 1)[i % 3] if i % 5 else 1,
            ),
            r.version,
        )
        for i, r in enumerate(claimed)
    ]
    assert store.save_progress(changes) == 240 - len(stale)
    got = {r.id: r for r in store.get_replication(rep.id).replicas}
    for (moved, version), r in zip(changes, claimed, strict=True):
        row = got[r.id]
        if r.id in stale:
            assert (row.version, row.sync_percent, row.looks) == (version + 1, 1, 0)
            continue
        assert row.version == version + 1
        assert (row.sync_percent, row.looks, row.first_look_at, row.pace_changed) == (
            moved.sync_percent,
            moved.looks,
            moved.first_look_at,
            moved.pace_changed,
        )
        assert (row.next_check_at, row.updated_at) == (now, later)


def test_save_progress_of_ids_with_quotes_and_separators(store: SqlStateStore) -> None:
    """Ids are any text: the progress write renders its rows' values itself (an array's text on PostgreSQL,
    literals on MySQL/MariaDB), so quotes, backslashes, "%", separators and the word NULL in an id must reach the
    row that has it, and only it; a stale one among them is still left; a timestamp in another zone is stored as
    its UTC time."""
    odd = [
        "rpl-'quote",
        'rpl-"dq',
        "rpl-back\\slash",
        "rpl-100%",
        "rpl-a,b",
        "rpl-{x}",
        "rpl- sp ",
        "NULL",
        "rpl-é",
        "rpl-end\\",
    ]
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"], next_check_at=T0)
    base = rep.replicas[0]
    rows = [
        base.model_copy(update={"id": rid, "destination_region": f"ap-r{i}", "state": S.COPYING})
        for i, rid in enumerate(odd)
    ]
    store.create_replication(
        rep.model_copy(update={"replicas": rows, "destination_regions": sorted({r.destination_region for r in rows})})
    )
    stale = rows[4]  # somebody else writes this one first
    assert store.save_replica(stale.moved(S.COPYING, T0, sync_percent=5), expected_version=0, expected_state=S.COPYING)
    cst = timezone(timedelta(hours=8))
    later = T0 + timedelta(seconds=1)
    changes = [
        (r.moved(S.COPYING, later, sync_percent=i, next_check_at=(T0 + timedelta(minutes=i)).astimezone(cst)), 0)
        for i, r in enumerate(rows)
    ]
    assert store.save_progress(changes) == len(odd) - 1
    for i, r in enumerate(rows):
        got = store.get_replica(r.id)
        assert got is not None
        if r.id == stale.id:
            assert (got.version, got.sync_percent) == (1, 5)
        else:
            assert (got.version, got.sync_percent, got.updated_at) == (1, i, later)
            assert got.next_check_at == T0 + timedelta(minutes=i)

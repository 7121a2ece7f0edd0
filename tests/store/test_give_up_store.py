"""Ends whose completion will not be delivered again, on every backend: give_up_hooks records their open hooks
failed once, undelivered_ends finds them by the outbox's sent_at; and sweep leases on a clock of their own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from imagesync.adapters.sql import SqlStateStore
from imagesync.domain.hooks import TagHook
from imagesync.domain.models import Replica, Replication
from imagesync.domain.states import ReplicaState
from imagesync.ports import HookRun

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
S = ReplicaState


class StepClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def _ended(store: SqlStateStore, image: str, *, hooks: bool) -> Replica:
    """A replication of one image into ap-shanghai whose replica SUCCEEDED (its message is in the outbox)."""
    rep = Replication(
        source_region="ap-guangzhou",
        image_ids=[image],
        destination_regions=["ap-shanghai"],
        created_at=T0,
        hooks=[TagHook()] if hooks else [],
    )
    replica = Replica(
        replication_id=rep.id,
        source_region="ap-guangzhou",
        source_image_id=image,
        destination_region="ap-shanghai",
        image_name="web",
        created_at=T0,
        updated_at=T0,
        next_check_at=T0,
        deadline_at=T0 + timedelta(hours=2),
    )
    store.create_replication(rep.model_copy(update={"replicas": [replica]}))
    copying = store.save_replica(
        replica.moved(S.COPYING, T0, destination_image_id="img-c" + image[5:]),
        expected_version=0,
        expected_state=S.PENDING,
    )
    ended = copying.moved(S.SUCCEEDED, T0 + timedelta(minutes=20))
    return store.save_replica(ended, expected_version=copying.version, expected_state=S.COPYING)


def _run(r: Replica, key: str, status: str, **kw: object) -> HookRun:
    return HookRun(
        replica_id=r.id,
        hook_key=key,
        replication_id=r.replication_id,
        hook_type="webhook",
        status=status,
        attempts=2,
        updated_at=T0,
        **kw,
    )  # type: ignore[arg-type]


def test_give_up_hooks_fails_open_and_missing_hooks_once(store: SqlStateStore) -> None:
    r = _ended(store, "img-aaaa0001", hooks=True)
    store.save_hook_run(_run(r, "done-one", "done", result={"http_status": 200}))
    store.save_hook_run(_run(r, "open-one", "pending", error_code="Webhook.BadStatus", error_message="503"))
    store.save_hook_run(_run(r, "failed-one", "failed", error_code="Webhook.BadStatus", error_message="500"))
    store.save_hook_run(_run(r, "skipped-one", "skipped"))
    hooks = [(k, "webhook") for k in ("done-one", "open-one", "failed-one", "skipped-one", "missing-one")]
    at = T0 + timedelta(hours=8)

    written = store.give_up_hooks(
        r.id, r.replication_id, hooks, error_code="Hook.Undelivered", error_message="not delivered", at=at
    )

    assert sorted(written) == ["missing-one", "open-one"]
    runs = {run.hook_key: run for run in store.hook_runs([r.id])[r.id]}
    assert {k: v.status for k, v in runs.items()} == {
        "done-one": "done",
        "failed-one": "failed",
        "missing-one": "failed",
        "open-one": "failed",
        "skipped-one": "skipped",
    }
    for key in ("missing-one", "open-one"):
        assert (runs[key].error_code, runs[key].error_message, runs[key].updated_at) == (
            "Hook.Undelivered",
            "not delivered",
            at,
        )
    assert runs["open-one"].attempts == 2 and runs["missing-one"].attempts == 0
    assert runs["failed-one"].error_message == "500"  # its own failure is kept
    # once: a second give-up (the backstop after a dead letter, a repeated call) changes nothing
    assert (
        store.give_up_hooks(
            r.id,
            r.replication_id,
            hooks,
            error_code="Hook.DeadLettered",
            error_message="again",
            at=at + timedelta(hours=1),
        )
        == []
    )
    assert store.hook_runs([r.id])[r.id] == list(runs.values())
    # a failed record is not final: a re-driven message that runs the hook records it done
    store.save_hook_run(_run(r, "open-one", "done", result={"http_status": 200}))
    assert {x.hook_key: x.status for x in store.hook_runs([r.id])[r.id]}["open-one"] == "done"


def test_undelivered_ends_are_found_by_sent_at_until_settled(store_url: str) -> None:
    from imagesync.adapters.sql import make_engine

    clock = StepClock(T0)
    store = SqlStateStore(make_engine(store_url), clock=clock)
    stale_open = _ended(store, "img-aaaa0001", hooks=False)
    stale_done = _ended(store, "img-aaaa0002", hooks=False)
    stale_bare_with_hooks = _ended(store, "img-aaaa0003", hooks=True)
    stale_bare_no_hooks = _ended(store, "img-aaaa0004", hooks=False)
    unsent = _ended(store, "img-aaaa0005", hooks=True)
    outbox = {m.replica_id: m.message_id for m in store.pending_outbox()}
    clock.at = T0 + timedelta(hours=1)
    store.mark_outbox_sent([outbox[r.id] for r in (stale_open, stale_done, stale_bare_with_hooks, stale_bare_no_hooks)])
    fresh = _ended(store, "img-aaaa0006", hooks=True)
    clock.at = T0 + timedelta(hours=5)
    store.mark_outbox_sent([m.message_id for m in store.pending_outbox() if m.replica_id == fresh.id])
    store.save_hook_run(_run(stale_open, "webhook", "pending", error_code="Webhook.Timeout", error_message="t"))
    store.save_hook_run(_run(stale_done, "webhook", "done"))
    store.save_hook_run(_run(fresh, "tag", "pending", error_code="Cloud.InternalError", error_message="x"))

    def found(everywhere: bool, before: datetime = T0 + timedelta(hours=2)) -> list[str]:
        return [
            m.replica_id
            for m in store.undelivered_ends(
                sent_before=before, sent_after=before - timedelta(days=7), hooks_everywhere=everywhere
            )
        ]

    # published an hour after T0; the window ends two hours after: the fresh one (5 h) and the unsent are not due
    assert sorted(found(False)) == sorted([stale_open.id, stale_bare_with_hooks.id])
    assert sorted(found(True)) == sorted([stale_open.id, stale_bare_with_hooks.id, stale_bare_no_hooks.id])
    assert found(True, before=T0 + timedelta(minutes=59)) == []  # nothing sent that early
    assert sorted(found(False, before=T0 + timedelta(hours=6))) == sorted(
        [stale_open.id, stale_bare_with_hooks.id, fresh.id]
    )
    assert (
        store.undelivered_ends(
            sent_before=T0 + timedelta(hours=6), sent_after=T0 + timedelta(hours=2), hooks_everywhere=True
        )[0].replica_id
        == fresh.id
    )  # the horizon bounds it
    assert (
        len(store.undelivered_ends(sent_before=T0 + timedelta(hours=6), sent_after=T0, hooks_everywhere=True, limit=2))
        == 2
    )
    # settled: its open record failed, the bare one got a failed record -> not found again
    store.give_up_hooks(
        stale_open.id,
        stale_open.replication_id,
        [("webhook", "webhook")],
        error_code="Hook.Undelivered",
        error_message="late",
        at=clock.at,
    )
    store.give_up_hooks(
        stale_bare_with_hooks.id,
        stale_bare_with_hooks.replication_id,
        [("tag", "tag")],
        error_code="Hook.Undelivered",
        error_message="late",
        at=clock.at,
    )
    assert found(False) == [] and found(True) == [stale_bare_no_hooks.id]
    assert unsent.id not in found(True, before=T0 + timedelta(days=1))


def test_leases_run_on_their_own_clock(store: SqlStateStore) -> None:
    """The domain clock says what is due; the lease is the sweeping process's, on the real clock: an emulated
    clock hours ahead must not free a lease whose holder is still at work."""
    r = _ended(store, "img-aaaa0001", hooks=False)
    active = Replica(
        replication_id=r.replication_id,
        source_region="ap-guangzhou",
        source_image_id="img-bbbb0001",
        destination_region="ap-beijing",
        image_name="web",
        created_at=T0,
        updated_at=T0,
        next_check_at=T0,
        deadline_at=T0 + timedelta(hours=2),
    )
    store.add_replica(active)
    emulated = T0 + timedelta(days=3)
    real = T0
    assert store.acquire("a", real, 30)
    (due,) = store.due_in_flight(emulated, 10)  # due on the emulated clock
    assert due.id == active.id
    # 29 real seconds later (days later in emulated time): still a's; the lease never sees the emulated clock
    assert not store.acquire("b", real + timedelta(seconds=29), 30)
    assert store.acquire("b", real + timedelta(seconds=30), 30)

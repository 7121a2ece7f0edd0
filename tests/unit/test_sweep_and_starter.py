"""Sweep and CopyStarter on in-memory fakes of their ports (tests/unit/fakes.py): what they write, call and publish.

The same use cases run against the SQL stores and the emulator in tests/integration and tests/store; here each
rule is pinned on its own, with a frozen clock and no I/O.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from imagesync.app.start_copies import CopyStarter
from imagesync.app.sweep import MISSING_GRACE, Sweep
from imagesync.domain.errors import CloudError
from imagesync.domain.models import CompletionMessage, InFlight, Replica
from imagesync.domain.states import ReplicaState
from tests.unit.fakes import (
    FakeAudit,
    FakeIdempotency,
    FakeImages,
    FakeLeases,
    FakeOutbox,
    FakeQueue,
    FakeReplicaStore,
    FrozenClock,
)

S = ReplicaState
SRC = "ap-guangzhou"


class World:
    """One set of fakes wired as imagesync.wiring wires the real ones (one log shared by store and cloud)."""

    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.wall = FrozenClock(self.clock.now() + timedelta(days=3))  # leases and purges: the real clock
        self.log: list[tuple[str, object]] = []
        self.outbox = FakeOutbox(self.wall)
        self.replicas = FakeReplicaStore(self.outbox, log=self.log)
        self.leases = FakeLeases(self.replicas)
        self.idempotency = FakeIdempotency()
        self.audit = FakeAudit()
        self.images = FakeImages(log=self.log)
        self.queue = FakeQueue()
        self.sleeps: list[float] = []

    def starter(self) -> CopyStarter:
        return CopyStarter(
            replicas=self.replicas,
            audit=self.audit,
            images=self.images,
            clock=self.clock,
            first_check_seconds=60,
            retry_seconds=120,
        )

    def sweep(self, **options: object) -> Sweep:
        return Sweep(
            replicas=self.replicas,
            leases=self.leases,
            outbox=self.outbox,
            idempotency=self.idempotency,
            audit=self.audit,
            images=self.images,
            clock=self.clock,
            starter=self.starter(),
            queue=self.queue,
            lease_seconds=60,
            batch=50,
            recheck_seconds=30,
            retry_seconds=120,
            wall=self.wall,
            sleep=self.sleeps.append,
            **options,
        )

    def replica(self, image: str, region: str, state: ReplicaState = S.PENDING, **fields: object) -> Replica:
        now = self.clock.now()
        values: dict[str, object] = {
            "replication_id": "rep-1",
            "source_region": SRC,
            "source_image_id": image,
            "destination_region": region,
            "image_name": "web",
            "state": state,
            "created_at": now,
            "updated_at": now,
            "next_check_at": now,
            "deadline_at": now + timedelta(hours=6),
        }
        values.update(fields)
        replica = Replica.model_validate(values)
        self.replicas.put(replica)
        return replica

    def copying(self, image: str, region: str, copy_id: str, **fields: object) -> Replica:
        started = fields.pop("started_at", self.clock.now() - timedelta(minutes=10))
        return self.replica(
            image, region, S.COPYING, destination_image_id=copy_id, started_at=started, sync_percent=0, **fields
        )


@pytest.fixture
def world() -> World:
    return World()


# -- Sweep ------------------------------------------------------------------------------------------------------


def test_one_describe_per_region_and_every_end_written_audited_and_published(world: World) -> None:
    done = world.copying("img-a", "ap-shanghai", "img-c1")
    failed = world.copying("img-b", "ap-shanghai", "img-c2")
    going = world.copying("img-a", "ap-beijing", "img-c3")
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    world.images.add("ap-shanghai", "img-c2", state="CREATEFAILED")
    world.images.add("ap-beijing", "img-c3", state="SYNCING", sync_percent=40)

    report = world.sweep()()

    describes = [args for op, args in world.log if op == "describe_images"]
    assert sorted(describes) == [("ap-beijing", ["img-c3"]), ("ap-shanghai", ["img-c1", "img-c2"])]
    assert report.claimed == 3 and dict(report.outcomes) == {"SUCCEEDED": 1, "FAILED": 1}
    assert world.replicas.rows[done.id].state is S.SUCCEEDED and world.replicas.rows[done.id].sync_percent == 100
    assert world.replicas.rows[failed.id].error_code == "Copy.Failed"
    progressed = world.replicas.rows[going.id]
    assert progressed.state is S.COPYING and progressed.sync_percent == 40 and progressed.version == going.version + 1
    assert progressed.next_check_at > world.clock.now()  # looked at again when its ETA says, not now
    # each end: one audit record, one message, published once and marked sent on the real clock
    assert sorted((r["event"], r["detail"]["replica_id"]) for r in world.audit.records) == sorted(
        [("replica_ended", done.id), ("replica_ended", failed.id)]
    )
    sent = [json.loads(b) for b in world.queue.bodies]
    expected = sorted([(done.id, "SUCCEEDED"), (failed.id, "FAILED")])
    assert sorted((m["replica_id"], m["state"]) for m in sent) == expected
    assert report.published == 2 and world.outbox.pending_outbox() == []
    assert set(world.outbox.sent_at.values()) == {world.wall.now()}
    # the sweepers' lease taken on the real clock and given back; each copy written once (its progress or its
    # end); expired idempotency records purged on the real clock, not the domain one
    assert world.leases.acquired == [(report.owner, True)] and world.leases.released == [report.owner]
    assert world.leases.held is None
    assert [ids for op, ids in world.log if op == "save_progress"] == [[going.id]]
    assert world.idempotency.purges == [world.wall.now()]
    # the whole replicas are read for the ends only, one read per region's page: not the copy in flight's
    reads = [ids for op, ids in world.log if op == "get_replicas"]
    assert sorted(map(sorted, reads)) == [sorted([done.id, failed.id])]


def test_a_replica_past_its_deadline_times_out_without_a_cloud_call(world: World) -> None:
    late = world.copying("img-a", "ap-shanghai", "img-c1", deadline_at=world.clock.now() - timedelta(seconds=1))
    report = world.sweep()()
    assert world.replicas.rows[late.id].state is S.TIMED_OUT
    assert world.replicas.rows[late.id].error_code == "Copy.TimedOut"
    assert not [op for op, _ in world.log if op == "describe_images"]
    assert dict(report.outcomes) == {"TIMED_OUT": 1} and len(world.queue.bodies) == 1


def test_a_copy_missing_from_describe_waits_out_the_grace_then_fails(world: World) -> None:
    fresh = world.copying("img-a", "ap-shanghai", "img-c1", started_at=world.clock.now() - timedelta(seconds=30))
    old = world.copying("img-b", "ap-shanghai", "img-c2", started_at=world.clock.now() - MISSING_GRACE)
    world.sweep()()
    assert world.replicas.rows[fresh.id].state is S.COPYING
    assert world.replicas.rows[fresh.id].next_check_at == world.clock.now() + timedelta(seconds=30)
    assert world.replicas.rows[old.id].state is S.FAILED
    assert world.replicas.rows[old.id].error_code == "Copy.ImageMissing"


def test_a_replica_changed_by_another_invocation_is_left_to_it(world: World) -> None:
    replica = world.copying("img-a", "ap-shanghai", "img-c1")
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    sweep = world.sweep()
    # the other invocation writes between this sweep's read and its write
    original = world.leases.due_in_flight

    def read_then_lose(*args: Any, **kwargs: Any) -> list[InFlight]:
        due = original(*args, **kwargs)
        for r in due:
            world.replicas.bump(r.id, sync_percent=99)
        return due

    world.leases.due_in_flight = read_then_lose
    report = sweep()
    assert ("save_lost", replica.id) in world.log
    assert world.replicas.rows[replica.id].state is S.COPYING and world.replicas.rows[replica.id].sync_percent == 99
    assert dict(report.outcomes) == {} and world.audit.records == [] and world.queue.bodies == []


def test_a_progress_write_that_loses_its_compare_and_set_leaves_that_row_and_the_lease_is_given_back(
    world: World,
) -> None:
    kept = world.copying("img-a", "ap-shanghai", "img-c1")
    lost = world.copying("img-b", "ap-shanghai", "img-c2")
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=10)
    world.images.add("ap-shanghai", "img-c2", state="SYNCING", sync_percent=10)
    original = world.leases.due_in_flight

    def read_then_lose(*args: Any, **kwargs: Any) -> list[InFlight]:
        due = original(*args, **kwargs)
        world.replicas.bump(lost.id, sync_percent=99)  # another invocation writes one of them first
        return due

    world.leases.due_in_flight = read_then_lose
    report = world.sweep()()
    assert report.claimed == 2
    assert world.replicas.rows[kept.id].sync_percent == 10 and world.replicas.rows[lost.id].sync_percent == 99
    assert world.leases.held is None and world.leases.released == [report.owner]


def test_while_another_sweep_holds_the_lease_no_copy_is_looked_at_but_the_outbox_is_published(
    world: World,
) -> None:
    world.copying("img-a", "ap-shanghai", "img-c1")
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=10)
    ended = world.replica("img-z", "ap-beijing", S.SUCCEEDED, ended_at=world.clock.now())
    world.outbox.messages.append(CompletionMessage.for_replica(ended))
    assert world.leases.acquire("other-sweeper", world.wall.now(), 60)
    report = world.sweep()()
    assert report.lease_held_elsewhere and report.claimed == 0
    assert not [op for op, _ in world.log if op in ("describe_images", "save_progress")]
    assert report.published == 1  # publishing needs no lease: the link is at least once anyway
    assert world.leases.held is not None and world.leases.held[0] == "other-sweeper"  # theirs, untouched
    # once it has run out (a crashed sweeper), the next sweep takes it
    world.wall.advance(seconds=60)
    report = world.sweep()()
    assert not report.lease_held_elsewhere and report.claimed == 1 and world.leases.held is None


def test_the_due_copies_are_read_at_once_up_to_batch_times_rounds_oldest_first(world: World) -> None:
    copies = [world.copying(f"img-{i:03d}", "ap-shanghai", f"img-c{i:03d}") for i in range(120)]
    for i, c in enumerate(copies):
        world.replicas.put(c.model_copy(update={"next_check_at": world.clock.now() - timedelta(seconds=i)}))
        world.images.add("ap-shanghai", f"img-c{i:03d}", state="SYNCING", sync_percent=10)
    reads: list[int] = []
    original = world.leases.due_in_flight

    def counted(now: Any, limit: int) -> list[InFlight]:
        reads.append(limit)
        return original(now, limit)

    world.leases.due_in_flight = counted
    report = world.sweep(max_rounds=2)()  # batch 50: at most 100 copies per sweep
    assert reads == [100] and report.claimed == 100
    written = [i for op, ids in world.log if op == "save_progress" for i in ids]
    assert sorted(written) == sorted(c.id for c in copies[20:])  # the 100 oldest, each written once
    # all of the region's copies in one look (the adapter pages the ids by 100): not a partial page per round
    assert len([op for op, _ in world.log if op == "describe_images"]) == 1
    # the rest on the next sweep
    assert world.sweep(max_rounds=2)().claimed == 20


def test_a_source_turned_normal_is_started_with_one_sync_images_for_all_its_regions(world: World) -> None:
    a = world.replica("img-a", "ap-shanghai", S.WAITING_SOURCE)
    b = world.replica("img-a", "ap-beijing", S.WAITING_SOURCE)
    gone = world.replica("img-gone", "ap-beijing", S.PENDING)
    world.images.add(SRC, "img-a", state="NORMAL")
    report = world.sweep()()
    [(region, image, destinations)] = [args for op, args in world.log if op == "sync_image"]
    assert (region, image, sorted(destinations)) == (SRC, "img-a", ["ap-beijing", "ap-shanghai"])
    assert {world.replicas.rows[r.id].state for r in (a, b)} == {S.COPYING}
    assert world.replicas.rows[gone.id].error_code == "Image.NotFound"
    assert report.outcomes["STARTED"] == 2 and report.outcomes["FAILED"] == 1


def test_a_transient_publish_failure_is_retried_with_backoff(world: World) -> None:
    world.copying("img-a", "ap-shanghai", "img-c1")
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    world.queue.fail = [CloudError("RequestLimitExceeded", "slow down", retryable=True), ConnectionError("reset")]
    report = world.sweep()()
    assert report.published == 1 and report.publish_retries == 2 and report.publish_error is None
    assert len(world.sleeps) == 2 and all(0 < s <= 3.0 for s in world.sleeps)
    assert len(world.queue.bodies) == 1 and world.outbox.pending_outbox() == []


def test_a_permanent_publish_failure_leaves_the_message_in_the_outbox(world: World) -> None:
    world.copying("img-a", "ap-shanghai", "img-c1")
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    world.queue.fail = [CloudError("ResourceNotFound.Function", "no such function")]
    report = world.sweep()()
    assert report.published == 0 and world.sleeps == []
    assert report.publish_error is not None and report.publish_error["code"] == "ResourceNotFound.Function"
    assert report.publish_error["retryable"] is False and len(world.outbox.pending_outbox()) == 1
    # the next sweep sends it
    world.sweep()()
    assert len(world.queue.bodies) == 1 and world.outbox.pending_outbox() == []


def test_a_failed_describe_leaves_the_region_for_the_next_tick(world: World) -> None:
    stuck = world.copying("img-a", "ap-shanghai", "img-c1")
    world.images.fail[("describe_images", "ap-shanghai")] = [CloudError("InternalError", "boom", retryable=True)]
    report = world.sweep()()
    assert world.replicas.rows[stuck.id] == stuck and dict(report.outcomes) == {}


# -- CopyStarter --------------------------------------------------------------------------------------------------


def test_the_attempt_is_on_record_before_sync_images_is_called(world: World) -> None:
    a = world.replica("img-a", "ap-shanghai")
    b = world.replica("img-a", "ap-beijing")
    started = world.starter().start([a, b])
    ops = [op for op, _ in world.log if op in ("save", "sync_image")]
    assert ops == ["save", "save", "sync_image", "save", "save"]
    reserved = [args for op, args in world.log if op == "save"][:2]
    assert all(r.attempts == 1 and r.state is S.PENDING for r in reserved)
    assert [(r.state, r.destination_image_id is not None, r.version) for r in started] == [(S.COPYING, True, 2)] * 2
    assert all(r.next_check_at == world.clock.now() + timedelta(seconds=60) for r in started)


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (CloudError("FailedOperation.InvalidImageState", "source busy"), S.WAITING_SOURCE),
        (CloudError("InternalError", "try again", retryable=True), S.PENDING),
        (CloudError("InvalidImageId.NotFound", "no such image"), S.FAILED),
    ],
)
def test_a_refused_sync_images_waits_retries_or_fails(world: World, error: CloudError, state: ReplicaState) -> None:
    replica = world.replica("img-a", "ap-shanghai")
    world.images.fail[("sync_image", SRC)] = [error]
    [saved] = world.starter().start([replica])
    assert saved.state is state and saved.error_code == error.cloud_code and saved.attempts == 1
    if not state.terminal:
        assert saved.next_check_at == world.clock.now() + timedelta(seconds=120)
    assert len(world.outbox.messages) == (1 if state.terminal else 0)  # only an end has a completion message


def test_a_full_region_fails_its_replicas_without_a_sync_images(world: World) -> None:
    world.images.quotas["ap-shanghai"] = (10, 10)
    world.images.quotas["ap-beijing"] = (10, 9)
    full = world.replica("img-a", "ap-shanghai")
    one_left = world.replica("img-a", "ap-beijing")
    second = world.replica("img-b", "ap-beijing")
    starter = world.starter()
    results = {r.id: r for r in starter.start([full, one_left])}
    assert results[full.id].state is S.FAILED and results[full.id].error_code == "Region.QuotaExceeded"
    assert results[one_left.id].state is S.COPYING
    # the copy just started counts: the same starter now finds ap-beijing full too, without asking again
    [refused] = starter.start([second])
    assert refused.error_code == "Region.QuotaExceeded"
    assert [op for op, _ in world.log].count("image_quota") == 2
    assert [args for op, args in world.log if op == "sync_image"] == [(SRC, "img-a", ["ap-beijing"])]


def test_a_copy_a_lost_answer_started_is_adopted_not_copied_again(world: World) -> None:
    replica = world.replica("img-a", "ap-shanghai", attempts=1)
    world.images.add("ap-shanghai", "img-lost", state="SYNCING", name="web", sync_percent=35)
    [adopted] = world.starter().start([replica])
    assert adopted.state is S.COPYING and adopted.destination_image_id == "img-lost" and adopted.sync_percent == 35
    assert not [op for op, _ in world.log if op == "sync_image"]


def test_a_replica_another_starter_won_is_not_copied(world: World) -> None:
    replica = world.replica("img-a", "ap-shanghai")
    world.replicas.bump(replica.id)  # the sweep reserved it first
    assert world.starter().start([replica]) == []
    assert not [op for op, _ in world.log if op == "sync_image"]

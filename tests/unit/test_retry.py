"""RetryFailed on the fakes of its ports (tests/unit/fakes.py): what it inserts, starts and refuses.

The same use case runs through the HTTP API on the emulator and SQLite in tests/integration/test_retry.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from imagesync.app.retry import RetryFailed
from imagesync.app.start_copies import CopyStarter
from imagesync.domain import errors
from imagesync.domain.attempts import attempt_numbers, latest, retry_id
from imagesync.domain.models import Replica, Replication
from imagesync.domain.states import ReplicaState
from imagesync.domain.validation import Limits
from tests.unit.fakes import FakeAudit, FakeImages, FakeOutbox, FakeReplicaStore, FrozenClock

S = ReplicaState
SRC = "ap-guangzhou"


class World:
    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.log: list[tuple[str, object]] = []
        self.replicas = FakeReplicaStore(FakeOutbox(self.clock), log=self.log)
        self.audit = FakeAudit()
        self.images = FakeImages(log=self.log)
        self.images.add(SRC, "img-a")

    def retry(self, limits: Limits | None = None) -> RetryFailed:
        starter = CopyStarter(
            replicas=self.replicas,
            audit=self.audit,
            images=self.images,
            clock=self.clock,
            first_check_seconds=60,
            retry_seconds=120,
        )
        return RetryFailed(
            replicas=self.replicas,
            audit=self.audit,
            images=self.images,
            clock=self.clock,
            limits=limits or Limits(),
            starter=starter,
            timeout_seconds=3600,
        )

    def replication(self, **states: ReplicaState) -> Replication:
        """rep-1 copying img-a into each region given as ap_<name>=state."""
        now = self.clock.now()
        replicas = [
            Replica(
                replication_id="rep-1",
                source_region=SRC,
                source_image_id="img-a",
                destination_region=region.replace("_", "-"),
                image_name="web",
                state=state,
                created_at=now,
                updated_at=now,
                next_check_at=now,
                deadline_at=now + timedelta(hours=1),
                ended_at=now if state.terminal else None,
                error_code="Copy.Failed" if state is S.FAILED else None,
            )
            for region, state in states.items()
        ]
        replication = Replication(
            id="rep-1",
            source_region=SRC,
            image_ids=["img-a"],
            destination_regions=[r.destination_region for r in replicas],
            replicas=replicas,
        )
        self.replicas.put_replication(replication)
        return replication


@pytest.fixture
def world() -> World:
    return World()


def test_only_failed_and_timed_out_copies_get_a_new_attempt(world: World) -> None:
    first = world.replication(ap_shanghai=S.SUCCEEDED, ap_beijing=S.FAILED, ap_chengdu=S.TIMED_OUT)
    result = world.retry()("rep-1", requested_by="test")
    assert sorted(r.destination_region for r in result.started) == ["ap-beijing", "ap-chengdu"]
    assert all(r.state is S.COPYING and r.retry_of for r in result.started)
    syncs = [args for op, args in world.log if op == "sync_image"]
    assert syncs == [(SRC, "img-a", ["ap-beijing", "ap-chengdu"])]
    # the earlier attempts and the succeeded copy are exactly as they were
    for old in first.replicas:
        assert world.replicas.rows[old.id] == old
    stored = world.replicas.get_replication("rep-1")
    assert stored is not None and stored.state == "COPYING" and len(stored.replicas) == 5
    numbers = attempt_numbers(stored.replicas)
    assert sorted(numbers.values()) == [1, 1, 1, 2, 2]
    assert [a["event"] for a in world.audit.records] == ["retried"]


def test_a_repeated_or_racing_call_inserts_nothing_new(world: World) -> None:
    failed = world.replication(ap_beijing=S.FAILED).replicas[0]
    first = world.retry()("rep-1")
    assert [r.id for r in first.started] == [retry_id(failed.id)]
    again = world.retry()("rep-1")
    assert again.started == [] and [r.id for r in again.running] == [retry_id(failed.id)]
    assert len([op for op, _ in world.log if op == "sync_image"]) == 1
    # a racing call that read the replication before the first one's insert: same derived id, same row
    racing = world.retry()
    racing._add(world.replicas.get_replication("rep-1").model_copy(), [failed])  # noqa: SLF001
    assert len(world.replicas.rows) == 2


def test_named_copies_are_checked(world: World) -> None:
    rep = world.replication(ap_shanghai=S.SUCCEEDED, ap_beijing=S.FAILED, ap_chengdu=S.COPYING)
    with pytest.raises(errors.RetrySucceeded):
        world.retry()("rep-1", regions=["ap-shanghai", "ap-beijing"])
    with pytest.raises(errors.RetryStillActive):
        world.retry()("rep-1", replica_ids=[rep.replicas[2].id])
    with pytest.raises(errors.RetryNotInReplication):
        world.retry()("rep-1", regions=["ap-nanjing"])
    with pytest.raises(errors.ReplicationNotFound):
        world.retry()("rep-2")
    assert [op for op, _ in world.log if op in ("add_replica", "sync_image")] == []  # refused: nothing written


def test_retry_of_a_retry_and_the_latest_attempt(world: World) -> None:
    failed = world.replication(ap_beijing=S.FAILED).replicas[0]
    second = world.retry()("rep-1").started[0]
    world.replicas.rows[second.id] = second.model_copy(
        update={"state": S.FAILED, "ended_at": world.clock.now(), "version": second.version + 1}
    )
    third = world.retry()("rep-1", replica_ids=[failed.id]).started[0]  # names the first: retries the latest
    assert third.retry_of == second.id
    stored = world.replicas.get_replication("rep-1")
    assert stored is not None
    assert latest(failed, stored.replicas).id == third.id
    assert attempt_numbers(stored.replicas)[third.id] == 3


def test_source_not_ready_waits_and_gone_source_is_refused(world: World) -> None:
    world.replication(ap_beijing=S.FAILED)
    world.images.add(SRC, "img-a", state="SYNCING")
    result = world.retry()("rep-1")
    assert [r.state for r in result.started] == [S.WAITING_SOURCE]
    assert [op for op, _ in world.log if op == "sync_image"] == []

    other = World()
    other.replication(ap_beijing=S.FAILED)
    del other.images.images[(SRC, "img-a")]
    with pytest.raises(errors.ImageNotFound):
        other.retry()("rep-1")


def test_region_policy_is_checked_again(world: World) -> None:
    world.images.available_regions = lambda: frozenset({SRC, "ap-singapore"})  # type: ignore[method-assign]
    world.replication(ap_singapore=S.FAILED)
    with pytest.raises(errors.CrossBorderNotAllowed):
        world.retry()("rep-1")
    assert world.retry(Limits(cross_border_allowed=True))("rep-1").started

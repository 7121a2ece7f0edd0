"""Overlapping sweeps (the use case, app.sweep.Sweep) on the real store, on every backend: the sweepers' lease lets
one sweep at a time look at the copies in flight, so each copy is looked at and written once per sweep; a sweep
that outlived its lease (a stalled process) writes nothing over the next holder's work; a crashed sweep's lease
runs out. The cloud is a recording fake at the ImageService port (tests/unit/fakes.py)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from store_helpers import make_replication, utcnow

from imagesync.adapters.sql import SqlStateStore
from imagesync.app.start_copies import CopyStarter
from imagesync.app.sweep import Sweep
from imagesync.domain.models import Replica, SourceImage
from imagesync.domain.states import ReplicaState
from tests.unit.fakes import FakeImages, FakeQueue, FrozenClock

S = ReplicaState
REGIONS = ["ap-shanghai", "ap-beijing", "ap-nanjing"]
LEASE_SECONDS = 60


class GatedImages(FakeImages):
    """FakeImages whose first DescribeImages waits at a gate: a sweep held there keeps its lease while others run."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Event()
        self.gate = threading.Event()
        self.looked: Counter[str] = Counter()
        self._lock = threading.Lock()

    def describe_images(self, region: str, image_ids: Sequence[str]) -> dict[str, SourceImage]:
        with self._lock:
            first = not self.inside.is_set()
            self.inside.set()
            self.looked.update(image_ids)
        if first:
            assert self.gate.wait(30), "the gate was never opened"
        return super().describe_images(region, image_ids)


def _copying(store: SqlStateStore, images: FakeImages, n: int) -> list[Replica]:
    """n copies in flight, due now, spread over REGIONS; their images SYNCING at 10 %."""
    now = utcnow() - timedelta(seconds=5)
    rep = store.create_replication(
        make_replication([f"img-{i:08d}" for i in range(n // len(REGIONS))], REGIONS, next_check_at=now)
    )
    out = []
    for r in rep.replicas:
        copy_id = "img-c" + r.id[-8:]
        saved = store.save_replica(
            r.moved(S.COPYING, now, destination_image_id=copy_id, started_at=now, next_check_at=now, sync_percent=0),
            expected_version=0,
            expected_state=S.PENDING,
        )
        assert saved is not None
        images.add(r.destination_region, copy_id, state="SYNCING", sync_percent=10)
        out.append(saved)
    return out


def _sweep(store: SqlStateStore, images: FakeImages, wall: FrozenClock) -> Sweep:
    clock = FrozenClock(utcnow())
    starter = CopyStarter(store, store, images, clock, first_check_seconds=60, retry_seconds=120)
    return Sweep(
        store,
        store,
        store,
        store,
        store,
        images,
        clock,
        starter,
        FakeQueue(),
        lease_seconds=LEASE_SECONDS,
        batch=40,
        recheck_seconds=30,
        retry_seconds=120,
        wall=wall,
    )


def _run(sweep: Sweep, out: list[object]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(sweep()), daemon=True)
    thread.start()
    return thread


def test_two_overlapping_sweeps_look_at_each_copy_once(store: SqlStateStore) -> None:
    images = GatedImages()
    copies = _copying(store, images, 150)
    wall = FrozenClock(utcnow())
    first: list[object] = []
    thread = _run(_sweep(store, images, wall), first)
    assert images.inside.wait(30)  # the first sweep holds the lease, mid-look
    second = _sweep(store, images, wall)()
    assert second.lease_held_elsewhere and second.claimed == 0
    images.gate.set()
    thread.join(30)
    (report,) = first
    assert report.claimed == 150 and not report.lease_held_elsewhere
    # each copy looked at once, its progress written once (one version, one look)
    assert images.looked == Counter({c.destination_image_id: 1 for c in copies})
    rows = store.get_replicas([c.id for c in copies])
    assert {(r.version, r.looks, r.sync_percent) for r in rows.values()} == {(2, 1, 10)}
    # the lease was given back: the next sweep takes it, and finds nothing due yet
    third = _sweep(store, images, wall)()
    assert not third.lease_held_elsewhere and third.claimed == 0


def test_a_sweep_that_outlived_its_lease_writes_nothing_over_the_next_holders_work(store: SqlStateStore) -> None:
    images = GatedImages()
    copies = _copying(store, images, 90)
    wall = FrozenClock(utcnow())
    stalled: list[object] = []
    thread = _run(_sweep(store, images, wall), stalled)
    assert images.inside.wait(30)  # read every due copy, then stalled in its first look
    wall.advance(seconds=LEASE_SECONDS)  # ... past its lease (a frozen container, a long GC pause)
    taker = _sweep(store, images, wall)()
    assert not taker.lease_held_elsewhere and taker.claimed == 90
    images.gate.set()  # the stalled sweep resumes: every write it makes is a compare-and-set on what it read
    thread.join(30)
    assert stalled and stalled[0].claimed == 90
    rows = store.get_replicas([c.id for c in copies])
    # one progress write per copy (the taker's): the stalled sweep's lost on the version, none applied twice
    assert {(r.version, r.looks) for r in rows.values()} == {(2, 1)}
    # the stalled sweep gave up only its own lease: the taker's release already freed it, and it is free now
    assert store.acquire("next", wall.now(), LEASE_SECONDS)


def test_a_crashed_sweeps_lease_runs_out(store: SqlStateStore) -> None:
    images = FakeImages()
    _copying(store, images, 30)
    wall = FrozenClock(utcnow())
    assert store.acquire("crashed", wall.now(), LEASE_SECONDS)  # taken, never given back
    blocked = _sweep(store, images, wall)()
    assert blocked.lease_held_elsewhere and blocked.claimed == 0
    assert not [op for op, _ in images.log if op == "describe_images"]
    wall.advance(seconds=LEASE_SECONDS)
    after = _sweep(store, images, wall)()
    assert not after.lease_held_elsewhere and after.claimed == 30

"""FollowSource (deprecation follows the copy) on the fakes of its ports: what it reads, changes and reports.

The same use case runs in the reconcile pass on the emulator and SQLite in
tests/integration/test_family_and_deprecation.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from imagesync.app.follow_source import FollowSource
from imagesync.domain.errors import CloudError
from imagesync.domain.models import Replica
from imagesync.domain.states import ReplicaState
from tests.unit.fakes import FakeAudit, FakeImages, FakeOutbox, FakeReplicaStore, FrozenClock

S = ReplicaState
SRC = "ap-guangzhou"


class FakeAdmin:
    def __init__(self, images: FakeImages, fail: set[str] | None = None) -> None:
        self.images = images
        self.fail = fail or set()
        self.calls: list[tuple[str, str, Any]] = []

    def modify_image(
        self, region: str, image_id: str, *, family: str | None = None, deprecated: bool | None = None
    ) -> None:
        self.calls.append((region, image_id, deprecated))
        if image_id in self.fail:
            raise CloudError("InternalError", "boom")
        image = self.images.images[(region, image_id)]
        self.images.images[(region, image_id)] = image.model_copy(update={"deprecated": bool(deprecated)})


def _world(copies: dict[str, list[str]]) -> tuple[FakeReplicaStore, FakeImages, FakeAudit]:
    """Sources in SRC, each with a SUCCEEDED copy into each region given."""
    clock = FrozenClock()
    store, images, audit = FakeReplicaStore(FakeOutbox(clock)), FakeImages(), FakeAudit()
    n = 0
    for source, regions in copies.items():
        images.add(SRC, source)
        for region in regions:
            n += 1
            copy_id = f"img-copy{n:04d}"
            images.add(region, copy_id)
            now = clock.now() + timedelta(minutes=n)
            store.put(
                Replica(
                    replication_id="rep-1",
                    source_region=SRC,
                    source_image_id=source,
                    destination_region=region,
                    image_name="web",
                    state=S.SUCCEEDED,
                    destination_image_id=copy_id,
                    created_at=now,
                    updated_at=now,
                    ended_at=now,
                    next_check_at=now,
                    deadline_at=now + timedelta(hours=1),
                )
            )
    return store, images, audit


def _deprecate(images: FakeImages, region: str, image_id: str) -> None:
    images.images[(region, image_id)] = images.images[(region, image_id)].model_copy(update={"deprecated": True})


def test_only_the_copies_of_deprecated_sources_change_once() -> None:
    store, images, audit = _world({"img-a": ["ap-shanghai", "ap-beijing"], "img-b": ["ap-shanghai"]})
    admin = FakeAdmin(images)
    follow = FollowSource(store, images, admin, audit)
    assert follow()["copies_deprecated"] == [] and admin.calls == []
    _deprecate(images, SRC, "img-a")
    report = follow()
    assert report["sources_checked"] == 2 and report["sources_deprecated"] == 1
    assert sorted(c[1] for c in admin.calls) == ["img-copy0001", "img-copy0002"]
    assert [r["event"] for r in audit.records] == ["copy_deprecated", "copy_deprecated"]
    admin.calls.clear()
    assert follow()["copies_deprecated"] == [] and admin.calls == []  # already deprecated: nothing to do


def test_bounded_and_a_refused_change_is_reported() -> None:
    store, images, audit = _world({"img-a": ["ap-shanghai", "ap-beijing", "ap-chengdu"]})
    _deprecate(images, SRC, "img-a")
    admin = FakeAdmin(images, fail={"img-copy0001"})
    report = FollowSource(store, images, admin, audit, limit=1)()
    assert report["failed"] == [{"image_id": "img-copy0001", "code": "InternalError"}]
    assert len(report["copies_deprecated"]) == 1 and report["deferred"] == 1
    sources = FollowSource(store, images, admin, audit, sources_limit=0)()
    assert sources["sources_checked"] == 0 and sources["copies_deprecated"] == []

"""CBS 2017-03-12: the snapshots images are made of (DescribeSnapshots, DeleteSnapshots).

Only snapshots of images exist here (world.Snapshot; no disks): enough to see what DeleteImages leaves behind without
DeleteBindedSnap, and to delete it. Fields and parameters as in the SDK model (cbs 3.1.175 ``Snapshot``,
``DescribeSnapshotsRequest``, ``DeleteSnapshotsRequest``); choices are listed in docs/emulator.md.
"""

from __future__ import annotations

from ..errors import ApiError
from ..params import Params, require_member
from ..world import TRANSITIONAL, Snapshot, World, iso8601
from . import CallContext, Service

SERVICE = Service("cbs", "2017-03-12")

SNAPSHOT_FILTERS_EMULATED = ("snapshot-id", "snapshot-name", "snapshot-state", "disk-usage", "snapshot-type")
SNAPSHOT_FILTERS_NOT_EMULATED = ("project-id", "disk-id", "encrypt")


def _view(world: World, snap: Snapshot) -> dict:
    images = [world.find_image(i, snap.region) for i in snap.image_ids]
    return {
        "SnapshotId": snap.snapshot_id,
        "SnapshotName": snap.snapshot_id,
        "SnapshotState": "NORMAL",
        "SnapshotType": "PRIVATE_SNAPSHOT",
        "DiskUsage": snap.disk_usage,
        "DiskSize": snap.size,
        "DiskId": "",
        "Placement": {"Zone": f"{snap.region}-3"},
        "CreateTime": iso8601(snap.created_at).replace("T", " ").rstrip("Z"),
        "Percent": 100,
        "IsPermanent": True,
        "Encrypt": False,
        "CopyFromRemote": False,
        "CopyingToRegions": [],
        "ImageCount": len(snap.image_ids),
        "Images": [{"ImageId": img.image_id, "ImageName": img.name} for img in images if img is not None],
        "ShareReference": 0,
        "Tags": [],
    }


def _matches(snap: Snapshot, name: str, values: list[str]) -> bool:
    if name == "snapshot-id":
        return snap.snapshot_id in values
    if name == "snapshot-name":
        return snap.snapshot_id in values  # a snapshot's name is its id here
    if name == "snapshot-state":
        return "NORMAL" in values
    if name == "disk-usage":
        return snap.disk_usage in values
    if name == "snapshot-type":
        return "PRIVATE_SNAPSHOT" in values
    if name in SNAPSHOT_FILTERS_NOT_EMULATED:
        raise ApiError("InvalidFilter", f"The filter `{name}` is documented but not emulated.")
    raise ApiError("InvalidFilter", f"The filter `{name}` is not supported by DescribeSnapshots.")


def _own(ctx: CallContext) -> list[Snapshot]:
    return [s for s in ctx.world.snapshots.values() if s.owner == ctx.account.uin and s.region == ctx.region]


@SERVICE.action("DescribeSnapshots", {"SnapshotIds", "Filters", "Offset", "Limit", "Order", "OrderField"})
def describe_snapshots(ctx: CallContext, p: Params) -> dict:
    ids = p.str_list("SnapshotIds")
    filters = p.obj_list("Filters", fields={"Name": str, "Values": list})
    offset = p.integer("Offset", default=0, minimum=0) or 0
    limit = p.integer("Limit", default=20, minimum=0, maximum=100)
    order = p.text("Order", default="DESC", choices=("ASC", "DESC"))
    p.text("OrderField", choices=("CREATE_TIME",))
    if ids and filters:
        raise ApiError("InvalidParameter", "SnapshotIds and Filters cannot be specified together.")
    found = [s for s in _own(ctx) if ids is None or s.snapshot_id in ids]
    for i, f in enumerate(filters or []):
        require_member(f"Filters.{i}", f, "Name")
        found = [s for s in found if _matches(s, f["Name"], [str(v) for v in f.get("Values") or []])]
    found.sort(key=lambda s: (s.created_at, s.snapshot_id), reverse=order == "DESC")
    end = None if limit is None else offset + limit
    return {"TotalCount": len(found), "SnapshotSet": [_view(ctx.world, s) for s in found[offset:end]]}


@SERVICE.action("DeleteSnapshots", {"SnapshotIds", "DeleteBindImages"})
def delete_snapshots(ctx: CallContext, p: Params) -> dict:
    ids = p.str_list("SnapshotIds", required=True) or []
    with_images = p.flag("DeleteBindImages")
    world = ctx.world
    own = {s.snapshot_id: s for s in _own(ctx)}
    doomed = []
    for sid in dict.fromkeys(ids):  # every snapshot is checked before any is deleted (the docstring: all or none)
        snap = own.get(sid)
        if snap is None:
            raise ApiError("InvalidSnapshotId.NotFound", f"The snapshot `{sid}` does not exist.")
        images = [img for img in (world.find_image(i, snap.region) for i in snap.image_ids) if img is not None]
        if images and not with_images:
            raise ApiError(
                "UnsupportedOperation.SnapshotHasBindedImage",
                f"The snapshot `{sid}` is bound to images {[i.image_id for i in images]}.",
            )
        for img in images:
            if img.shared_with or world.image_state(img, ctx.now)[0] in TRANSITIONAL:
                raise ApiError(
                    "UnsupportedOperation.SnapshotHasBindedImage",
                    f"The snapshot `{sid}` is bound to `{img.image_id}`, which is shared or busy.",
                )
        doomed.append((snap, images))
    for snap, images in doomed:
        for img in images:
            if img.key in world.images:
                world.remove_image(img, delete_snapshots=False)
        world.snapshots.pop(snap.snapshot_id, None)
        world.history.append(
            {
                "event": "snapshot_deleted",
                "snapshot_id": snap.snapshot_id,
                "region": snap.region,
                "owner": snap.owner,
                "at": ctx.now,
                "images_deleted": [i.image_id for i in images],
            }
        )
    return {}

"""CVM 2017-03-12: images (describe, sync, create, share, modify, delete, quota), RunInstances, DescribeRegions.

Choices where the real cloud is unconfirmed are listed in docs/emulator.md ("Choices").
"""

from __future__ import annotations

import re

from .. import progress
from ..errors import ApiError, bad_value
from ..params import Params, require_member
from ..world import TRANSITIONAL, Image, Instance, World
from . import CallContext, Service

SERVICE = Service("cvm", "2017-03-12")

IMAGE_ID_RE = re.compile(r"^img-[a-z0-9]{8}$")
INSTANCE_ID_RE = re.compile(r"^ins-[a-z0-9]{8}$")
KMS_KEY_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# ImageFamily (CreateImage/ModifyImageAttribute docs): letters, digits, "-", "." and "_", 1-60 characters.
FAMILY_RE = re.compile(r"^[A-Za-z0-9._-]{1,60}$")
IMAGE_TYPES = ("PRIVATE_IMAGE", "PUBLIC_IMAGE", "SHARED_IMAGE")
MAX_FILTERS = 10
MAX_FILTER_VALUES = 5


def _check_image_id(image_id: str) -> None:
    if not IMAGE_ID_RE.match(image_id):
        raise ApiError("InvalidImageId.Malformed", f"The image id `{image_id}` is malformed.")


def _visible(ctx: CallContext, image_id: str) -> tuple[Image, str]:
    """The image ``image_id`` in the call's region as the caller sees it, or InvalidImageId.NotFound."""
    _check_image_id(image_id)
    img = ctx.world.find_image(image_id, ctx.region)
    vt = None if img is None else ctx.world.viewer_type(img, ctx.account.uin)
    if img is None or vt is None:
        raise ApiError("InvalidImageId.NotFound", f"The image `{image_id}` does not exist in `{ctx.region}`.")
    return img, vt


def _owned(ctx: CallContext, image_id: str) -> Image:
    """An image the caller owns; shared and public images -> UnauthorizedOperation.ImageNotBelongToAccount."""
    img, vt = _visible(ctx, image_id)
    if vt != "PRIVATE_IMAGE":
        raise ApiError(
            "UnauthorizedOperation.ImageNotBelongToAccount", f"The image `{image_id}` does not belong to this account."
        )
    return img


# ---- DescribeImages -------------------------------------------------------------------------------------------
def _matches(world: World, img: Image, vt: str, name: str, values: list[str]) -> bool:
    tags = world.image_tags(img)
    if name == "image-id":
        return img.image_id in values
    if name == "image-type":
        return vt in values
    if name == "image-name":
        return any(v in img.name for v in values)  # FUZZY (substring), as on the real API
    if name == "platform":
        return img.platform in values
    if name == "tag-key":
        return any(v in tags for v in values)
    if name == "tag-value":
        return any(v in tags.values() for v in values)
    if name.startswith("tag:"):
        key = name[4:]
        return key in tags and tags[key] in values
    raise ApiError("InvalidFilter", f"The filter `{name}` is not supported.")


def _check_filters(filters: list[dict] | None) -> None:
    """The Filters limits DescribeImages and DescribeInstances share: at most MAX_FILTERS, each named, each with
    at most MAX_FILTER_VALUES values."""
    if not filters:
        return
    if len(filters) > MAX_FILTERS:
        raise ApiError("InvalidFilterValue.LimitExceeded", f"At most {MAX_FILTERS} filters are allowed.")
    for i, f in enumerate(filters):
        require_member(f"Filters.{i}", f, "Name")
        if len(f.get("Values") or []) > MAX_FILTER_VALUES:
            raise ApiError("InvalidFilterValue.LimitExceeded", f"A filter takes at most {MAX_FILTER_VALUES} values.")


@SERVICE.action("DescribeImages", {"ImageIds", "Filters", "Offset", "Limit", "InstanceType"}, rate=40)
def describe_images(ctx: CallContext, p: Params) -> dict:
    image_ids = p.str_list("ImageIds")
    filters = p.obj_list("Filters", fields={"Name": str, "Values": list})
    offset = p.integer("Offset", default=0, minimum=0)
    limit = p.integer("Limit", default=20, minimum=0, maximum=100)
    if image_ids and filters:
        raise ApiError(
            "InvalidParameter.InvalidParameterCoexistImageIdsFilters",
            "ImageIds and Filters cannot be specified at the same time.",
        )
    for iid in image_ids or []:
        _check_image_id(iid)
    _check_filters(filters)
    world = ctx.world
    found = world.visible_images(ctx.account.uin, ctx.region or "")
    if image_ids is not None:
        wanted = set(image_ids)
        found = [(img, vt) for img, vt in found if img.image_id in wanted]
    for f in filters or []:
        found = [(img, vt) for img, vt in found if _matches(world, img, vt, f["Name"], f.get("Values") or [])]
    found.sort(key=lambda t: (-t[0].created_at, t[0].image_id))
    page = found[offset : offset + limit]
    return {"ImageSet": [world.image_view(img, vt, ctx.now) for img, vt in page], "TotalCount": len(found)}


# ---- SyncImages -----------------------------------------------------------------------------------------------
@SERVICE.action(
    "SyncImages",
    {"ImageIds", "DestinationRegions", "DryRun", "ImageName", "ImageSetRequired", "Encrypt", "KmsKeyId"},
    rate=10,
)
def sync_images(ctx: CallContext, p: Params) -> dict:
    image_ids = p.str_list("ImageIds", required=True) or []
    dests_raw = p.str_list("DestinationRegions", required=True) or []
    dry_run = p.flag("DryRun")
    image_name = p.text("ImageName", max_len=60)
    want_set = p.flag("ImageSetRequired")
    encrypt = p.flag("Encrypt")
    kms_key_id = p.text("KmsKeyId")
    if len(image_ids) != 1:
        raise bad_value(
            "ImageIds", "SyncImages copies exactly one image per call", "InvalidParameterValue.LimitExceeded"
        )
    world, src_region = ctx.world, ctx.region or ""
    img, vt = _visible(ctx, image_ids[0])
    dests = list(dict.fromkeys(dests_raw))  # duplicates collapse to one copy
    if vt == "PUBLIC_IMAGE":
        raise ApiError("InvalidParameterValue.InvalidImageId", "Public images cannot be synced.")
    state, _ = world.image_state(img, ctx.now)
    if world.active_copies(img, ctx.now):
        raise ApiError("FailedOperation.InvalidImageState", "The image is busy syncing; retry later.")
    if state != "NORMAL":
        raise ApiError("InvalidImageId.IncorrectState", f"The image state is {state}, not NORMAL.")
    limit = world.settings.max_copy_size_gb
    if limit is not None and img.size > limit:
        raise ApiError("InvalidImageId.TooLarge", f"Images over {limit} GB cannot be synced.")
    if encrypt and kms_key_id is not None and not KMS_KEY_RE.match(kms_key_id):
        raise ApiError("InvalidParameter.InvalidKmsKeyId", f"The KMS key `{kms_key_id}` is invalid.")
    for dest in dests:
        world.regions.check_copy(src_region, dest, ctx.account.cross_border_approved)
        if encrypt and dest != src_region:
            raise ApiError(
                "InvalidParameterValue.InvalidRegion", "An encrypted copy may only target the source region."
            )
        if img.encrypted and dest != src_region:
            raise ApiError(
                "UnsupportedOperation.SyncEncryptImageNotSupport",
                "Encrypted images cannot be synced to another region.",
            )
        if vt == "SHARED_IMAGE" and dest != src_region:
            raise ApiError(
                "InvalidParameterValue.InvalidRegion", "A shared image can only be copied into its own region."
            )
        if vt == "PRIVATE_IMAGE" and not encrypt and dest == src_region:
            raise ApiError("InvalidParameterValue.InvalidRegion", "A custom image cannot be synced to its own region.")
        if world.custom_image_count(ctx.account.uin, dest) + 1 > world.image_quota(ctx.account, dest):
            raise ApiError("ImageQuotaLimitExceeded", f"The image quota of `{dest}` is used up.")
    if dry_run:
        return {}
    image_set = []
    for dest in dests:
        lo, hi = world.settings.copy_duration
        duration = world.rng.uniform(lo, hi) if hi > lo else lo
        failed = world.rng.random() < world.settings.copy_failure_rate
        copy = world.add_image(
            Image(
                image_id=world.new_id("img-"),
                region=dest,
                owner=ctx.account.uin,
                name=image_name or img.name,
                image_type="PRIVATE_IMAGE",
                size=img.size,
                created_at=ctx.now,
                state="SYNCING",
                description=img.description,
                architecture=img.architecture,
                platform=img.platform,
                os_name=img.os_name,
                image_source=img.image_source,
                license_type=img.license_type,
                family=img.family,
                is_support_cloudinit=img.is_support_cloudinit,
                encrypted=img.encrypted or encrypt,
                kms_key_id=kms_key_id if encrypt else img.kms_key_id,
                snapshot_ids=[world.new_id("snap-") for _ in img.snapshot_ids or [""]],
                started_at=ctx.now,
                ready_at=ctx.now + duration,
                final_state="CREATEFAILED" if failed else "NORMAL",
                copy_of=img.key,
                is_copy=True,
                progress_curve=progress.resolve(world.settings.progress_curve, world.progress_rng),
            )
        )
        world.copies.setdefault(img.key, []).append(copy.key)
        world.history.append(
            {
                "event": "copy_started",
                "source": img.image_id,
                "source_region": src_region,
                "image_id": copy.image_id,
                "region": dest,
                "owner": ctx.account.uin,
                "at": ctx.now,
                "ready_at": copy.ready_at,
                "final_state": copy.final_state,
                "progress_curve": copy.progress_curve,
            }
        )
        image_set.append({"ImageId": copy.image_id, "Region": dest})
    return {"ImageSet": image_set} if want_set else {}


# ---- CreateImage ----------------------------------------------------------------------------------------------
def _tag_specs(specs: list[dict] | None, resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for i, spec in enumerate(specs or []):
        if spec.get("ResourceType") != resource_type:
            raise bad_value(f"TagSpecification.{i}.ResourceType", f"must be `{resource_type}`")
        for j, t in enumerate(spec.get("Tags") or []):
            if not isinstance(t, dict) or not t.get("Key"):
                raise bad_value(f"TagSpecification.{i}.Tags.{j}.Key", "a tag needs a Key")
            tags[str(t["Key"])] = str(t.get("Value", ""))
    return tags


@SERVICE.action(
    "CreateImage",
    {
        "ImageName",
        "InstanceId",
        "ImageDescription",
        "ForcePoweroff",
        "Sysprep",
        "DataDiskIds",
        "SnapshotIds",
        "DryRun",
        "TagSpecification",
        "ImageFamily",
    },
    audited=True,
)
def create_image(ctx: CallContext, p: Params) -> dict:
    name = p.text("ImageName", required=True, max_len=60) or ""
    instance_id = p.text("InstanceId")
    snapshot_ids = p.str_list("SnapshotIds")
    description = p.text("ImageDescription", default="", max_len=60) or ""
    family = p.text("ImageFamily", default="") or ""
    specs = p.obj_list("TagSpecification", fields={"ResourceType": str, "Tags": (list,)})
    dry_run = p.flag("DryRun")
    p.flag("ForcePoweroff")
    p.text("Sysprep")
    p.str_list("DataDiskIds")
    world = ctx.world
    if not instance_id and not snapshot_ids:
        raise ApiError("MissingParameter.AtLeastOne", "One of InstanceId and SnapshotIds is required.")
    size = 50
    source_image = None
    if instance_id:
        if not INSTANCE_ID_RE.match(instance_id):
            raise ApiError("InvalidInstanceId.Malformed", f"The instance id `{instance_id}` is malformed.")
        inst = world.instances.get(instance_id)
        if inst is None or inst.owner != ctx.account.uin or inst.region != ctx.region:
            raise ApiError("InvalidInstanceId.NotFound", f"The instance `{instance_id}` does not exist.")
        size = inst.system_disk_size
        source_image = world.find_image(inst.image_id, inst.region)
    tags = _tag_specs(specs, "image")
    for img, vt in world.visible_images(ctx.account.uin, ctx.region or ""):
        if vt == "PRIVATE_IMAGE" and img.name == name:
            raise ApiError("InvalidImageName.Duplicate", f"An image named `{name}` already exists.")
    if world.custom_image_count(ctx.account.uin, ctx.region or "") + 1 > world.image_quota(
        ctx.account, ctx.region or ""
    ):
        raise ApiError("ImageQuotaLimitExceeded", "The image quota of this region is used up.")
    if dry_run:
        return {}
    img = world.add_image(
        Image(
            image_id=world.new_id("img-"),
            region=ctx.region or "",
            owner=ctx.account.uin,
            name=name,
            image_type="PRIVATE_IMAGE",
            size=size,
            created_at=ctx.now,
            state="CREATING",
            description=description,
            family=family,
            image_source="CREATE_IMAGE",
            platform=source_image.platform if source_image else "TencentOS",
            os_name=source_image.os_name if source_image else "TencentOS Server 3.1 (TK4)",
            snapshot_ids=list(snapshot_ids or [world.new_id("snap-")]),
            started_at=ctx.now,
            ready_at=ctx.now + world.settings.create_duration,
            final_state="NORMAL",
        )
    )
    if tags:
        world.tags[world.resource_name(img)] = tags
    return {"ImageId": img.image_id}


# ---- quota, sharing, attributes, delete -----------------------------------------------------------------------
@SERVICE.action("DescribeImageQuota", set(), rate=10)
def describe_image_quota(ctx: CallContext, p: Params) -> dict:
    return {"ImageNumQuota": ctx.world.image_quota(ctx.account, ctx.region or "")}


@SERVICE.action("ModifyImageSharePermission", {"ImageId", "AccountIds", "Permission"})
def modify_image_share_permission(ctx: CallContext, p: Params) -> dict:
    image_id = p.text("ImageId", required=True) or ""
    account_ids = p.str_list("AccountIds", required=True) or []
    permission = (p.text("Permission", required=True) or "").upper()
    if permission not in ("SHARE", "CANCEL"):
        raise bad_value("Permission", "must be SHARE or CANCEL")
    img = _owned(ctx, image_id)
    state, _ = ctx.world.image_state(img, ctx.now)
    if state != "NORMAL":
        raise ApiError("InvalidImageId.IncorrectState", f"The image state is {state}, not NORMAL.")
    if permission == "SHARE" and len(set(img.shared_with) | set(account_ids)) > 500:
        raise ApiError("InvalidParameterValue.LimitExceeded", "An image can be shared with at most 500 accounts.")
    for uin in account_ids:
        if uin == ctx.account.uin:
            raise ApiError("FailedOperation.AccountIsYourSelf", "An image cannot be shared with its owner.")
        if uin not in ctx.world.accounts:
            raise ApiError("InvalidAccountId.NotFound", f"The account `{uin}` does not exist.")
        if permission == "SHARE" and uin in img.shared_with:
            raise ApiError("FailedOperation.AccountAlreadyExists", f"The image is already shared with `{uin}`.")
    for uin in account_ids:
        if permission == "SHARE":
            img.shared_with[uin] = ctx.now
        else:
            img.shared_with.pop(uin, None)
    return {}


@SERVICE.action("DescribeImageSharePermission", {"ImageId"})
def describe_image_share_permission(ctx: CallContext, p: Params) -> dict:
    img = _owned(ctx, p.text("ImageId", required=True) or "")
    from ..world import iso8601

    return {
        "SharePermissionSet": [
            {"AccountId": uin, "CreatedTime": iso8601(at)} for uin, at in sorted(img.shared_with.items())
        ]
    }


@SERVICE.action("ModifyImageAttribute", {"ImageId", "ImageName", "ImageDescription", "ImageFamily", "ImageDeprecated"})
def modify_image_attribute(ctx: CallContext, p: Params) -> dict:
    image_id = p.text("ImageId", required=True) or ""
    name = p.text("ImageName", max_len=60)
    description = p.text("ImageDescription", max_len=60)
    family = p.text("ImageFamily")
    deprecated = p.data.get("ImageDeprecated")
    if deprecated is not None and not isinstance(deprecated, bool):
        p.flag("ImageDeprecated")
    if family and not FAMILY_RE.match(family):
        raise ApiError("InvalidParameterValue.InvalidImageFamily", f"`{family}` is not a valid image family name.")
    img, vt = _visible(ctx, image_id)
    if vt == "SHARED_IMAGE":
        raise ApiError("UnsupportedOperation.SharedImageModifyUnsupported", "Shared images cannot be modified.")
    if vt != "PRIVATE_IMAGE":
        raise ApiError("UnauthorizedOperation.ImageNotBelongToAccount", "Public images cannot be modified.")
    if name is not None:
        img.name = name
    if description is not None:
        img.description = description
    if family is not None:
        img.family = family
    if deprecated is not None:
        img.deprecated = deprecated
    return {}


@SERVICE.action("DeleteImages", {"ImageIds", "DeleteBindedSnap", "DryRun"}, audited=True)
def delete_images(ctx: CallContext, p: Params) -> dict:
    image_ids = p.str_list("ImageIds", required=True) or []
    delete_snapshots = p.flag("DeleteBindedSnap")
    dry_run = p.flag("DryRun")
    if len(image_ids) > 10:
        raise ApiError("InvalidParameterValue.LimitExceeded", "At most 10 images per call.")
    world = ctx.world
    doomed = []
    for iid in dict.fromkeys(image_ids):
        img = _owned(ctx, iid)
        state, _ = world.image_state(img, ctx.now)
        if state in TRANSITIONAL:
            raise ApiError("InvalidImageId.IncorrectState", f"The image `{iid}` is {state} and cannot be deleted.")
        if img.shared_with:
            raise ApiError("InvalidImageId.InShared", f"The image `{iid}` is shared; cancel the sharing first.")
        doomed.append(img)
    if dry_run:
        return {}
    for img in doomed:
        gone = world.remove_image(img, delete_snapshots)
        world.history.append(
            {
                "event": "image_deleted",
                "image_id": img.image_id,
                "region": img.region,
                "owner": img.owner,
                "at": ctx.now,
                "snapshots_deleted": gone,
                "snapshots_kept": [s for s in img.snapshot_ids if s not in gone],
            }
        )
    return {}


@SERVICE.action("DescribeImageFromFamily", {"ImageFamily"})
def describe_image_from_family(ctx: CallContext, p: Params) -> dict:
    """The newest NORMAL, non-deprecated image of the family the caller can see in the region (own, shared or
    public); ``Image`` is absent when the family has none (the SDK model: "empty when no image is available")."""
    family = p.text("ImageFamily", required=True) or ""
    if not FAMILY_RE.match(family):
        raise ApiError("InvalidParameterValue.InvalidImageFamily", f"`{family}` is not a valid image family name.")
    world = ctx.world
    candidates = [
        (img, vt)
        for img, vt in world.visible_images(ctx.account.uin, ctx.region or "")
        if img.family == family and not img.deprecated and world.image_state(img, ctx.now)[0] == "NORMAL"
    ]
    if not candidates:
        return {}
    img, vt = max(candidates, key=lambda t: (t[0].created_at, t[0].image_id))
    return {"Image": world.image_view(img, vt, ctx.now)}


# ---- instances and regions ------------------------------------------------------------------------------------
@SERVICE.action(
    "RunInstances",
    {
        "InstanceChargeType",
        "InstanceChargePrepaid",
        "Placement",
        "InstanceType",
        "ImageId",
        "SystemDisk",
        "DataDisks",
        "VirtualPrivateCloud",
        "InternetAccessible",
        "InstanceCount",
        "MinCount",
        "InstanceName",
        "LoginSettings",
        "SecurityGroupIds",
        "EnhancedService",
        "ClientToken",
        "HostName",
        "ActionTimer",
        "DisasterRecoverGroupIds",
        "TagSpecification",
        "InstanceMarketOptions",
        "UserData",
        "Metadata",
        "DryRun",
        "CpuTopology",
        "CamRoleName",
        "HpcClusterId",
        "LaunchTemplate",
        "DedicatedClusterId",
        "ChcIds",
        "PartitionNumber",
        "DisableApiTermination",
        "EnableJumboFrame",
        "NetworkInterfaces",
    },
)
def run_instances(ctx: CallContext, p: Params) -> dict:
    placement = p.obj("Placement", required=True) or {}
    zone = require_member("Placement", placement, "Zone")
    image_id = p.text("ImageId", required=True) or ""
    instance_type = p.text("InstanceType", default="S5.MEDIUM2") or "S5.MEDIUM2"
    count = p.integer("InstanceCount", default=1, minimum=1, maximum=100) or 1
    name = p.text("InstanceName", default="", max_len=60) or ""
    system_disk = p.obj("SystemDisk") or {}
    dry_run = p.flag("DryRun")
    token = p.text("ClientToken", default="", max_len=64) or ""
    if not str(zone).startswith(f"{ctx.region}-"):
        raise ApiError("InvalidZone.MismatchRegion", f"The zone `{zone}` is not in `{ctx.region}`.")
    img, _ = _visible(ctx, image_id)
    state, _ = ctx.world.image_state(img, ctx.now)
    if state != "NORMAL":
        raise ApiError("InvalidImageId.IncorrectState", f"The image state is {state}, not NORMAL.")
    if dry_run:
        return {}
    # ClientToken makes RunInstances idempotent (the API's documented purpose): a repeat launches nothing more
    # and answers the first call's instances.
    token_key = (ctx.account.uin, ctx.region or "", token)
    if token and token_key in ctx.world.client_tokens:
        return {"InstanceIdSet": list(ctx.world.client_tokens[token_key])}
    ids = []
    for _ in range(count):
        iid = ctx.world.new_id("ins-")
        ctx.world.instances[iid] = Instance(
            instance_id=iid,
            region=ctx.region or "",
            owner=ctx.account.uin,
            image_id=img.image_id,
            name=name,
            instance_type=instance_type,
            zone=str(zone),
            state="RUNNING",
            created_at=ctx.now,
            system_disk_size=int(system_disk.get("DiskSize", max(img.size, 20))),
        )
        ids.append(iid)
    if token:
        ctx.world.client_tokens[token_key] = list(ids)
    return {"InstanceIdSet": ids}


# The filters the SDK documents for DescribeInstances (models.DescribeInstancesRequest.Filters, cvm 3.1.178). There
# is NO image-id filter: "which instances use image X" means paging DescribeInstances and comparing ImageId.
INSTANCE_FILTERS_EMULATED = (
    "zone",
    "instance-id",
    "instance-name",
    "instance-state",
    "creation-start-time",
    "creation-end-time",
)
INSTANCE_FILTERS_NOT_EMULATED = (
    "project-id",
    "host-id",
    "dedicated-cluster-id",
    "vpc-id",
    "subnet-id",
    "uuid",
    "security-group-id",
    "instance-charge-type",
    "private-ip-address",
    "public-ip-address",
    "ipv6-address",
    "tag-key",
    "tag-value",
)
FILTER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _filter_time(value: str) -> float:
    from datetime import datetime, timezone

    try:
        return datetime.strptime(value, FILTER_TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp()
    except ValueError as exc:
        raise ApiError("InvalidFilter", f"`{value}` is not a time like 2023-06-01 00:00:00.") from exc


def _instance_matches(inst: Instance, name: str, values: list[str]) -> bool:
    if name == "zone":
        return inst.zone in values
    if name == "instance-id":
        return inst.instance_id in values
    if name == "instance-name":
        return inst.name in values
    if name == "instance-state":
        return inst.state in values
    if name == "creation-start-time":
        return any(inst.created_at >= _filter_time(v) for v in values)
    if name == "creation-end-time":
        return any(inst.created_at <= _filter_time(v) for v in values)
    if name in INSTANCE_FILTERS_NOT_EMULATED or name.startswith("tag:"):
        raise ApiError("InvalidFilter", f"The filter `{name}` is documented but not emulated.")
    raise ApiError("InvalidFilter", f"The filter `{name}` is not supported by DescribeInstances.")


@SERVICE.action("DescribeInstances", {"InstanceIds", "Filters", "Offset", "Limit"}, rate=40)
def describe_instances(ctx: CallContext, p: Params) -> dict:
    ids = p.str_list("InstanceIds")
    filters = p.obj_list("Filters", fields={"Name": str, "Values": list})
    offset = p.integer("Offset", default=0, minimum=0)
    limit = p.integer("Limit", default=20, minimum=0, maximum=100)
    if ids and filters:
        raise ApiError("InvalidParameterCombination", "InstanceIds and Filters cannot be specified together.")
    if ids is not None and len(ids) > 100:
        raise ApiError("InvalidParameterValue.LimitExceeded", "At most 100 instance ids per call.")
    for iid in ids or []:
        if not INSTANCE_ID_RE.match(iid):
            raise ApiError("InvalidInstanceId.Malformed", f"The instance id `{iid}` is malformed.")
    _check_filters(filters)
    from ..world import iso8601

    found = [
        i
        for i in ctx.world.instances.values()
        if i.owner == ctx.account.uin and i.region == ctx.region and (ids is None or i.instance_id in ids)
    ]
    for f in filters or []:
        values = [str(v) for v in f.get("Values") or []]
        found = [i for i in found if _instance_matches(i, f["Name"], values)]
    found.sort(key=lambda i: i.instance_id)
    return {
        "TotalCount": len(found),
        "InstanceSet": [
            {
                "InstanceId": i.instance_id,
                "InstanceName": i.name,
                "ImageId": i.image_id,
                "InstanceType": i.instance_type,
                "InstanceState": i.state,
                "Placement": {"Zone": i.zone},
                "CreatedTime": iso8601(i.created_at),
                "SystemDisk": {"DiskSize": i.system_disk_size},
            }
            for i in found[offset : offset + limit]
        ],
    }


@SERVICE.action("DescribeRegions", set())
def describe_regions(ctx: CallContext, p: Params) -> dict:
    regions = ctx.world.regions.describe()
    return {"TotalCount": len(regions), "RegionSet": regions}

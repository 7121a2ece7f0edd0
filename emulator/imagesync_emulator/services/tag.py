"""Tag 2018-08-13: TagResources, UnTagResources, GetResources, DescribeResourceTagsByResourceIds.

Tags live in one store keyed by six-segment resource name (``qcs::cvm:<region>:uin/<uin>:image/<id>``); CVM reads
image tags from the same store, so tags set here show up in DescribeImages. The tag service is global: no region.
"""

from __future__ import annotations

import re

from ..errors import ApiError
from ..params import Params, require_member
from . import CallContext, Service

SERVICE = Service("tag", "2018-08-13")

RESOURCE_RE = re.compile(
    r"^qcs::(?P<svc>[a-z0-9]+):(?P<region>[a-z0-9-]*):uin/(?P<uin>\d+):(?P<rtype>[a-zA-Z]+)"
    r"/(?P<rid>[\w.-]+)$"
)
MAX_RESOURCES = 50
MAX_TAGS_PER_REQUEST = 10
MAX_TAGS_PER_RESOURCE = 50


def _check_resource(ctx: CallContext, name: str) -> None:
    m = RESOURCE_RE.match(name)
    if not m:
        raise ApiError("InvalidParameterValue.ResourceDescriptionError", f"The resource name `{name}` is malformed.")
    if m.group("uin") != ctx.account.uin:
        raise ApiError("InvalidParameterValue.UinInvalid", f"The resource `{name}` belongs to another account.")
    if m.group("svc") == "cvm" and m.group("rtype") == "image":
        img = ctx.world.find_image(m.group("rid"), m.group("region"))
        if img is None or img.owner != ctx.account.uin:
            raise ApiError("InvalidParameterValue.ResourceIdInvalid", f"The image in `{name}` does not exist.")
    if m.group("svc") == "cvm" and m.group("rtype") == "instance":
        inst = ctx.world.instances.get(m.group("rid"))
        if inst is None or inst.owner != ctx.account.uin or inst.region != m.group("region"):
            raise ApiError("InvalidParameterValue.ResourceIdInvalid", f"The instance in `{name}` does not exist.")


def _resource_list(ctx: CallContext, p: Params) -> list[str]:
    resources = p.str_list("ResourceList", required=True) or []
    if len(resources) > MAX_RESOURCES:
        raise ApiError("LimitExceeded.ResourceNumPerRequest", f"At most {MAX_RESOURCES} resources per call.")
    for r in resources:
        _check_resource(ctx, r)
    return resources


def _check_tag(key: str, value: str) -> None:
    if key.lower().startswith("qcs:") or key.lower().startswith("project"):
        raise ApiError("InvalidParameter.ReservedTagKey", f"The tag key `{key}` is reserved.")
    if len(key) > 127:
        raise ApiError("InvalidParameterValue.TagKeyLengthExceeded", "A tag key has at most 127 characters.")
    if len(value) > 255:
        raise ApiError("InvalidParameterValue.TagValueLengthExceeded", "A tag value has at most 255 characters.")


@SERVICE.action("TagResources", {"ResourceList", "Tags"}, needs_region=False)
def tag_resources(ctx: CallContext, p: Params) -> dict:
    resources = _resource_list(ctx, p)
    tags = p.obj_list("Tags", required=True, fields={"TagKey": str, "TagValue": str}) or []
    if len(tags) > MAX_TAGS_PER_REQUEST:
        raise ApiError("LimitExceeded.TagNumPerRequest", f"At most {MAX_TAGS_PER_REQUEST} tags per call.")
    pairs: dict[str, str] = {}
    for i, t in enumerate(tags):
        key = t.get("TagKey") or ""
        if not key:
            raise ApiError("InvalidParameterValue.TagKeyEmpty", f"Tags.{i}.TagKey is empty.")
        value = require_member(f"Tags.{i}", t, "TagValue") if "TagValue" not in t else t["TagValue"]
        if key in pairs:
            raise ApiError("InvalidParameterValue.TagKeyDuplicate", f"The tag key `{key}` is repeated.")
        _check_tag(key, value)
        pairs[key] = value
    for r in resources:
        current = ctx.world.tags.get(r, {})
        if len(set(current) | set(pairs)) > MAX_TAGS_PER_RESOURCE:
            raise ApiError(
                "LimitExceeded.ResourceAttachedTags", f"A resource holds at most {MAX_TAGS_PER_RESOURCE} tags."
            )
    for r in resources:
        ctx.world.tags.setdefault(r, {}).update(pairs)
    return {}


@SERVICE.action("UnTagResources", {"ResourceList", "TagKeys"}, needs_region=False)
def untag_resources(ctx: CallContext, p: Params) -> dict:
    resources = _resource_list(ctx, p)
    keys = p.str_list("TagKeys", required=True) or []
    for r in resources:
        current = ctx.world.tags.get(r)
        if current is None:
            continue
        for k in keys:
            current.pop(k, None)
        if not current:
            del ctx.world.tags[r]
    return {}


def _mine(ctx: CallContext, name: str) -> bool:
    m = RESOURCE_RE.match(name)
    return bool(m) and m.group("uin") == ctx.account.uin


@SERVICE.action("GetResources", {"ResourceList", "TagFilters", "PaginationToken", "MaxResults"}, needs_region=False)
def get_resources(ctx: CallContext, p: Params) -> dict:
    wanted = p.str_list("ResourceList")
    filters = p.obj_list("TagFilters", fields={"TagKey": str, "TagValue": list}) or []
    token = p.text("PaginationToken", default="") or ""
    max_results = p.integer("MaxResults", default=50, minimum=1, maximum=200) or 50
    try:
        start = int(token) if token else 0
    except ValueError as exc:
        raise ApiError("InvalidParameter.PaginationTokenInvalid", "The pagination token is invalid.") from exc
    names = sorted(n for n in ctx.world.tags if _mine(ctx, n) and (wanted is None or n in wanted))
    for f in filters:
        key = f.get("TagKey")
        values = f.get("TagValue") or []
        names = [n for n in names if key in ctx.world.tags[n] and (not values or ctx.world.tags[n][key] in values)]
    page = names[start : start + max_results]
    nxt = str(start + max_results) if start + max_results < len(names) else ""
    return {
        "PaginationToken": nxt,
        "ResourceTagMappingList": [
            {"Resource": n, "Tags": [{"TagKey": k, "TagValue": v} for k, v in ctx.world.tags[n].items()]} for n in page
        ],
    }


@SERVICE.action(
    "DescribeResourceTagsByResourceIds",
    {"ServiceType", "ResourcePrefix", "ResourceIds", "ResourceRegion", "Offset", "Limit", "Category"},
    needs_region=False,
)
def describe_resource_tags_by_resource_ids(ctx: CallContext, p: Params) -> dict:
    service = p.text("ServiceType", required=True)
    prefix = p.text("ResourcePrefix", required=True)
    ids = p.str_list("ResourceIds", required=True) or []
    region = p.text("ResourceRegion", required=True)
    offset = p.integer("Offset", default=0, minimum=0) or 0
    limit = p.integer("Limit", default=15, minimum=1, maximum=100) or 15
    p.text("Category")
    rows = []
    for rid in ids:
        name = f"qcs::{service}:{region}:uin/{ctx.account.uin}:{prefix}/{rid}"
        for k, v in ctx.world.tags.get(name, {}).items():
            rows.append({"TagKey": k, "TagValue": v, "ResourceId": rid})
    return {"TotalCount": len(rows), "Offset": offset, "Limit": limit, "Tags": rows[offset : offset + limit]}

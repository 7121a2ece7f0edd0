"""The CVM ports on TencentCloud: ImageService (TencentImages: DescribeImages, SyncImages, quota, the region service)
and ImageAdmin (TencentImageAdmin: tags, sharing, instances, deletion)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..domain.errors import CloudError
from ..domain.models import ImageProgress, SourceImage
from .tencent import TencentCloud


def _to_source_image(region: str, raw: dict[str, Any]) -> SourceImage:
    return SourceImage(
        image_id=raw["ImageId"],
        region=region,
        name=raw.get("ImageName") or "",
        image_type=raw.get("ImageType") or "",
        state=raw.get("ImageState") or "",
        size_gb=int(raw.get("ImageSize") or 0),
        tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags") or []},
        created_time=raw.get("CreatedTime"),
        sync_percent=raw.get("SyncPercent"),
        family=raw.get("ImageFamily") or None,
        deprecated=bool(raw.get("ImageDeprecated")),
    )


class TencentImages:
    """The ImageService port on CVM: DescribeImages, SyncImages, and the region service."""

    PAGE = 100  # DescribeImages' Limit maximum

    def __init__(self, cloud: TencentCloud, *, home_region: str = "ap-guangzhou") -> None:
        self.cloud = cloud
        self.home_region = home_region
        self._regions: frozenset[str] | None = None

    def _described(self, region: str, image_ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The raw ImageSet entries of these ids, one DescribeImages per PAGE ids."""
        ids = list(dict.fromkeys(image_ids))
        for start in range(0, len(ids), self.PAGE):
            chunk = ids[start : start + self.PAGE]
            resp = self.cloud.call("cvm", region, "DescribeImages", {"ImageIds": chunk, "Limit": self.PAGE}, safe=True)
            yield from resp.get("ImageSet") or []

    def describe_images(self, region: str, image_ids: Sequence[str]) -> dict[str, SourceImage]:
        return {raw["ImageId"]: _to_source_image(region, raw) for raw in self._described(region, image_ids)}

    def describe_progress(self, region: str, image_ids: Sequence[str]) -> dict[str, ImageProgress]:
        """The same calls, each image read as (ImageState, SyncPercent) only: no SourceImage validated per image."""
        found: dict[str, ImageProgress] = {}
        for raw in self._described(region, image_ids):
            percent = raw.get("SyncPercent")
            if percent is not None and type(percent) is not int:
                percent = int(percent)  # as SourceImage would take it
            found[raw["ImageId"]] = ImageProgress(raw.get("ImageState") or "", percent)
        return found

    def find_by_name(self, region: str, name: str) -> list[SourceImage]:
        """Custom images named exactly `name` in `region` (the image-name filter is fuzzy: compare ourselves)."""
        params = {
            "Filters": [
                {"Name": "image-name", "Values": [name]},
                {"Name": "image-type", "Values": ["PRIVATE_IMAGE"]},
            ],
            "Limit": self.PAGE,
        }
        resp = self.cloud.call("cvm", region, "DescribeImages", params, safe=True)
        return [_to_source_image(region, raw) for raw in resp.get("ImageSet") or [] if raw.get("ImageName") == name]

    def list_custom_images(
        self, region: str, *, tags: dict[str, str] | None = None, tag_key: str | None = None, limit: int = 10000
    ) -> list[SourceImage]:
        """PRIVATE_IMAGE images in `region`, paged by Offset/Limit 100 (docs/facts.md#F-IMG-1).

        Tag conditions become `tag:<key>` / `tag-key` filters (at most 10 filters in all: the rest is left to the
        caller's exact match). Pages are read until one comes back short or `limit` images are read.
        """
        filters: list[dict[str, Any]] = [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}]
        for key, value in list((tags or {}).items())[:8]:
            filters.append({"Name": f"tag:{key}", "Values": [value]})
        if tag_key:
            filters.append({"Name": "tag-key", "Values": [tag_key]})
        out: list[SourceImage] = []
        offset = 0
        while len(out) < limit:
            params = {"Filters": filters, "Offset": offset, "Limit": self.PAGE}
            resp = self.cloud.call("cvm", region, "DescribeImages", params, safe=True)
            page = resp.get("ImageSet") or []
            out.extend(_to_source_image(region, raw) for raw in page)
            offset += len(page)
            if len(page) < self.PAGE or offset >= int(resp.get("TotalCount") or 0):
                break
        return out[:limit]

    def sync_image(
        self, region: str, image_id: str, destinations: Sequence[str], *, name: str | None, dry_run: bool
    ) -> dict[str, str]:
        params: dict[str, Any] = {
            "ImageIds": [image_id],
            "DestinationRegions": list(destinations),
            "ImageSetRequired": True,
        }
        if name:
            params["ImageName"] = name
        if dry_run:
            params["DryRun"] = True
        # Not `safe`: a SyncImages lost in transit may have started copies; the sweep reconciles by name instead.
        resp = self.cloud.call("cvm", region, "SyncImages", params, safe=False)
        return {item["Region"]: item["ImageId"] for item in resp.get("ImageSet") or []}

    def available_regions(self) -> frozenset[str]:
        if self._regions is None:
            resp = self.cloud.call("region", self.home_region, "DescribeRegions", {"Product": "cvm"}, safe=True)
            self._regions = frozenset(
                r["Region"] for r in resp.get("RegionSet") or [] if r.get("RegionState", "AVAILABLE") == "AVAILABLE"
            )
        return self._regions

    # -- added for encrypted copies and the quota check (issue 6) ---------------------------------------------

    def encrypt_image(self, region: str, image_id: str, *, kms_key_id: str, name: str | None) -> str:
        """A same-region SyncImages with Encrypt and KmsKeyId (the only way to encrypt a copy: an encrypted copy
        may only target its source's region); returns the encrypted copy's image id."""
        params: dict[str, Any] = {
            "ImageIds": [image_id],
            "DestinationRegions": [region],
            "ImageSetRequired": True,
            "Encrypt": True,
            "KmsKeyId": kms_key_id,
        }
        if name:
            params["ImageName"] = name
        # Not `safe`, like sync_image: a lost answer may have started the copy (the starter adopts it by name).
        resp = self.cloud.call("cvm", region, "SyncImages", params, safe=False)
        for item in resp.get("ImageSet") or []:
            if item.get("Region") == region:
                return str(item["ImageId"])
        raise CloudError("Copy.NoImageId", f"SyncImages returned no image id for {region}", retryable=True)

    def image_quota(self, region: str) -> tuple[int, int]:
        """(quota, used) in `region`: DescribeImageQuota's ImageNumQuota, and the TotalCount of the account's
        custom images there (DescribeImages with the image-type filter, Limit 1: one call, any number of images)."""
        quota = self.cloud.call("cvm", region, "DescribeImageQuota", {}, safe=True)
        listed = self.cloud.call(
            "cvm",
            region,
            "DescribeImages",
            {"Filters": [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}], "Limit": 1},
            safe=True,
        )
        return int(quota.get("ImageNumQuota") or 0), int(listed.get("TotalCount") or 0)


def image_resource(region: str, uin: str, image_id: str) -> str:
    """The tag service's six-segment name of a CVM image."""
    return f"qcs::cvm:{region}:uin/{uin}:image/{image_id}"


class TencentImageAdmin:
    """The ImageAdmin port (what hooks do to a finished copy) on CVM and the tag service.

    `uin` is the account's own uin (TENCENTCLOUD_UIN on SCF, or IMAGESYNC_UIN): the tag service names an image
    by it. Tagging without one raises CloudError("Tag.NoAccountUin").
    """

    TAGS_PER_CALL = 10  # TagResources: at most 10 tags per request
    DELETE_PER_CALL = 10  # DeleteImages: at most 10 images per request
    PAGE = 100  # DescribeInstances' Limit maximum

    def __init__(self, cloud: TencentCloud, *, uin: str = "", home_region: str = "ap-guangzhou") -> None:
        self.cloud = cloud
        self.uin = uin
        self.home_region = home_region

    def tag_image(self, region: str, image_id: str, tags: dict[str, str]) -> None:
        if not self.uin:
            raise CloudError(
                "Tag.NoAccountUin", "the account's uin is unknown: set IMAGESYNC_UIN (SCF sets TENCENTCLOUD_UIN)"
            )
        items = [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())]
        resource = image_resource(region, self.uin, image_id)
        for start in range(0, len(items), self.TAGS_PER_CALL):
            # Setting a tag to the value it has is a no-op: safe to repeat.
            self.cloud.call(
                "tag",
                self.home_region,
                "TagResources",
                {"ResourceList": [resource], "Tags": items[start : start + self.TAGS_PER_CALL]},
                safe=True,
            )

    def share_image(self, region: str, image_id: str, account_ids: Sequence[str]) -> list[str]:
        # Sharing with an account already shared with is refused (FailedOperation.AccountAlreadyExists) for the
        # whole call, so ask first and share only the missing ones: repeated runs converge.
        resp = self.cloud.call("cvm", region, "DescribeImageSharePermission", {"ImageId": image_id}, safe=True)
        already = {str(p.get("AccountId")) for p in resp.get("SharePermissionSet") or []}
        missing = [a for a in dict.fromkeys(account_ids) if a not in already]
        if missing:
            try:
                self.cloud.call(
                    "cvm",
                    region,
                    "ModifyImageSharePermission",
                    {"ImageId": image_id, "AccountIds": missing, "Permission": "SHARE"},
                    safe=True,
                )
            except CloudError as exc:
                # Shared meanwhile: by this call itself when its answer was lost and the retry met the share, or
                # by a concurrent run of the same hook. The effect wanted is there; share what is still missing.
                if exc.cloud_code != "FailedOperation.AccountAlreadyExists":
                    raise
                resp = self.cloud.call("cvm", region, "DescribeImageSharePermission", {"ImageId": image_id}, safe=True)
                now_shared = {str(p.get("AccountId")) for p in resp.get("SharePermissionSet") or []}
                rest = [a for a in missing if a not in now_shared]
                if rest:
                    self.cloud.call(
                        "cvm",
                        region,
                        "ModifyImageSharePermission",
                        {"ImageId": image_id, "AccountIds": rest, "Permission": "SHARE"},
                        safe=True,
                    )
        return missing

    def run_instances(self, region: str, image_id: str, spec: dict[str, Any], *, client_token: str) -> list[str]:
        params = {**spec, "ImageId": image_id, "ClientToken": client_token}
        # `safe`: the ClientToken makes the cloud answer a repeat with the first call's instances.
        resp = self.cloud.call("cvm", region, "RunInstances", params, safe=True)
        return [str(i) for i in resp.get("InstanceIdSet") or []]

    def instances_using(self, region: str, image_id: str) -> list[str]:
        # DescribeInstances has no image-id filter (docs/facts.md#F-IMG-3: zone, instance-id, vpc-id, ... only),
        # so every instance of the region is listed, 100 per page, and compared here.
        found: list[str] = []
        offset = 0
        while True:
            resp = self.cloud.call(
                "cvm", region, "DescribeInstances", {"Offset": offset, "Limit": self.PAGE}, safe=True
            )
            page = resp.get("InstanceSet") or []
            found += [str(i["InstanceId"]) for i in page if i.get("ImageId") == image_id]
            offset += len(page)
            if not page or offset >= int(resp.get("TotalCount") or 0):
                return found

    def modify_image(
        self, region: str, image_id: str, *, family: str | None = None, deprecated: bool | None = None
    ) -> None:
        """ModifyImageAttribute with ImageFamily and/or ImageDeprecated (docs/facts.md#F-IMG-6)."""
        params: dict[str, Any] = {"ImageId": image_id}
        if family is not None:
            params["ImageFamily"] = family
        if deprecated is not None:
            params["ImageDeprecated"] = deprecated
        self.cloud.call("cvm", region, "ModifyImageAttribute", params, safe=True)  # setting a value again is a no-op

    def delete_images(self, region: str, image_ids: Sequence[str], *, delete_snapshots: bool = False) -> None:
        ids = list(dict.fromkeys(image_ids))
        for start in range(0, len(ids), self.DELETE_PER_CALL):
            params: dict[str, Any] = {"ImageIds": ids[start : start + self.DELETE_PER_CALL]}
            if delete_snapshots:  # else the snapshots stay behind, still billed (docs/facts.md#F-IMG-3)
                params["DeleteBindedSnap"] = True
            self.cloud.call("cvm", region, "DeleteImages", params, safe=False)

    def shared_with(self, region: str, image_id: str) -> list[str]:
        resp = self.cloud.call("cvm", region, "DescribeImageSharePermission", {"ImageId": image_id}, safe=True)
        return [str(p.get("AccountId")) for p in resp.get("SharePermissionSet") or []]

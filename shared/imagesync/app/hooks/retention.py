"""retention: keep the newest N copies per rule (or, with `per: family`, per ImageFamily) and region; delete older
ones made by imagesync only.

Candidates are the store's own records (SUCCEEDED replicas of the same rule, or without a rule of the same copy
name, in the region): an image imagesync did not make is never considered. Of those still existing, the newest
`keep` (by end time) are kept; an older one is refused when it is not NORMAL (still syncing or creating), when an
instance uses it (DescribeInstances paged: docs/facts.md#F-IMG-3), or when the cloud refuses to delete it (shared).
Dry run by default: the outcome says what would be deleted.

Per family: the group is imagesync's copies in the region (the store's records, matched against the region's custom
images) whose ImageFamily is the source's, plus the copy that just ended (its family may be set by a `family` hook
running after this one), newest created first.
"""

from __future__ import annotations

from typing import Any

from ...domain.errors import CloudError
from ...domain.hooks import RetentionHook
from ...ports import ImageAdmin, ImageService, ReplicaStore
from . import HookContext, HookOutcome, done, skipped

READY = "NORMAL"
#: at most this many custom images listed per region for a family's group (100 per DescribeImages call)
LIST_LIMIT = 2000


class RetentionRunner:
    def __init__(self, replicas: ReplicaStore, images: ImageService, admin: ImageAdmin) -> None:
        self.replicas = replicas
        self.images = images
        self.admin = admin

    def run(self, spec: RetentionHook, ctx: HookContext) -> HookOutcome:
        if not ctx.image_id:
            return skipped("no copy ended here")
        region = ctx.region
        group: dict[str, Any]
        if spec.per == "family":
            m = ctx.message
            source = self.images.describe_images(m.source_region, [m.source_image_id]).get(m.source_image_id)
            if source is None or not source.family:
                return skipped("the source has no ImageFamily", source_image_id=m.source_image_id)
            listed = self.images.list_custom_images(region, limit=LIST_LIMIT)  # newest first
            ours = self.replicas.destination_image_ids(region, [i.image_id for i in listed])
            members = [
                i for i in listed if i.image_id in ours and (i.family == source.family or i.image_id == ctx.image_id)
            ]
            live = {i.image_id: i for i in members}
            existing = [i.image_id for i in members]
            group = {"family": source.family}
        else:
            copies = self.replicas.finished_copies(region, rule=ctx.rule, image_name=ctx.message.image_name)
            ids = [c.destination_image_id for c in copies if c.destination_image_id]
            live = self.images.describe_images(region, ids) if ids else {}
            existing = [i for i in ids if i in live]
            group = {"rule": ctx.rule} if ctx.rule else {"image_name": ctx.message.image_name}
        kept, older = existing[: spec.keep], existing[spec.keep :]
        refused: list[dict[str, Any]] = []
        candidates: list[str] = []
        for image_id in older:
            image = live[image_id]
            if image.state != READY:
                refused.append({"image_id": image_id, "code": "Retention.NotReady", "state": image.state})
                continue
            if image.image_type and image.image_type != "PRIVATE_IMAGE":
                refused.append({"image_id": image_id, "code": "Retention.NotOwned", "type": image.image_type})
                continue
            users = self.admin.instances_using(region, image_id)
            if users:
                refused.append({"image_id": image_id, "code": "Retention.InUse", "instances": users})
                continue
            candidates.append(image_id)
        if spec.dry_run:
            return done(dry_run=True, region=region, **group, kept=kept, would_delete=candidates, refused=refused)
        deleted: list[str] = []
        for image_id in candidates:
            try:
                self.admin.delete_images(region, [image_id])
            except CloudError as exc:
                if exc.cloud_code.startswith("InvalidImageId.NotFound"):
                    deleted.append(image_id)  # gone already (a retry after our own delete)
                    continue
                if exc.retryable:
                    raise
                refused.append({"image_id": image_id, "code": exc.cloud_code, "message": exc.message})
                continue
            deleted.append(image_id)
        return done(dry_run=False, region=region, **group, kept=kept, deleted=deleted, refused=refused)

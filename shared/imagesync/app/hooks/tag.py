"""tag: the source image's tags and provenance tags on the copy, through the tag service."""

from __future__ import annotations

from ...domain.hooks import TagHook
from ...ports import ImageAdmin, ImageService
from . import HookContext, HookOutcome, done, skipped

#: provenance tag keys (tag keys: at most 127 characters; letters, digits, spaces and + - = . _ : / @ ( ) [ ];
#: not starting with "qcs:" or "project", which are reserved)
SOURCE_IMAGE = "imagesync:source-image"
SOURCE_REGION = "imagesync:source-region"
REPLICATION_ID = "imagesync:replication-id"
RULE = "imagesync:rule"
RESERVED_PREFIXES = ("qcs:", "project")


def provenance_tags(ctx: HookContext) -> dict[str, str]:
    m = ctx.message
    tags = {SOURCE_IMAGE: m.source_image_id, SOURCE_REGION: m.source_region, REPLICATION_ID: m.replication_id}
    if ctx.rule:
        tags[RULE] = ctx.rule[:255]
    return tags


class TagRunner:
    def __init__(self, images: ImageService, admin: ImageAdmin) -> None:
        self.images = images
        self.admin = admin

    def run(self, spec: TagHook, ctx: HookContext) -> HookOutcome:
        if not ctx.image_id:
            return skipped("no copy to tag")
        tags: dict[str, str] = {}
        if spec.copy_source_tags:
            # read live: SyncImages does not carry tags over (unconfirmed, so tag explicitly: docs/facts.md#F-IMG-4)
            source = self.images.describe_images(ctx.message.source_region, [ctx.message.source_image_id])
            image = source.get(ctx.message.source_image_id)
            if image is not None:
                tags.update({k: v for k, v in image.tags.items() if not k.lower().startswith(RESERVED_PREFIXES)})
        tags.update(spec.extra)
        if spec.provenance:
            tags.update(provenance_tags(ctx))
        if not tags:
            return skipped("no tags to put")
        self.admin.tag_image(ctx.region, ctx.image_id, tags)
        return done(image_id=ctx.image_id, tags=tags)

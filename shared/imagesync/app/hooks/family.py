"""family: the source's ImageFamily on the copy (ModifyImageAttribute), and ImageDeprecated when the source is
already deprecated. A later deprecation of the source reaches its copies through the reconcile pass
(app.follow_source)."""

from __future__ import annotations

from ...domain.hooks import FamilyHook
from ...ports import ImageAdmin, ImageService
from . import HookContext, HookOutcome, done, skipped


class FamilyRunner:
    def __init__(self, images: ImageService, admin: ImageAdmin) -> None:
        self.images = images
        self.admin = admin

    def run(self, spec: FamilyHook, ctx: HookContext) -> HookOutcome:
        if not ctx.image_id:
            return skipped("no copy to set a family on")
        m = ctx.message
        source = self.images.describe_images(m.source_region, [m.source_image_id]).get(m.source_image_id)
        if source is None:
            return skipped("the source image is gone", source_image_id=m.source_image_id)
        if not source.family and not source.deprecated:
            return skipped("the source has no ImageFamily", source_image_id=m.source_image_id)
        # setting the same values again changes nothing: safe on redelivery
        self.admin.modify_image(
            ctx.region, ctx.image_id, family=source.family, deprecated=True if source.deprecated else None
        )
        return done(image_id=ctx.image_id, family=source.family, deprecated=source.deprecated)

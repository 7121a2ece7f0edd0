"""share: share the copy with accounts (ModifyImageSharePermission in the destination region)."""

from __future__ import annotations

from ...domain.hooks import ShareHook
from ...ports import ImageAdmin
from . import HookContext, HookOutcome, done, skipped


class ShareRunner:
    def __init__(self, admin: ImageAdmin) -> None:
        self.admin = admin

    def run(self, spec: ShareHook, ctx: HookContext) -> HookOutcome:
        if not ctx.image_id:
            return skipped("no copy to share")
        added = self.admin.share_image(ctx.region, ctx.image_id, spec.account_ids)
        return done(image_id=ctx.image_id, shared_with=list(spec.account_ids), newly_shared=added)

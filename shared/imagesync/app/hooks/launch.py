"""launch (opt-in): an instance from the copy, RunInstances with the hook's spec in the destination region."""

from __future__ import annotations

from ...domain.hooks import EncryptHook, LaunchHook
from ...ports import ImageAdmin
from . import HookContext, HookOutcome, done, skipped


class LaunchRunner:
    def __init__(self, admin: ImageAdmin) -> None:
        self.admin = admin

    def run(self, spec: LaunchHook, ctx: HookContext) -> HookOutcome:
        if not ctx.image_id:
            return skipped("no copy to launch")
        if spec.regions is not None and ctx.region not in spec.regions:
            return skipped(f"{ctx.region} is not among the hook's regions")
        encrypted_next = (
            ctx.replica is not None
            and not ctx.replica.kms_key_id
            and any(isinstance(h, EncryptHook) and ctx.region in h.kms_key_ids for h in ctx.hooks)
        )
        if encrypted_next:
            return skipped("the encrypted copy of this one is launched instead")
        # ClientToken: RunInstances answers a repeat with the same instances instead of launching more
        token = f"imagesync-{ctx.message.replica_id}-{spec.key}"[:64]
        instance_ids = self.admin.run_instances(ctx.region, ctx.image_id, spec.spec, client_token=token)
        return done(image_id=ctx.image_id, instance_ids=instance_ids)

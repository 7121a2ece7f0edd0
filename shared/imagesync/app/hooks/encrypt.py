"""encrypt: the encrypted copy of a finished copy, as one more replica of the same replication.

The encrypted copy is a same-region SyncImages with Encrypt and the region's KMS key (an encrypted copy may only
target its source's region). It is recorded as a PENDING replica whose source is the finished copy; the sweep
starts it (CopyStarter.encrypt_image), tracks it and publishes its own end like any other replica's.
"""

from __future__ import annotations

from datetime import timedelta

from ...domain.hooks import EncryptHook
from ...domain.models import Replica
from ...domain.states import ReplicaState
from ...ports import ReplicaStore
from . import HookContext, HookOutcome, derived_id, done, skipped


class EncryptRunner:
    def __init__(self, replicas: ReplicaStore, *, timeout_seconds: int) -> None:
        self.replicas = replicas
        self.timeout = timedelta(seconds=timeout_seconds)

    def run(self, spec: EncryptHook, ctx: HookContext) -> HookOutcome:
        replica = ctx.replica
        if replica is None or not ctx.image_id:
            return skipped("no stored copy to encrypt")
        if replica.kms_key_id:
            return skipped("this copy is already the encrypted one")
        key = spec.kms_key_ids.get(ctx.region)
        if not key:
            return skipped(f"no KMS key for {ctx.region}")
        child = Replica(
            # derived from the parent and the hook: a redelivery finds the replica it recorded, never a second one
            id=derived_id("rpl", replica.id, spec.key),
            replication_id=replica.replication_id,
            source_region=ctx.region,
            source_image_id=ctx.image_id,
            destination_region=ctx.region,
            image_name=replica.image_name,
            state=ReplicaState.PENDING,
            created_at=ctx.now,
            updated_at=ctx.now,
            next_check_at=ctx.now,
            deadline_at=ctx.now + self.timeout,
            kms_key_id=key,
            parent_replica_id=replica.id,
        )
        stored = self.replicas.add_replica(child)
        return done(replica_id=stored.id, source_image_id=ctx.image_id, kms_key_id=key)

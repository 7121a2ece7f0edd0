"""Use case: retry only what failed. New attempts for the copies of a replication whose latest attempt ended
FAILED or TIMED_OUT (or the ones named), never a SUCCEEDED one; the earlier attempts stay as the history.

Idempotent: each new attempt's id is derived from the attempt it retries (domain.attempts.retry_id), so a repeated
or racing call inserts nothing new and answers the attempts already running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ..domain import errors, regions
from ..domain.attempts import latest, retry_id
from ..domain.models import Replica, Replication
from ..domain.states import ReplicaState
from ..domain.validation import Limits, check_image
from ..ports import AuditLog, Clock, ImageService, ReplicaStore
from .start_copies import CopyStarter

RETRYABLE = frozenset({ReplicaState.FAILED, ReplicaState.TIMED_OUT})


@dataclass(frozen=True)
class RetryResult:
    replication: Replication
    started: list[Replica]  # attempts this call added
    running: list[Replica]  # retries already in flight that this call named or would have started


class RetryFailed:
    def __init__(
        self,
        replicas: ReplicaStore,
        audit: AuditLog,
        images: ImageService,
        clock: Clock,
        limits: Limits,
        starter: CopyStarter,
        *,
        timeout_seconds: int,
    ) -> None:
        self.replicas = replicas
        self.audit = audit
        self.images = images
        self.clock = clock
        self.limits = limits
        self.starter = starter
        self.timeout = timedelta(seconds=timeout_seconds)

    def __call__(
        self,
        replication_id: str,
        *,
        regions: Sequence[str] = (),
        replica_ids: Sequence[str] = (),
        requested_by: str = "unknown",
        origin: str = "cli",
    ) -> RetryResult:
        replication = self.replicas.get_replication(replication_id)
        if replication is None:
            raise errors.ReplicationNotFound(f"no replication {replication_id}")
        targets, running = self._select(replication, regions, replica_ids)
        if not targets and not running:
            raise errors.NothingToRetry(
                f"{replication_id} has no FAILED or TIMED_OUT copy to retry", replication_id=replication_id
            )
        added = self._add(replication, targets) if targets else []
        fresh = [r for r in added if r.version == 0 and r.state is ReplicaState.PENDING]
        started_ids = {r.id for r in added if r.retry_of in {t.id for t in targets}}
        if added:
            self.audit.record_audit(
                replication.id,
                "retried",
                actor=requested_by,
                origin=origin,
                detail={
                    "retries": {r.retry_of: r.id for r in added},
                    "regions": sorted({r.destination_region for r in added}),
                },
            )
        self.starter.start(fresh)
        final = self.replicas.get_replication(replication.id)
        assert final is not None
        by_id = {r.id: r for r in final.replicas}
        return RetryResult(
            final,
            started=[by_id[i] for i in started_ids if i in by_id],
            running=[by_id.get(r.id, r) for r in running],
        )

    def _select(
        self, replication: Replication, named_regions: Sequence[str], replica_ids: Sequence[str]
    ) -> tuple[list[Replica], list[Replica]]:
        """(attempts to retry, retries already running) among the latest attempts the call names (default: all)."""
        everything = replication.replicas
        current = replication.current_replicas
        if not named_regions and not replica_ids:
            targets = [r for r in current if r.state in RETRYABLE]
            running = [r for r in current if not r.terminal and r.retry_of]
            return targets, running
        chosen: dict[str, Replica] = {}
        known_regions = {r.destination_region for r in everything}
        for region in named_regions:
            if region not in known_regions:
                raise errors.RetryNotInReplication(
                    f"{replication.id} copies nothing into {region}", replication_id=replication.id, region=region
                )
            for r in current:
                if r.destination_region == region:
                    chosen[r.id] = r
        by_id = {r.id: r for r in everything}
        for replica_id in replica_ids:
            if replica_id not in by_id:
                raise errors.RetryNotInReplication(
                    f"{replica_id} is not a replica of {replication.id}",
                    replication_id=replication.id,
                    replica_id=replica_id,
                )
            last = latest(by_id[replica_id], everything)
            chosen[last.id] = last
        targets, running = [], []
        for r in chosen.values():
            if r.state in RETRYABLE:
                targets.append(r)
            elif r.state is ReplicaState.SUCCEEDED:
                raise errors.RetrySucceeded(
                    f"the copy of {r.source_image_id} into {r.destination_region} succeeded ({r.id}): not retried",
                    replica_id=r.id,
                    region=r.destination_region,
                )
            elif r.retry_of:
                running.append(r)  # a repeated call: this retry is already running
            else:
                raise errors.RetryStillActive(
                    f"the copy of {r.source_image_id} into {r.destination_region} is still {r.state.value} ({r.id})",
                    replica_id=r.id,
                    region=r.destination_region,
                    state=r.state.value,
                )
        return targets, running

    def _add(self, replication: Replication, targets: Sequence[Replica]) -> list[Replica]:
        """Insert one new attempt per target (checked again against the source and the region policy)."""
        available = self.images.available_regions()
        for r in targets:
            if not r.kms_key_id:  # an encrypted copy stays in its region
                regions.check_copy(
                    r.source_region,
                    r.destination_region,
                    available=available,
                    cross_border_allowed=self.limits.cross_border_allowed,
                )
        found = self.images.describe_images(replication.source_region, sorted({r.source_image_id for r in targets}))
        now = self.clock.now()
        added = []
        for r in targets:
            source_region = r.source_region
            image = found.get(r.source_image_id)
            if source_region != replication.source_region:  # an encrypted copy: its source is the parent's copy
                image = self.images.describe_images(source_region, [r.source_image_id]).get(r.source_image_id)
            ready = check_image(r.source_image_id, image, source_region, self.limits)
            attempt = Replica(
                id=retry_id(r.id),
                replication_id=replication.id,
                source_region=source_region,
                source_image_id=r.source_image_id,
                destination_region=r.destination_region,
                image_name=r.image_name,
                state=ReplicaState.PENDING if ready else ReplicaState.WAITING_SOURCE,
                created_at=now,
                updated_at=now,
                next_check_at=now,
                deadline_at=now + self.timeout,
                kms_key_id=r.kms_key_id,
                parent_replica_id=r.parent_replica_id,
                retry_of=r.id,
            )
            added.append(self.replicas.add_replica(attempt))
        return added

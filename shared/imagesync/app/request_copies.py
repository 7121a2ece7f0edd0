"""Use case: validate a copy request against the live source images, record it (intent first), start the copies."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from ..domain import errors
from ..domain.accounts import check_accounts
from ..domain.destinations import has_keyword, resolve
from ..domain.models import CopyRequest, Replica, Replication, SourceImage
from ..domain.states import ReplicaState
from ..domain.validation import Limits, check_image, check_shape, copy_name
from ..ports import AuditLog, Clock, ImageService, ReplicaStore
from .start_copies import CopyStarter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestResult:
    replication: Replication
    created: bool  # False: a dry run (nothing recorded)


class RequestCopies:
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
        own_uin: str | None = None,
    ) -> None:
        self.replicas = replicas
        self.audit = audit
        self.images = images
        self.clock = clock
        self.limits = limits
        self.starter = starter
        self.timeout = timedelta(seconds=timeout_seconds)
        self.own_uin = own_uin

    def __call__(self, request: CopyRequest) -> RequestResult:
        available = self.images.available_regions()
        excluded: dict[str, str] = {}
        if has_keyword(request.destination_regions):
            request, excluded = self._resolve(request, available)
        check_shape(request, self.limits, available)
        check_accounts(
            request.source_region,
            request.accounts,
            own_uin=self.own_uin,
            available=available,
            cross_border_allowed=self.limits.cross_border_allowed,
            max_regions=self.limits.max_regions,
        )
        found = self.images.describe_images(request.source_region, request.image_ids)
        ready: dict[str, bool] = {}
        sources: dict[str, SourceImage] = {}
        for image_id in request.image_ids:
            image = found.get(image_id)
            ready[image_id] = check_image(image_id, image, request.source_region, self.limits)
            assert image is not None
            sources[image_id] = image
        for image_id in request.image_ids:
            for destination in request.destination_regions:
                existing = self.replicas.find_active(request.source_region, image_id, destination)
                if existing is not None:
                    raise errors.AlreadyInFlight(
                        f"{image_id} is already being copied to {destination}",
                        replication_id=existing.replication_id,
                        image_id=image_id,
                        region=destination,
                    )
            for dest in request.accounts:
                for region in {request.source_region, *dest.regions}:
                    existing = self.replicas.find_active(request.source_region, image_id, region, dest.account)
                    if existing is not None:
                        raise errors.AlreadyInFlight(
                            f"{image_id} is already being delivered to account {dest.account} in {region}",
                            replication_id=existing.replication_id,
                            image_id=image_id,
                            region=region,
                            account=dest.account,
                        )

        now = self.clock.now()
        replication = Replication(
            source_region=request.source_region,
            image_ids=list(request.image_ids),
            destination_regions=list(request.destination_regions),
            name=request.name,
            dry_run=request.dry_run,
            origin=request.origin,
            requested_by=request.requested_by,
            rule=request.rule,
            hooks=list(request.hooks),
            accounts=list(request.accounts),
            created_at=now,
            requested_destinations=request.requested_destinations,
        )
        replicas = [
            Replica(
                replication_id=replication.id,
                source_region=request.source_region,
                source_image_id=image_id,
                destination_region=destination,
                image_name=copy_name(request.name, sources[image_id]),
                state=ReplicaState.PENDING if ready[image_id] else ReplicaState.WAITING_SOURCE,
                created_at=now,
                updated_at=now,
                next_check_at=now,
                deadline_at=now + self.timeout,
            )
            for image_id in request.image_ids
            for destination in request.destination_regions
        ]
        for image_id in request.image_ids:
            replicas.extend(self._deliveries(request, replication.id, sources[image_id], ready[image_id]))
        replication = replication.model_copy(update={"replicas": replicas})

        if request.dry_run:
            for image_id in request.image_ids:
                if ready[image_id] and request.destination_regions:
                    self.images.sync_image(
                        request.source_region, image_id, request.destination_regions, name=request.name, dry_run=True
                    )
            return RequestResult(replication, created=False)

        stored = self.replicas.create_replication(replication)  # intent first: nothing is started unrecorded
        self.audit.record_audit(
            stored.id,
            "requested",
            actor=request.requested_by,
            origin=request.origin.value,
            detail={
                "images": request.image_ids,
                "regions": request.destination_regions,
                **(
                    {"asked": request.requested_destinations, "left_out": excluded}
                    if excluded or request.requested_destinations
                    else {}
                ),
            },
        )
        self.starter.start([r for r in stored.replicas if r.state is ReplicaState.PENDING])
        final = self.replicas.get_replication(stored.id)
        assert final is not None
        return RequestResult(final, created=True)

    def _deliveries(self, request: CopyRequest, replication_id: str, source: SourceImage, ready: bool) -> list[Replica]:
        """The replicas of `source`'s deliveries into other accounts: per account, its handover copy in the source
        region (made by the account from the shared source), then one replica per other region of the account,
        waiting for the handover copy (its parent) to end. The handover may wait for the source's own copies (an
        image is shared only while NORMAL): twice the timeout; the others wait for it too: three times."""
        now = self.clock.now()
        out: list[Replica] = []
        for dest in request.accounts:
            handover = Replica(
                replication_id=replication_id,
                source_region=request.source_region,
                source_image_id=source.image_id,
                destination_region=request.source_region,
                image_name=copy_name(request.name, source),
                state=ReplicaState.PENDING if ready else ReplicaState.WAITING_SOURCE,
                created_at=now,
                updated_at=now,
                next_check_at=now,
                deadline_at=now + 2 * self.timeout,
                account=dest.account,
                role=dest.role,
            )
            out.append(handover)
            out.extend(
                Replica(
                    replication_id=replication_id,
                    source_region=request.source_region,
                    source_image_id=source.image_id,
                    destination_region=region,
                    image_name=handover.image_name,
                    state=ReplicaState.WAITING_SOURCE,
                    created_at=now,
                    updated_at=now,
                    next_check_at=now,
                    deadline_at=now + 3 * self.timeout,
                    account=dest.account,
                    role=dest.role,
                    parent_replica_id=handover.id,
                )
                for region in dest.regions
                if region != request.source_region
            )
        return out

    def _resolve(self, request: CopyRequest, available: frozenset[str]) -> tuple[CopyRequest, dict[str, str]]:
        """The request with its destination keywords resolved (domain.destinations), and the regions left out."""
        resolution = resolve(
            request.source_region,
            request.destination_regions,
            available=available,
            cross_border_allowed=self.limits.cross_border_allowed,
        )
        if not resolution.regions:
            raise errors.NoDestinationLeft(
                f"{', '.join(request.destination_regions)} leaves no region {request.source_region} can copy to",
                left_out=resolution.excluded,
            )
        log.info(
            "destinations %s resolved to %s",
            request.destination_regions,
            resolution.regions,
            extra={"left_out": resolution.excluded},
        )
        resolved = request.model_copy(
            update={
                "destination_regions": resolution.regions,
                "requested_destinations": list(request.requested_destinations or request.destination_regions),
            }
        )
        return resolved, resolution.excluded

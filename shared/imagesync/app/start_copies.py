"""Starting copies: one SyncImages per source image with all its waiting destination regions.

Shared by copy_request (fresh replicas) and status_sweep (PENDING and WAITING_SOURCE ones). A SyncImages whose
answer was lost (InternalError, a dropped connection) may have started copies, so before calling again for a
replica that was attempted before, the destination regions are searched for the copy by name and it is adopted:
one SyncImages per started copy, never two.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from ..domain.errors import CloudError
from ..domain.models import Replica
from ..domain.states import ReplicaState
from ..ports import Clock, ImageService, StateStore
from .transitions import move

log = logging.getLogger(__name__)
S = ReplicaState


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


class CopyStarter:
    def __init__(
        self,
        store: StateStore,
        images: ImageService,
        clock: Clock,
        *,
        first_check_seconds: int,
        retry_seconds: int,
    ) -> None:
        self.store = store
        self.images = images
        self.clock = clock
        self.first_check = timedelta(seconds=first_check_seconds)
        self.retry = timedelta(seconds=retry_seconds)

    def start(self, replicas: Iterable[Replica]) -> list[Replica]:
        """Start every given replica whose source is known to be NORMAL; returns the stored results."""
        groups: dict[tuple[str, str, str], list[Replica]] = defaultdict(list)
        for replica in replicas:
            groups[(replica.source_region, replica.source_image_id, replica.image_name)].append(replica)
        done: list[Replica] = []
        for (region, image_id, name), group in groups.items():
            done.extend(self._start_group(region, image_id, name, group))
        return done

    def _save(self, replica: Replica, state: ReplicaState, **changes: object) -> Replica | None:
        return move(self.store, self.clock, replica, state, **changes)

    def _adopt(self, group: Sequence[Replica]) -> tuple[list[Replica], list[Replica]]:
        """Adopt copies a lost SyncImages answer may have started; returns (adopted, still to start)."""
        adopted: list[Replica] = []
        rest: list[Replica] = []
        for replica in group:
            if replica.attempts == 0:
                rest.append(replica)
                continue
            match = None
            for image in self.images.find_by_name(replica.destination_region, replica.image_name):
                created = _parse_time(image.created_time)
                if image.state in ("SYNCING", "NORMAL") and (created is None or created >= replica.created_at):
                    match = image
                    break
            if match is None:
                rest.append(replica)
                continue
            saved = self._save(
                replica,
                S.COPYING,
                destination_image_id=match.image_id,
                started_at=self.clock.now(),
                sync_percent=match.sync_percent,
                next_check_at=self.clock.now() + self.first_check,
                error_code=None,
                error_message=None,
            )
            if saved:
                log.info("adopted copy %s of %s in %s", match.image_id, replica.source_image_id, match.region)
                adopted.append(saved)
        return adopted, rest

    def _start_group(self, region: str, image_id: str, name: str, group: list[Replica]) -> list[Replica]:
        adopted, group = self._adopt(group)
        if not group:
            return adopted
        results: list[Replica] = list(adopted)
        destinations = [r.destination_region for r in group]
        try:
            new_ids = self.images.sync_image(region, image_id, destinations, name=name, dry_run=False)
        except CloudError as exc:
            now = self.clock.now()
            for replica in group:
                if exc.busy:
                    # The source is busy with another copy: wait for it, as for a source still CREATING.
                    saved = self._save(
                        replica, S.WAITING_SOURCE, next_check_at=now + self.retry, error_code=exc.cloud_code,
                        error_message=exc.message,
                    )
                elif exc.retryable:
                    saved = self._save(
                        replica, replica.state, attempts=replica.attempts + 1, next_check_at=now + self.retry,
                        error_code=exc.cloud_code, error_message=exc.message,
                    )
                else:
                    saved = self._save(replica, S.FAILED, error_code=exc.cloud_code, error_message=exc.message)
                if saved:
                    results.append(saved)
            log.warning("SyncImages %s -> %s failed: %s", image_id, destinations, exc.cloud_code)
            return results
        now = self.clock.now()
        for replica in group:
            new_id = new_ids.get(replica.destination_region)
            if new_id is None:
                saved = self._save(
                    replica, replica.state, attempts=replica.attempts + 1, next_check_at=now + self.retry,
                    error_code="Copy.NoImageId", error_message="SyncImages returned no image id for this region",
                )
            else:
                saved = self._save(
                    replica, S.COPYING, destination_image_id=new_id, started_at=now, attempts=replica.attempts + 1,
                    next_check_at=now + self.first_check, sync_percent=0, error_code=None, error_message=None,
                )
            if saved:
                results.append(saved)
        return results

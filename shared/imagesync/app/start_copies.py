"""Starting copies: one SyncImages per source image with all its waiting destination regions.

Shared by copy_request (fresh replicas) and status_sweep (PENDING and WAITING_SOURCE ones). A SyncImages whose
answer was lost (InternalError, a dropped connection) may have started copies, so before calling again for a
replica that was attempted before, the destination regions are searched for the copy by name and it is adopted:
one SyncImages per started copy, never two.

Before copying into a region the account's image quota there is checked (DescribeImageQuota against the number of
custom images, once per region per starter, i.e. per invocation): a full region fails its replicas with
Region.QuotaExceeded instead of a SyncImages that would fail the whole call. An encrypted copy (replica.kms_key_id)
is a same-region SyncImages with Encrypt, started on its own. A copy in another account (replica.account) is made
with the keys of the role assumed there (app.accounts.AccountStarter).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from ..domain.errors import CloudError, QuotaExceeded
from ..domain.models import Replica
from ..domain.states import ReplicaState
from ..ports import Accounts, AuditLog, Clock, ImageService, ReplicaStore
from ..runtime.failpoints import failpoint
from .transitions import move

log = logging.getLogger(__name__)
S = ReplicaState
#: destination image states a lost copy is adopted in
ADOPTABLE = frozenset({"SYNCING", "NORMAL", "CREATEFAILED"})
#: CreatedTime has whole seconds and Tencent's clock is not ours: a copy started right after its replica was
#: recorded may show a CreatedTime a little BEFORE the replica's created_at. Without this slack it is not found,
#: and a second copy is started. (A copy of an earlier replica of the same image and region is older than this:
#: that replica ended -- a copy takes minutes -- before this one could be recorded.)
ADOPT_SLACK = timedelta(minutes=2)


class CopyStarter:
    def __init__(
        self,
        replicas: ReplicaStore,
        audit: AuditLog,
        images: ImageService,
        clock: Clock,
        *,
        first_check_seconds: int,
        retry_seconds: int,
        accounts: Accounts | None = None,
        first_look: Callable[[str], timedelta] | None = None,
    ) -> None:
        self.replicas = replicas
        self.audit = audit
        self.images = images
        self.clock = clock
        self.first_check = timedelta(seconds=first_check_seconds)
        self.retry = timedelta(seconds=retry_seconds)
        #: region -> [quota, used], read once per starter (per invocation) and counted up as copies start
        self._quota: dict[str, list[int]] = {}
        #: other accounts (None: not configured; their replicas fail with Account.NotConfigured)
        self.accounts = accounts
        #: destination region -> when to first look at a copy started now (app.first_look.FirstLook, learned from
        #: recent copies); None: always `first_check_seconds`
        self.first_look = first_look

    def first_check_after(self, replica: Replica) -> timedelta:
        """How long after its start the sweep first looks at `replica`'s copy. An encrypted copy (same region, its
        own pace, not among the learned durations) is looked at after `first_check_seconds`."""
        if self.first_look is None or replica.kms_key_id:
            return self.first_check
        return self.first_look(replica.destination_region)

    def start(self, replicas: Iterable[Replica]) -> list[Replica]:
        """Start every given replica whose source is known to be NORMAL; returns the stored results."""
        groups: dict[tuple[str, str, str], list[Replica]] = defaultdict(list)
        encrypted: list[Replica] = []
        in_accounts: list[Replica] = []
        for replica in replicas:
            if replica.account:
                in_accounts.append(replica)
            elif replica.kms_key_id:
                encrypted.append(replica)
            else:
                groups[(replica.source_region, replica.source_image_id, replica.image_name)].append(replica)
        done: list[Replica] = []
        for (region, image_id, name), group in groups.items():
            group, refused = self._check_quota(group)
            done.extend(refused)
            if group:
                done.extend(self._start_group(region, image_id, name, group))
        for replica in encrypted:
            done.extend(self._start_encrypted(replica))
        if in_accounts:
            from .accounts import AccountStarter

            done.extend(AccountStarter(self).start(in_accounts))
        return done

    def _region_quota(self, region: str) -> list[int] | None:
        """[quota, used] in `region`, read once per starter; None when it cannot be read now (then SyncImages'
        own ImageQuotaLimitExceeded is the check)."""
        if region not in self._quota:
            try:
                quota, used = self.images.image_quota(region)
            except CloudError as exc:
                log.warning("quota of %s not read (%s); SyncImages will check it", region, exc.cloud_code)
                return None
            self._quota[region] = [quota, used]
        return self._quota[region]

    def _check_quota(self, group: list[Replica]) -> tuple[list[Replica], list[Replica]]:
        """(replicas to start, replicas failed because their region's image quota is used up)."""
        go: list[Replica] = []
        refused: list[Replica] = []
        for replica in group:
            counted = self._region_quota(replica.destination_region)
            if counted is None or counted[0] <= 0 or counted[1] < counted[0]:
                go.append(replica)
                continue
            err = QuotaExceeded(
                f"{replica.destination_region} holds {counted[1]} custom images, its quota is {counted[0]}",
                region=replica.destination_region,
            )
            saved = self._save(replica, S.FAILED, error_code=err.code, error_message=err.message)
            if saved:
                refused.append(saved)
        return go, refused

    def _counted(self, region: str, n: int = 1) -> None:
        if region in self._quota:
            self._quota[region][1] += n

    def _start_encrypted(self, replica: Replica) -> list[Replica]:
        """The encrypted copy of a finished copy: one same-region SyncImages with Encrypt and the KMS key."""
        adopted, rest = self._adopt([replica], encrypted=True)
        if not rest:
            return adopted
        go, refused = self._check_quota(rest)
        go = self._reserve(go)
        if not go:
            return refused
        replica = go[0]
        region = replica.destination_region
        try:
            new_id = self.images.encrypt_image(
                region, replica.source_image_id, kms_key_id=replica.kms_key_id or "", name=replica.image_name
            )
        except CloudError as exc:
            return [r for r in [self._refused(replica, exc)] if r]
        failpoint("after_sync_images")
        self._counted(region)
        now = self.clock.now()
        saved = self._save(
            replica,
            S.COPYING,
            destination_image_id=new_id,
            started_at=now,
            next_check_at=now + self.first_check_after(replica),
            sync_percent=0,
            error_code=None,
            error_message=None,
        )
        return [saved] if saved else []

    def _refused(self, replica: Replica, exc: CloudError) -> Replica | None:
        now = self.clock.now()
        if exc.busy:
            return self._save(
                replica,
                S.WAITING_SOURCE,
                next_check_at=now + self.retry,
                error_code=exc.cloud_code,
                error_message=exc.message,
            )
        if exc.retryable:
            # the attempt was counted by _reserve before the call
            return self._save(
                replica,
                replica.state,
                next_check_at=now + self.retry,
                error_code=exc.cloud_code,
                error_message=exc.message,
            )
        return self._save(replica, S.FAILED, error_code=exc.cloud_code, error_message=exc.message)

    def _reserve(self, group: Sequence[Replica]) -> list[Replica]:
        """Record the attempt BEFORE SyncImages is called: attempts + 1 by compare-and-set; returns the replicas
        this starter won (a replica another invocation wrote meanwhile is left to it).

        Why: a starter that dies after SyncImages and before its write (or loses the CAS race to a sweep starting
        the same fresh replica) leaves a started copy no replica names. Because the attempt is on record, the
        next start of that replica searches for the copy by name first (_adopt) instead of copying again; and
        two starters can never both call SyncImages for one replica version. The retry delay doubles as the time
        after which the sweep takes over a starter that died.
        """
        now = self.clock.now()
        won: list[Replica] = []
        for replica in group:
            saved = self._save(replica, replica.state, attempts=replica.attempts + 1, next_check_at=now + self.retry)
            if saved is not None:
                won.append(saved)
        return won

    def _save(self, replica: Replica, state: ReplicaState, **changes: object) -> Replica | None:
        return move(self.replicas, self.audit, self.clock, replica, state, **changes)

    def _adopt(
        self, group: Sequence[Replica], *, encrypted: bool = False, images: ImageService | None = None
    ) -> tuple[list[Replica], list[Replica]]:
        """Adopt copies a lost SyncImages answer may have started; returns (adopted, still to start). `images`:
        where to look (another account's, for its copies)."""
        images = images or self.images
        adopted: list[Replica] = []
        rest: list[Replica] = []
        for replica in group:
            if replica.attempts == 0:
                rest.append(replica)
                continue
            match = None
            for image in images.find_by_name(replica.destination_region, replica.image_name):
                created = image.created_at
                if encrypted and image.image_id == replica.source_image_id:
                    continue  # the encrypted copy's source has the same name in the same region
                # a copy that already failed is adopted too: the sweep then reports it FAILED (Copy.Failed)
                # rather than this starter making a second copy next to it
                if image.state in ADOPTABLE and (created is None or created >= replica.created_at - ADOPT_SLACK):
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
                next_check_at=self.clock.now() + self.first_check_after(replica),
                error_code=None,
                error_message=None,
            )
            if saved:
                log.info("adopted copy %s of %s in %s", match.image_id, replica.source_image_id, match.region)
                adopted.append(saved)
        return adopted, rest

    def _start_group(self, region: str, image_id: str, name: str, group: list[Replica]) -> list[Replica]:
        adopted, group = self._adopt(group)
        results: list[Replica] = list(adopted)
        group = self._reserve(group)
        if not group:
            return results
        destinations = [r.destination_region for r in group]
        try:
            new_ids = self.images.sync_image(region, image_id, destinations, name=name, dry_run=False)
        except CloudError as exc:
            now = self.clock.now()
            for replica in group:
                if exc.busy:
                    # The source is busy with another copy: wait for it, as for a source still CREATING.
                    saved = self._save(
                        replica,
                        S.WAITING_SOURCE,
                        next_check_at=now + self.retry,
                        error_code=exc.cloud_code,
                        error_message=exc.message,
                    )
                elif exc.retryable:  # the attempt was counted by _reserve
                    saved = self._save(
                        replica,
                        replica.state,
                        next_check_at=now + self.retry,
                        error_code=exc.cloud_code,
                        error_message=exc.message,
                    )
                else:
                    saved = self._save(replica, S.FAILED, error_code=exc.cloud_code, error_message=exc.message)
                if saved:
                    results.append(saved)
            log.warning("SyncImages %s -> %s failed: %s", image_id, destinations, exc.cloud_code)
            return results
        failpoint("after_sync_images")
        now = self.clock.now()
        for replica in group:
            new_id = new_ids.get(replica.destination_region)
            if new_id is not None:
                self._counted(replica.destination_region)
            if new_id is None:
                saved = self._save(
                    replica,
                    replica.state,
                    next_check_at=now + self.retry,
                    error_code="Copy.NoImageId",
                    error_message="SyncImages returned no image id for this region",
                )
            else:
                saved = self._save(
                    replica,
                    S.COPYING,
                    destination_image_id=new_id,
                    started_at=now,
                    next_check_at=now + self.first_check_after(replica),
                    sync_percent=0,
                    error_code=None,
                    error_message=None,
                )
            if saved:
                results.append(saved)
        return results

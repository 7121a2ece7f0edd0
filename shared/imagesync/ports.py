"""The ports the use cases depend on. Adapters implement them; tests use the real adapters or recording fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .domain.models import CompletionMessage, ImageProgress, InFlight, Replica, Replication, SourceImage
from .domain.states import ReplicaState


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class ImageService(Protocol):
    """CVM image operations (the Tencent adapter; every error surfaces as domain.errors.CloudError)."""

    def describe_images(self, region: str, image_ids: Sequence[str]) -> dict[str, SourceImage]:
        """The images among `image_ids` that exist in `region`, by id; one DescribeImages call per 100 ids."""
        ...

    def describe_progress(self, region: str, image_ids: Sequence[str]) -> dict[str, ImageProgress]:
        """describe_images, reading only each image's state and SyncPercent (what a sweep needs of a copy)."""
        ...

    def find_by_name(self, region: str, name: str) -> list[SourceImage]:
        """Custom images named exactly `name` in `region` (to adopt a copy whose SyncImages answer was lost)."""
        ...

    def list_custom_images(
        self, region: str, *, tags: dict[str, str] | None = None, tag_key: str | None = None, limit: int = 10000
    ) -> list[SourceImage]:
        """The account's custom images (PRIVATE_IMAGE) in `region`, newest first, read 100 per DescribeImages call.

        `tags` (equal values) and `tag_key` (exists) narrow the listing server-side; callers still match exactly.
        At most `limit` images (a bound on calls per run).
        """
        ...

    def sync_image(
        self, region: str, image_id: str, destinations: Sequence[str], *, name: str | None, dry_run: bool
    ) -> dict[str, str]:
        """One SyncImages call with ImageSetRequired: destination region -> new image id ({} on DryRun)."""
        ...

    def available_regions(self) -> frozenset[str]:
        """Regions the account can use for CVM (region service DescribeRegions, Product=cvm); cached."""
        ...

    def encrypt_image(self, region: str, image_id: str, *, kms_key_id: str, name: str | None) -> str:
        """One same-region SyncImages with Encrypt and `kms_key_id`; returns the encrypted copy's image id."""
        ...

    def image_quota(self, region: str) -> tuple[int, int]:
        """(quota, used): DescribeImageQuota's ImageNumQuota and the account's custom images now in `region`."""
        ...


class ImageAdmin(Protocol):
    """What the hooks do to a finished copy (tag, share, launch, retention); errors surface as CloudError."""

    def tag_image(self, region: str, image_id: str, tags: dict[str, str]) -> None:
        """Put `tags` on the image through the tag service (TagResources); existing keys are overwritten."""
        ...

    def share_image(self, region: str, image_id: str, account_ids: Sequence[str]) -> list[str]:
        """Share the image with the accounts not yet shared with (ModifyImageSharePermission); returns those."""
        ...

    def run_instances(self, region: str, image_id: str, spec: dict[str, Any], *, client_token: str) -> list[str]:
        """RunInstances with `spec` and ImageId; `client_token` makes a repeated call launch nothing new."""
        ...

    def instances_using(self, region: str, image_id: str) -> list[str]:
        """Ids of the account's instances in `region` made from `image_id` (DescribeInstances, every page)."""
        ...

    def delete_images(self, region: str, image_ids: Sequence[str], *, delete_snapshots: bool = False) -> None:
        """DeleteImages (at most 10 per call); the snapshots are kept unless `delete_snapshots` (DeleteBindedSnap)."""
        ...

    def shared_with(self, region: str, image_id: str) -> list[str]:
        """The accounts the image is shared with (DescribeImageSharePermission)."""
        ...

    def modify_image(
        self, region: str, image_id: str, *, family: str | None = None, deprecated: bool | None = None
    ) -> None:
        """ModifyImageAttribute: set ImageFamily and/or ImageDeprecated on the image (None: left as it is)."""
        ...


class Accounts(Protocol):
    """Other accounts (domain.accounts): sharing the source with one, and acting in it through an assumed role."""

    def share(self, region: str, image_id: str, account: str) -> None:
        """Share the own image with `account` (ModifyImageSharePermission SHARE); a share already there is kept."""
        ...

    def images(self, account: str, role: str) -> ImageService:
        """The ImageService of `account`, signed with the keys of `role` there (sts AssumeRole, cached per
        (account, role) until shortly before they expire). Errors surface as CloudError on first use."""
        ...


class WebhookPoster(Protocol):
    """Delivers webhook messages over HTTP (adapters.webhook.HttpWebhooks: signed, SSRF-guarded, no redirects)."""

    def post(self, url: str, event: str, payload: dict[str, Any], *, secret: str, fmt: str, delivery_id: str) -> int:
        """POST `payload` to `url` in `fmt` (json | wecom | dingtalk | slack), signed with `secret` when not empty,
        with `delivery_id` as the delivery's stable id (receivers dedupe on it). Returns the HTTP status; raises an
        exception with a stable `code` (Webhook.Timeout, Webhook.BadStatus, Webhook.TargetRefused, ...) unless
        the target accepted it."""
        ...


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    status: str  # INPROGRESS | COMPLETED
    payload_hash: str
    result: dict[str, Any] | None
    expires_at: datetime
    in_progress_until: datetime | None


@dataclass(frozen=True)
class HookRun:
    """The outcome of one hook for one replica end: pending (retrying), done, failed (gave up) or skipped."""

    replica_id: str
    hook_key: str
    replication_id: str
    hook_type: str
    status: str  # pending | done | failed | skipped
    attempts: int
    updated_at: datetime
    error_code: str | None = None
    error_message: str | None = None
    result: dict[str, Any] | None = None


class ReplicaStore(Protocol):
    """Replications and their replicas. Every write that changes a replica is a compare-and-set on (id, version,
    state); a replica's end and its completion message (OutboxStore) commit together."""

    def create_replication(self, replication: Replication) -> Replication:
        """Insert the replication and its `replicas` in one transaction.

        Raises domain.errors.AlreadyInFlight(replication_id=<the existing one>) when any (source_region,
        source_image_id, destination_region) of it already has an active (non-terminal) replica; then nothing is
        inserted. Terminal replicas are inserted as given (their completion message goes to the outbox too).
        """
        ...

    def get_replication(self, replication_id: str) -> Replication | None: ...

    def list_replications(
        self,
        *,
        state: ReplicaState | None = None,
        image_id: str | None = None,
        region: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[Replication], str | None]:
        """Newest first; filters match any replica of the replication; returns (page, next cursor or None)."""
        ...

    def get_replica(self, replica_id: str) -> Replica | None: ...

    def get_replicas(self, replica_ids: Sequence[str]) -> dict[str, Replica]:
        """These replicas by id, in one read (an id not found is absent)."""
        ...

    def find_active(
        self, source_region: str, image_id: str, destination_region: str, account: str | None = None
    ) -> Replica | None:
        """The active replica of this copy into `account` (None: the own account), if any."""
        ...

    def replica_states(self, source_region: str, image_ids: Sequence[str]) -> dict[tuple[str, str], list[str]]:
        """For the replicas of these images from `source_region`: (image id, destination region) -> their states
        (any order; a pair never copied is absent). The rules' reconcile pass reads what is missing from it."""
        ...

    def destination_image_ids(self, region: str, image_ids: Sequence[str]) -> set[str]:
        """Those of `image_ids` that are copies imagesync made in `region` (a replica's destination image)."""
        ...

    def save_replica(self, replica: Replica, *, expected_version: int, expected_state: ReplicaState) -> Replica | None:
        """Compare-and-set write of `replica` over the row with `expected_version` and `expected_state`.

        The move expected_state -> replica.state must be in domain.states.TRANSITIONS (IllegalTransition
        otherwise). Returns the stored replica (version = expected_version + 1), or None when the row changed
        meanwhile (somebody else won). When replica.state is terminal, the same transaction clears the in-flight
        marker and puts its CompletionMessage into the outbox (at most one per replica).
        """
        ...

    def save_progress(self, changes: Sequence[tuple[Replica | InFlight, int]]) -> int:
        """Record progress (sync_percent, next_check_at, updated_at, looks, first_look_at) of COPYING replicas, many
        in one transaction: each (replica, expected_version) by compare-and-set on (id, version, COPYING); a row
        that changed meanwhile is left as it is (its new owner wrote something newer). Returns how many of
        `changes` it wrote (-1 when the database cannot tell)."""
        ...

    def add_replica(self, replica: Replica) -> Replica:
        """Insert one more replica into its existing replication (an encrypted copy); idempotent by replica id
        (the stored one is returned). Raises AlreadyInFlight when the same copy is already active elsewhere."""
        ...

    def finished_copies(self, destination_region: str, *, rule: str | None, image_name: str) -> list[Replica]:
        """SUCCEEDED replicas with a destination image in `destination_region` made for `rule` (when given) or,
        without a rule, named `image_name` by replications without a rule; newest ended first."""
        ...

    def count_by_state(self) -> dict[str, int]: ...

    def copies_of_source(self, source_region: str, image_ids: Sequence[str]) -> list[Replica]:
        """Every replica of these source images (any state, any account): what imagesync made of them."""
        ...

    def sources_copied(self, rules: Sequence[str]) -> list[tuple[str, str]]:
        """(source region, source image id) of the SUCCEEDED replicas of replications of these rules."""

    def copied_sources(self, *, limit: int = 500) -> list[tuple[str, str]]:
        """(source region, source image id) of the images with a SUCCEEDED copy, the newest copy's first."""
        ...

    def copies_of(self, source_region: str, image_ids: Sequence[str]) -> list[Replica]:
        """The SUCCEEDED replicas, with a destination image, of these images from `source_region`."""
        ...


class CopyDurations(Protocol):
    """What recent copies took and how their looks fared: where a new copy's first look goes, and whether looks
    ahead of the look budget's slots go on (app.first_look; domain.progress.first_look, bets_pay)."""

    def recent_durations(self, since: datetime, limit: int) -> list[tuple[str, float]]:
        """(destination region, seconds from started_at to ended_at) of the newest `limit` SUCCEEDED copies ended
        at or after `since` (encrypted copies, made in their own region, left out), newest end first."""
        ...

    def recent_judged(self, since: datetime, limit: int) -> list[tuple[str, int | None, int | None]]:
        """(destination region, looks_over, pace_changed) of the newest `limit` SUCCEEDED copies ended at or after
        `since` with either set (domain.progress.judged_looks, pace_verdict), newest end first."""
        ...


class LeaseStore(Protocol):
    """The sweepers' lease -- one sweeper at a time works the copies in flight -- and the due copies it works."""

    def acquire(self, owner: str, now: datetime, lease_seconds: float) -> bool:
        """Hold the sweepers' lease for `owner` until now + lease_seconds if it is free or has expired: True. False
        while another owner holds it. `now` is the real clock's: a lease is about a process, which may crash (its
        lease then runs out); the domain clock may be an emulated one. Use a fresh owner per sweep invocation."""
        ...

    def release(self, owner: str) -> None:
        """Give the sweepers' lease up if `owner` still holds it (another owner's lease is untouched)."""
        ...

    def due_in_flight(self, now: datetime, limit: int) -> list[InFlight]:
        """Up to `limit` active replicas with next_check_at <= now (the domain clock's), oldest (next_check_at,
        id) first: what a sweep reads of each (InFlight). A read: the caller holds the lease, and each write it
        makes is a compare-and-set on the row's version."""
        ...


class DueChecks(Protocol):
    """When the sweep has work next: what status_sweep's timer is armed at (app.schedule)."""

    def earliest_check(self) -> datetime | None:
        """The earliest next_check_at of the replicas in flight (copying or waiting for a source); None: none."""
        ...

    def has_pending_outbox(self) -> bool:
        """Whether a completion message still waits to be published."""
        ...


class Scheduler(Protocol):
    """Wakes status_sweep: in the cloud its timer trigger, armed at one moment or switched off (SCF adapter);
    on one machine nothing (the CLI's loop or a cron runs the sweep)."""

    def arm(self, at: datetime) -> None:
        """Have the sweep run at `at` (UTC, second precision), and at least once an hour until disarmed."""
        ...

    def disarm(self) -> None:
        """Nothing in flight: no sweep until the next arm."""
        ...


class OutboxStore(Protocol):
    """Completion messages, one per replica end (written by ReplicaStore with the end), published at least once."""

    def pending_outbox(self, limit: int = 100) -> list[CompletionMessage]:
        """Completion messages not yet marked sent, oldest first."""
        ...

    def mark_outbox_sent(self, message_ids: Sequence[str]) -> None: ...

    def undelivered_ends(
        self, *, sent_before: datetime, sent_after: datetime, hooks_everywhere: bool, limit: int = 100
    ) -> list[CompletionMessage]:
        """Completion messages sent within (sent_after, sent_before] whose end still has an open hook record
        (not done, skipped nor failed), or no hook record at all while it has hooks (`hooks_everywhere`: global
        hooks are configured; else the replication's own). Oldest sent first."""
        ...


class IdempotencyStore(Protocol):
    """Idempotency records, after powertools' design (record per key: INPROGRESS / COMPLETED / expired)."""

    def idempotency_claim(
        self, key: str, payload_hash: str, *, now: datetime, expires_at: datetime, in_progress_until: datetime
    ) -> IdempotencyRecord | None:
        """Claim `key` by conditional insert. None = claimed (the caller runs the work).

        An existing record past expires_at, or INPROGRESS past in_progress_until, is taken over (None).
        Otherwise the existing record is returned (the caller compares payload_hash and replays or refuses).
        """
        ...

    def idempotency_complete(
        self, key: str, result: dict[str, Any], *, expires_at: datetime, claimed_until: datetime | None = None
    ) -> None:
        """COMPLETED with `result`; with `claimed_until` only while the record is still that claim (not taken over)."""
        ...

    def idempotency_release(self, key: str, *, claimed_until: datetime | None = None) -> None:
        """Delete an INPROGRESS record after a failure, so that a retry runs the work again (with `claimed_until`:
        only while it is still that claim)."""
        ...

    def purge_expired(self, now: datetime) -> int:
        """Delete expired idempotency records; returns how many."""
        ...


class HookRunStore(Protocol):
    """The outcome of each hook per replica end (revision 0002)."""

    def hook_runs(self, replica_ids: Sequence[str]) -> dict[str, list[HookRun]]:
        """The hook records of these replicas, by replica id (every id is a key), ordered by hook key."""
        ...

    def save_hook_run(self, run: HookRun) -> None:
        """Insert or replace the record of (run.replica_id, run.hook_key). Callers serialise per replica end
        (completion_hook's idempotency claim), so last write wins."""
        ...

    def give_up_hooks(
        self,
        replica_id: str,
        replication_id: str,
        hooks: Sequence[tuple[str, str]],
        *,
        error_code: str,
        error_message: str,
        at: datetime,
    ) -> list[str]:
        """Record as ``failed`` (with this error) every hook of `hooks` ((hook key, hook type) of one replica end)
        that has no record or an open one (not done, skipped nor failed already), in one transaction. Returns
        the keys written; a second call writes nothing. For ends whose message will not be delivered again."""
        ...


class AuditLog(Protocol):
    """Who asked for what, from where, and each replica's end."""

    def record_audit(self, replication_id: str, event: str, *, actor: str, origin: str, detail: dict[str, Any]) -> None:
        """Append an audit record (who, when, from where, what happened)."""
        ...

    def audit_trail(self, replication_id: str) -> list[dict[str, Any]]: ...


class StateStore(
    ReplicaStore, LeaseStore, OutboxStore, IdempotencyStore, HookRunStore, AuditLog, DueChecks, CopyDurations, Protocol
):
    """All of the state table's stores over one database (adapters.sql.SqlStateStore): what the composition root
    holds and hands each use case the parts of. Use cases depend on the small ports above, never on this."""


@dataclass
class Delivery:
    """One message handed to a consumer; `receipt` acknowledges exactly this delivery."""

    message_id: str
    body: str
    receipt: str
    attempts: int
    attributes: dict[str, Any] = field(default_factory=dict)


class Queue(Protocol):
    """Producer side: what status_sweep publishes completion messages with."""

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Enqueue; returns the message id."""
        ...


class BatchQueue(Queue, Protocol):
    """A completion link that carries many messages per call (scf async Invoke, EventBridge PutEvents)."""

    def batches(self, bodies: Sequence[str]) -> list[list[int]]:
        """Indexes of `bodies` grouped, in order, into as few calls as the link's limits allow."""
        ...

    def send_batch(self, bodies: Sequence[str]) -> str:
        """One call carrying all `bodies` (a group from `batches`); returns the link's id for it. Raises on failure
        (CloudError with `retryable` for transient ones): then none of them counts as sent."""
        ...


class ConsumableQueue(Queue, Protocol):
    """The local queue's consumer side (in the cloud, the trigger delivers instead)."""

    def receive(self, max_messages: int = 10, visibility_timeout: float = 30.0) -> list[Delivery]: ...

    def ack(self, delivery: Delivery) -> None: ...

    def nack(self, delivery: Delivery, *, delay_seconds: float = 0.0, error: str | None = None) -> None:
        """Make it visible again (after a delay); past max attempts it moves to the dead letters. `error`: why,
        kept as the message's last error."""
        ...

    def dead_letters(self) -> list[Delivery]: ...

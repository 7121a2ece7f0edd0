"""The ports the use cases depend on. Adapters implement them; tests use the real adapters or recording fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .domain.models import CompletionMessage, Replica, Replication, SourceImage
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

    def find_by_name(self, region: str, name: str) -> list[SourceImage]:
        """Custom images named exactly `name` in `region` (to adopt a copy whose SyncImages answer was lost)."""
        ...

    def sync_image(
        self, region: str, image_id: str, destinations: Sequence[str], *, name: str | None, dry_run: bool
    ) -> dict[str, str]:
        """One SyncImages call with ImageSetRequired: destination region -> new image id ({} on DryRun)."""
        ...

    def available_regions(self) -> frozenset[str]:
        """Regions the account can use for CVM (region service DescribeRegions, Product=cvm); cached."""
        ...


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    status: str  # INPROGRESS | COMPLETED
    payload_hash: str
    result: dict[str, Any] | None
    expires_at: datetime
    in_progress_until: datetime | None


class StateStore(Protocol):
    """The state table. Every write that changes a replica is a compare-and-set on (id, version, state)."""

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

    def find_active(self, source_region: str, image_id: str, destination_region: str) -> Replica | None: ...

    def save_replica(
        self, replica: Replica, *, expected_version: int, expected_state: ReplicaState
    ) -> Replica | None:
        """Compare-and-set write of `replica` over the row with `expected_version` and `expected_state`.

        The move expected_state -> replica.state must be in domain.states.TRANSITIONS (IllegalTransition
        otherwise). Returns the stored replica (version = expected_version + 1), or None when the row changed
        meanwhile (somebody else won). When replica.state is terminal, the same transaction clears the in-flight
        marker and puts its CompletionMessage into the outbox (at most one per replica).
        """
        ...

    def claim_due(self, owner: str, now: datetime, lease_seconds: float, limit: int) -> list[Replica]:
        """Lease up to `limit` active replicas with next_check_at <= now whose lease is free or expired.

        Oldest next_check_at first. No two owners hold the same replica within a lease.
        """
        ...

    def release(self, replica_ids: Sequence[str], owner: str) -> None:
        """Give up `owner`'s leases on these replicas (others' leases are untouched)."""
        ...

    def pending_outbox(self, limit: int = 100) -> list[CompletionMessage]:
        """Completion messages not yet marked sent, oldest first."""
        ...

    def mark_outbox_sent(self, message_ids: Sequence[str]) -> None: ...

    def count_by_state(self) -> dict[str, int]: ...

    def record_audit(self, replication_id: str, event: str, *, actor: str, origin: str, detail: dict[str, Any]) -> None:
        """Append an audit record (who, when, from where, what happened)."""
        ...

    def audit_trail(self, replication_id: str) -> list[dict[str, Any]]: ...

    # Idempotency, after powertools' design (record per key: INPROGRESS / COMPLETED / expired).
    def idempotency_claim(
        self, key: str, payload_hash: str, *, now: datetime, expires_at: datetime, in_progress_until: datetime
    ) -> IdempotencyRecord | None:
        """Claim `key` by conditional insert. None = claimed (the caller runs the work).

        An existing record past expires_at, or INPROGRESS past in_progress_until, is taken over (None).
        Otherwise the existing record is returned (the caller compares payload_hash and replays or refuses).
        """
        ...

    def idempotency_complete(self, key: str, result: dict[str, Any], *, expires_at: datetime) -> None: ...

    def idempotency_release(self, key: str) -> None:
        """Delete an INPROGRESS record after a failure, so that a retry runs the work again."""
        ...

    def purge_expired(self, now: datetime) -> int:
        """Delete expired idempotency records; returns how many."""
        ...


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


class ConsumableQueue(Queue, Protocol):
    """The local queue's consumer side (in the cloud, the trigger delivers instead)."""

    def receive(self, max_messages: int = 10, visibility_timeout: float = 30.0) -> list[Delivery]: ...

    def ack(self, delivery: Delivery) -> None: ...

    def nack(self, delivery: Delivery, *, delay_seconds: float = 0.0) -> None:
        """Make it visible again (after a delay); past max attempts it moves to the dead letters."""
        ...

    def dead_letters(self) -> list[Delivery]: ...

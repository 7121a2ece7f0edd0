"""In-memory fakes of the small ports (imagesync.ports), for unit tests of the use cases.

Each fake keeps what a real store would keep and records what it was asked, in one shared `log` when given, so a
test can check the order of writes and cloud calls (e.g. an attempt is on record before SyncImages is called).
They keep the ports' rules that the use cases rely on: a replica write is a compare-and-set on (version, state)
and checks the transition; a terminal write puts one completion message into the outbox; the lease is exclusive
until it expires. The SQL stores are tested against the same rules by tests/store (the contract suite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from imagesync.adapters.sql.replicas import PROGRESS_COLUMNS
from imagesync.domain.errors import AlreadyInFlight, CloudError
from imagesync.domain.models import CompletionMessage, ImageProgress, InFlight, Replica, Replication, SourceImage
from imagesync.domain.states import ACTIVE, ReplicaState, check_transition
from imagesync.ports import HookRun, IdempotencyRecord

#: what a progress write changes (save_progress: the SQL store writes these columns and the version)

UTC = timezone.utc


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime | None = None) -> None:
        self.at = now or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class FakeOutbox:
    """OutboxStore: messages in the order written; `sent` holds the ids marked sent, in order."""

    clock: FrozenClock
    messages: list[CompletionMessage] = field(default_factory=list)
    sent_at: dict[str, datetime] = field(default_factory=dict)

    def pending_outbox(self, limit: int = 100) -> list[CompletionMessage]:
        return [m for m in self.messages if m.message_id not in self.sent_at][:limit]

    def mark_outbox_sent(self, message_ids: Sequence[str]) -> None:
        for message_id in message_ids:
            self.sent_at.setdefault(message_id, self.clock.now())

    def undelivered_ends(
        self, *, sent_before: datetime, sent_after: datetime, hooks_everywhere: bool, limit: int = 100
    ) -> list[CompletionMessage]:
        raise AssertionError("the fake outbox keeps no hook records: test the backstop on tests/store")


@dataclass
class FakeReplicaStore:
    """ReplicaStore, the writes the sweep and the starter make: compare-and-set on (id, version, state)."""

    outbox: FakeOutbox
    log: list[tuple[str, Any]] = field(default_factory=list)
    rows: dict[str, Replica] = field(default_factory=dict)
    replications: dict[str, Replication] = field(default_factory=dict)

    def put(self, *replicas: Replica) -> None:
        for replica in replicas:
            self.rows[replica.id] = replica

    def put_replication(self, replication: Replication) -> None:
        self.replications[replication.id] = replication
        self.put(*replication.replicas)

    def get_replica(self, replica_id: str) -> Replica | None:
        return self.rows.get(replica_id)

    def get_replicas(self, replica_ids: Sequence[str]) -> dict[str, Replica]:
        self.log.append(("get_replicas", list(replica_ids)))
        return {i: self.rows[i] for i in replica_ids if i in self.rows}

    def get_replication(self, replication_id: str) -> Replication | None:
        found = self.replications.get(replication_id)
        if found is None:
            return None
        mine = [r for r in self.rows.values() if r.replication_id == replication_id]
        return found.model_copy(update={"replicas": mine})

    def save_replica(self, replica: Replica, *, expected_version: int, expected_state: ReplicaState) -> Replica | None:
        check_transition(expected_state, replica.state)
        row = self.rows.get(replica.id)
        if row is None or row.version != expected_version or row.state is not expected_state:
            self.log.append(("save_lost", replica.id))
            return None
        if replica.state.terminal and replica.ended_at is None:
            replica = replica.model_copy(update={"ended_at": replica.updated_at})
        stored = replica.model_copy(update={"version": expected_version + 1})
        self.rows[stored.id] = stored
        self.log.append(("save", stored))
        if stored.state.terminal:
            self.outbox.messages.append(CompletionMessage.for_replica(stored))
        return stored

    def save_progress(self, changes: Sequence[tuple[Replica | InFlight, int]]) -> int:
        self.log.append(("save_progress", [r.id for r, _ in changes]))
        written = 0
        for replica, expected_version in changes:
            assert replica.state is ReplicaState.COPYING, "save_progress writes COPYING replicas only"
            row = self.rows.get(replica.id)
            if row is not None and row.version == expected_version and row.state is ReplicaState.COPYING:
                # the progress columns only, as the SQL store writes them (a change may be an InFlight view)
                progress = {k: getattr(replica, k) for k in PROGRESS_COLUMNS}
                self.rows[replica.id] = row.model_copy(update={**progress, "version": expected_version + 1})
                written += 1
        return written

    def copies_of_source(self, source_region: str, image_ids: Sequence[str]) -> list[Replica]:
        return [r for r in self.rows.values() if r.source_region == source_region and r.source_image_id in image_ids]

    def sources_copied(self, rules: Sequence[str]) -> list[tuple[str, str]]:
        found = {
            (r.source_region, r.source_image_id)
            for r in self.rows.values()
            if r.state is ReplicaState.SUCCEEDED
            and getattr(self.replications.get(r.replication_id), "rule", None) in rules
        }
        return sorted(found)

    def add_replica(self, replica: Replica) -> Replica:
        """Idempotent by id; refuses a second active replica of the same copy (as the inflight_key column does)."""
        if replica.id in self.rows:
            return self.rows[replica.id]
        for row in self.rows.values():
            same = (row.source_region, row.source_image_id, row.destination_region) == (
                replica.source_region,
                replica.source_image_id,
                replica.destination_region,
            )
            if same and not row.terminal and not replica.terminal:
                raise AlreadyInFlight(f"in flight in {row.replication_id}", row.replication_id)
        self.log.append(("add_replica", replica))
        self.rows[replica.id] = replica
        return replica

    def copied_sources(self, *, limit: int = 500) -> list[tuple[str, str]]:
        done = sorted(
            (r for r in self.rows.values() if r.state is ReplicaState.SUCCEEDED and r.destination_image_id),
            key=lambda r: r.ended_at or r.updated_at,
            reverse=True,
        )
        return list(dict.fromkeys((r.source_region, r.source_image_id) for r in done))[:limit]

    def copies_of(self, source_region: str, image_ids: Sequence[str]) -> list[Replica]:
        return [
            r
            for r in self.rows.values()
            if r.source_region == source_region
            and r.source_image_id in image_ids
            and r.state is ReplicaState.SUCCEEDED
            and r.destination_image_id
        ]

    def bump(self, replica_id: str, **changes: Any) -> Replica:
        """Another invocation writes the replica (its version moves on): this one's next compare-and-set loses."""
        row = self.rows[replica_id]
        self.rows[replica_id] = row.model_copy(update={"version": row.version + 1, **changes})
        return self.rows[replica_id]


@dataclass
class FakeLeases:
    """LeaseStore over the fake replica rows: one sweepers' lease, exclusive until it expires; due copies oldest
    next_check_at first."""

    replicas: FakeReplicaStore
    #: (owner, expiry) of the sweepers' lease, None while free
    held: tuple[str, datetime] | None = None
    #: every acquire: (owner, taken)
    acquired: list[tuple[str, bool]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def acquire(self, owner: str, now: datetime, lease_seconds: float) -> bool:
        taken = self.held is None or self.held[1] <= now
        if taken:
            self.held = (owner, now + timedelta(seconds=lease_seconds))
        self.acquired.append((owner, taken))
        return taken

    def release(self, owner: str) -> None:
        self.released.append(owner)
        if self.held is not None and self.held[0] == owner:
            self.held = None

    def due_in_flight(self, now: datetime, limit: int) -> list[InFlight]:
        due = sorted(
            (r for r in self.replicas.rows.values() if r.state in ACTIVE and r.next_check_at <= now),
            key=lambda r: (r.next_check_at, r.id),
        )
        return [InFlight(**{name: getattr(r, name) for name in InFlight._fields}) for r in due[: max(0, limit)]]


@dataclass
class FakeIdempotency:
    """IdempotencyStore: records by key with the port's claim rules (a claim takes over an expired record or an
    INPROGRESS one past in_progress_until; complete and release only while the record is still the caller's)."""

    records: dict[str, IdempotencyRecord] = field(default_factory=dict)
    purges: list[datetime] = field(default_factory=list)

    def idempotency_claim(
        self, key: str, payload_hash: str, *, now: datetime, expires_at: datetime, in_progress_until: datetime
    ) -> IdempotencyRecord | None:
        found = self.records.get(key)
        overdue = found is not None and found.status == "INPROGRESS" and (found.in_progress_until or now) <= now
        if found is None or found.expires_at <= now or overdue:
            self.records[key] = IdempotencyRecord(key, "INPROGRESS", payload_hash, None, expires_at, in_progress_until)
            return None
        return found

    def _mine(self, key: str, claimed_until: datetime | None) -> IdempotencyRecord | None:
        found = self.records.get(key)
        if found is None or claimed_until is None:
            return found
        return found if found.status == "INPROGRESS" and found.in_progress_until == claimed_until else None

    def idempotency_complete(
        self, key: str, result: dict[str, Any], *, expires_at: datetime, claimed_until: datetime | None = None
    ) -> None:
        found = self._mine(key, claimed_until)
        if found is not None:
            self.records[key] = IdempotencyRecord(key, "COMPLETED", found.payload_hash, result, expires_at, None)

    def idempotency_release(self, key: str, *, claimed_until: datetime | None = None) -> None:
        found = self._mine(key, claimed_until)
        if found is not None and found.status == "INPROGRESS":
            del self.records[key]

    def purge_expired(self, now: datetime) -> int:
        self.purges.append(now)
        gone = [k for k, r in self.records.items() if r.expires_at <= now]
        for k in gone:
            del self.records[k]
        return len(gone)


@dataclass
class FakeHookRuns:
    """HookRunStore: one record per (replica, hook key); "done" and "skipped" are final."""

    runs: dict[tuple[str, str], HookRun] = field(default_factory=dict)
    writes: list[HookRun] = field(default_factory=list)

    def hook_runs(self, replica_ids: Sequence[str]) -> dict[str, list[HookRun]]:
        out: dict[str, list[HookRun]] = {i: [] for i in replica_ids}
        for (rid, _), run in sorted(self.runs.items()):
            if rid in out:
                out[rid].append(run)
        return out

    def save_hook_run(self, run: HookRun) -> None:
        self.writes.append(run)
        found = self.runs.get((run.replica_id, run.hook_key))
        if found is None or found.status not in ("done", "skipped"):
            self.runs[(run.replica_id, run.hook_key)] = run

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
        written = []
        for key, hook_type in dict.fromkeys(hooks):
            found = self.runs.get((replica_id, key))
            if found is None or found.status not in ("done", "skipped", "failed"):
                self.runs[(replica_id, key)] = HookRun(
                    replica_id,
                    key,
                    replication_id,
                    hook_type,
                    "failed",
                    found.attempts if found else 0,
                    at,
                    error_code,
                    error_message[:2000],
                )
                written.append(key)
        return written


@dataclass
class FakeAudit:
    """AuditLog: records in the order written."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def record_audit(self, replication_id: str, event: str, *, actor: str, origin: str, detail: dict[str, Any]) -> None:
        self.records.append(
            {"replication_id": replication_id, "event": event, "actor": actor, "origin": origin, "detail": detail}
        )

    def audit_trail(self, replication_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["replication_id"] == replication_id]


@dataclass
class FakeImages:
    """ImageService over a dict of images; records every call in `log` (shared with the store when given).

    `fail[(operation, region)]` makes that call raise the CloudError given (once per entry in the list).
    """

    log: list[tuple[str, Any]] = field(default_factory=list)
    images: dict[tuple[str, str], SourceImage] = field(default_factory=dict)
    quotas: dict[str, tuple[int, int]] = field(default_factory=dict)
    fail: dict[tuple[str, str], list[CloudError]] = field(default_factory=dict)
    created: int = 0

    def add(
        self,
        region: str,
        image_id: str,
        *,
        state: str = "NORMAL",
        name: str = "web",
        sync_percent: int | None = None,
        created_time: str | None = None,
    ) -> SourceImage:
        image = SourceImage(
            image_id=image_id,
            region=region,
            name=name,
            image_type="PRIVATE_IMAGE",
            state=state,
            size_gb=20,
            sync_percent=sync_percent,
            created_time=created_time,
        )
        self.images[(region, image_id)] = image
        return image

    def _maybe_fail(self, operation: str, region: str) -> None:
        errors = self.fail.get((operation, region))
        if errors:
            raise errors.pop(0)

    def describe_images(self, region: str, image_ids: Sequence[str]) -> dict[str, SourceImage]:
        self.log.append(("describe_images", (region, sorted(image_ids))))
        self._maybe_fail("describe_images", region)
        return {i: self.images[(region, i)] for i in image_ids if (region, i) in self.images}

    def describe_progress(self, region: str, image_ids: Sequence[str]) -> dict[str, ImageProgress]:
        return {
            i: ImageProgress(img.state, img.sync_percent) for i, img in self.describe_images(region, image_ids).items()
        }

    def find_by_name(self, region: str, name: str) -> list[SourceImage]:
        self.log.append(("find_by_name", (region, name)))
        return [img for (r, _), img in self.images.items() if r == region and img.name == name]

    def list_custom_images(
        self, region: str, *, tags: dict[str, str] | None = None, tag_key: str | None = None, limit: int = 10000
    ) -> list[SourceImage]:
        return [img for (r, _), img in self.images.items() if r == region][:limit]

    def sync_image(
        self, region: str, image_id: str, destinations: Sequence[str], *, name: str | None, dry_run: bool
    ) -> dict[str, str]:
        self.log.append(("sync_image", (region, image_id, list(destinations))))
        self._maybe_fail("sync_image", region)
        out = {}
        for destination in destinations:
            self.created += 1
            new = self.add(destination, f"img-copy{self.created:04d}", state="SYNCING", name=name or "", sync_percent=0)
            out[destination] = new.image_id
        return out

    def available_regions(self) -> frozenset[str]:
        return frozenset({"ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu"})

    def encrypt_image(self, region: str, image_id: str, *, kms_key_id: str, name: str | None) -> str:
        self.log.append(("encrypt_image", (region, image_id, kms_key_id)))
        self._maybe_fail("encrypt_image", region)
        self.created += 1
        return self.add(region, f"img-enc{self.created:04d}", state="SYNCING", name=name or "").image_id

    def image_quota(self, region: str) -> tuple[int, int]:
        self.log.append(("image_quota", region))
        return self.quotas.get(region, (500, 0))


@dataclass
class FakeAccounts:
    """Accounts: each other account's images are a FakeImages of its own; sharing is recorded in `shares`.

    `share_fail` holds CloudErrors the next shares raise, in order."""

    accounts: dict[str, FakeImages] = field(default_factory=dict)
    shares: list[tuple[str, str, str]] = field(default_factory=list)
    share_fail: list[CloudError] = field(default_factory=list)
    roles: list[tuple[str, str]] = field(default_factory=list)

    def share(self, region: str, image_id: str, account: str) -> None:
        if self.share_fail:
            raise self.share_fail.pop(0)
        self.shares.append((region, image_id, account))

    def images(self, account: str, role: str) -> FakeImages:
        self.roles.append((account, role))
        return self.accounts.setdefault(account, FakeImages())


@dataclass
class FakeQueue:
    """Queue (one message per call); `fail` holds exceptions to raise on the next sends, in order."""

    bodies: list[str] = field(default_factory=list)
    fail: list[BaseException] = field(default_factory=list)

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        if self.fail:
            raise self.fail.pop(0)
        self.bodies.append(body)
        return f"m{len(self.bodies)}"

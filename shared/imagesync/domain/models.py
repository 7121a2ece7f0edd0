"""Domain models: a replication (one request) and its replicas (one image into one region)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from enum import Enum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .accounts import AccountDestination
from .hooks import HookSpec
from .states import ReplicaState, check_transition
from .types import Destination, ImageId, Region


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    """Ids shaped like Tencent's (prefix + 12 lowercase base-36 chars), random enough to never collide."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return prefix + "-" + "".join(secrets.choice(alphabet) for _ in range(12))


class Origin(str, Enum):
    HTTP = "http"
    EVENT = "event"
    RULE = "rule"
    CLI = "cli"


class CopyRequest(BaseModel):
    """What a caller asks for: validated shape only; business rules run in domain.validation."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    source_region: Region
    image_ids: list[ImageId] = Field(min_length=1)
    #: regions, or keywords (all, all-mainland, all-overseas) that RequestCopies resolves before anything else;
    #: may be empty when `accounts` names a destination
    destination_regions: list[Destination] = Field(default_factory=list)
    name: str | None = Field(default=None, description="name of the copies (default: the source image's name)")
    dry_run: bool = False
    origin: Origin = Origin.CLI
    requested_by: str = "unknown"
    rule: str | None = Field(default=None, description="the replication rule that asked for it, if any")
    hooks: list[HookSpec] = Field(default_factory=list, description="run on each replica end")
    #: destinations in other accounts (domain.accounts)
    accounts: list[AccountDestination] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_destination(self) -> CopyRequest:
        if not self.destination_regions and not self.accounts:
            raise ValueError("at least one destination: a region, or an account with its regions")
        return self

    #: the destinations as asked when they held a keyword (all, all-mainland, all-overseas) resolved at request
    #: time into destination_regions (app.destinations)
    requested_destinations: list[str] | None = None


class SourceImage(BaseModel):
    """The facts about a source image that validation needs, read live from DescribeImages."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    image_id: str
    region: str
    name: str
    image_type: str  # PRIVATE_IMAGE | PUBLIC_IMAGE | SHARED_IMAGE
    state: str  # NORMAL | CREATING | SYNCING | ...
    size_gb: int
    tags: dict[str, str] = Field(default_factory=dict)
    created_time: str | None = None
    sync_percent: int | None = None
    family: str | None = None  # ImageFamily (rule selectors, the family hook)
    deprecated: bool = False  # ImageDeprecated (followed by the copies: app.follow_source)

    @property
    def created_at(self) -> datetime | None:
        """CreatedTime as an aware datetime (None when absent or not ISO 8601)."""
        if not self.created_time:
            return None
        try:
            parsed = datetime.fromisoformat(self.created_time.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class Replica(BaseModel):
    """One image copied into one destination region, tracked to its end."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str = Field(default_factory=lambda: new_id("rpl"))
    replication_id: str
    source_region: str
    source_image_id: str
    destination_region: str
    image_name: str
    state: ReplicaState = ReplicaState.PENDING
    destination_image_id: str | None = None
    sync_percent: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    next_check_at: datetime = Field(default_factory=utcnow)
    deadline_at: datetime
    version: int = 0
    #: an encrypted copy (EncryptHook): a same-region SyncImages of `source_image_id` with Encrypt and this key
    kms_key_id: str | None = None
    #: the replica whose copy this one was made from (the encrypted copy of a finished copy, or an account's copy
    #: in its other regions: made from its handover copy), if any
    parent_replica_id: str | None = None
    #: a copy in another account (domain.accounts): its uin, and the role assumed there to make and check it
    account: str | None = None
    role: str | None = None

    @property
    def handover(self) -> bool:
        """The first step of a delivery into another account: its own copy of the shared source, same region."""
        return self.account is not None and self.parent_replica_id is None

    #: the FAILED or TIMED_OUT replica this one is a new attempt of (POST /replications/{id}/retry), if any
    retry_of: str | None = None
    #: the sweep's looks at this copy (DescribeImages), and when the first was: its look budget
    #: (domain.progress.within_budget)
    looks: int = 0
    first_look_at: datetime | None = None
    #: how the copy fared against that budget's slots, written at its end (domain.progress.judged_looks): n > 0 looks
    #: over them (a look ahead of its slot missed), 0 (a look ahead of its slot saw the end), None (none went ahead,
    #: or not judged); recent copies' values decide whether looks ahead of the slots go on (bets_pay)
    looks_over: int | None = None
    #: whether the copy's percent kept one pace across the sweep's looks (domain.progress.pace_verdict): 1 two
    #: looks disagreed on its end, 0 two agreed, None not yet two looks with a percent; where too few copies' looks
    #: went ahead of the slots to judge them, recent copies' values decide whether they go on (bets_pay)
    pace_changed: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def where(self) -> str:
        """The destination as people read it: the region, prefixed "<uin>/" for a copy in another account."""
        return f"{self.account}/{self.destination_region}" if self.account else self.destination_region

    def moved(self, state: ReplicaState, now: datetime, **changes: object) -> Replica:
        """A copy in `state` with `changes`, checked against the transition table; version bumped by the store."""
        check_transition(self.state, state)
        fields: dict[str, object] = {"state": state, "updated_at": now, **changes}
        if state.terminal:
            fields.setdefault("ended_at", now)
        return self.model_copy(update=fields)


class ImageProgress(NamedTuple):
    """What a sweep reads of a copy's destination image in DescribeImages (ImageService.describe_progress): its
    ImageState and SyncPercent. Why not a SourceImage: a sweep looks at thousands of copies, and a validated model
    per image was a measurable part of its own time (docs/benchmarks.md, "One sweep of 10,000 copies")."""

    state: str
    sync_percent: int | None


class InFlight(NamedTuple):
    """What a sweep reads of a due copy to look at it and record its progress (LeaseStore.due_in_flight).

    Why not the Replica: a sweep claims thousands of copies and all but a few only get a progress write
    (ReplicaStore.save_progress takes this as well); reading and validating all of a Replica's fields per copy was
    a third of the sweep's own time (docs/benchmarks.md). The few that end or start read their Replica by id.
    """

    id: str
    version: int
    state: ReplicaState
    account: str | None
    role: str | None
    destination_region: str
    destination_image_id: str | None
    deadline_at: datetime
    started_at: datetime | None
    sync_percent: int | None
    updated_at: datetime
    next_check_at: datetime
    looks: int
    first_look_at: datetime | None
    pace_changed: int | None


class Replication(BaseModel):
    """One request: a source region, its images, the destination regions and options."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str = Field(default_factory=lambda: new_id("rep"))
    source_region: str
    image_ids: list[str]
    destination_regions: list[str]
    name: str | None = None
    dry_run: bool = False
    origin: Origin = Origin.CLI
    requested_by: str = "unknown"
    rule: str | None = None
    hooks: list[HookSpec] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    replicas: list[Replica] = Field(default_factory=list)
    #: destinations in other accounts (domain.accounts)
    accounts: list[AccountDestination] = Field(default_factory=list)
    #: the destinations as asked (e.g. ["all-mainland"]) when a keyword was resolved into destination_regions
    requested_destinations: list[str] | None = None

    @property
    def current_replicas(self) -> list[Replica]:
        """The latest attempt of every copy: the replicas no retry replaced (domain.attempts)."""
        replaced = {r.retry_of for r in self.replicas if r.retry_of}
        return [r for r in self.replicas if r.id not in replaced]

    @property
    def state(self) -> str:
        """Summary state over the latest attempts: the least advanced one's state, or the terminal mix."""
        states = {r.state for r in self.current_replicas}
        if not states:
            return "EMPTY"
        active = [s for s in states if not s.terminal]
        if active:
            order = [ReplicaState.PENDING, ReplicaState.WAITING_SOURCE, ReplicaState.COPYING]
            return next(s.value for s in order if s in states)
        if states == {ReplicaState.SUCCEEDED}:
            return "SUCCEEDED"
        return "PARTIAL" if ReplicaState.SUCCEEDED in states else "FAILED"


class CompletionMessage(BaseModel):
    """Published once per replica end (via the outbox); completion_hook consumes it at least once."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    message_id: str
    #: ids are 16 characters; 32 is the state table's id column (a longer one could only fail there, every time)
    replica_id: str = Field(min_length=1, max_length=32)
    replication_id: str = Field(min_length=1, max_length=32)
    state: ReplicaState
    source_region: str
    source_image_id: str
    destination_region: str
    destination_image_id: str | None = None
    image_name: str
    error_code: str | None = None
    error_message: str | None = None
    started_at: datetime | None = None
    ended_at: datetime
    #: the account the copy is in, when not imagesync's own (domain.accounts)
    account: str | None = None

    @classmethod
    def for_replica(cls, replica: Replica, message_id: str | None = None) -> CompletionMessage:
        assert replica.ended_at is not None, "only an ended replica has a completion message"
        return cls(
            message_id=message_id or new_id("msg"),
            replica_id=replica.id,
            replication_id=replica.replication_id,
            state=replica.state,
            source_region=replica.source_region,
            source_image_id=replica.source_image_id,
            destination_region=replica.destination_region,
            destination_image_id=replica.destination_image_id,
            image_name=replica.image_name,
            error_code=replica.error_code,
            error_message=replica.error_message,
            started_at=replica.started_at,
            ended_at=replica.ended_at,
            account=replica.account,
        )

"""The HTTP API's models: what a request may hold, and the one schema of every response.

The response models are the public JSON of replications, replicas and hook runs for every front end: the routes
answer with them, the OpenAPI document (GET /openapi.json) is generated from them, and the CLI prints them with
`--json`. Each is built from domain objects by its `of()` and turned into JSON by `document()`.

A field left out of the constructor is left out of the document (`document()` dumps with exclude_unset): a listed
replica has no `hooks` (not loaded; `[]` would say "none ran"), a plain copy no `encrypted_from`, an error without
details no `details`. Every other field is always sent, null when it has no value. Times are sent as Python's
isoformat() writes them (`2026-01-01T00:00:00+00:00`), as they always were, not pydantic's `...Z`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from ...domain.accounts import AccountDestination
from ...domain.attempts import attempt_numbers, successors
from ...domain.errors import ImageSyncError
from ...domain.models import Origin, Replica, Replication
from ...domain.progress import estimate_end
from ...domain.states import ReplicaState
from ...domain.types import Destination, ImageId, Region
from ...ports import HookRun

# ------------------------------------------------------------------------------------------------ request models


class CopyRequestBody(BaseModel):
    """POST /replications."""

    model_config = ConfigDict(defer_build=True, extra="forbid", title="CopyRequestBody")

    source_region: Region
    image_ids: list[ImageId] = Field(min_length=1, description="custom images in source_region")
    destination_regions: list[Destination | AccountDestination] = Field(
        min_length=1,
        description="regions, or `all`, `all-mainland`, `all-overseas`: every region of that kind the account can "
        "use, resolved now minus the source and the regions the copy rules refuse from it (the answer's "
        "destination_regions is the resolved list; requested_destinations what was asked); and/or other "
        "accounts: {account (uin), role to assume there, regions}",
    )
    name: str | None = Field(default=None, description="name of the copies (default: the source image's name)")
    dry_run: bool = Field(default=False, description="validate and ask Tencent's DryRun; record nothing")

    def request_fields(self) -> dict[str, Any]:
        """The CopyRequest's fields: plain regions as destination_regions, account destinations as accounts."""
        fields = self.model_dump(exclude={"destination_regions"})
        fields["destination_regions"] = [d for d in self.destination_regions if isinstance(d, str)]
        fields["accounts"] = [d for d in self.destination_regions if isinstance(d, AccountDestination)]
        return fields


class RetryBody(BaseModel):
    """POST /replications/{id}/retry: which copies to retry (none named: every one whose latest attempt failed)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", title="RetryBody")

    regions: list[Region] = Field(
        default_factory=list, max_length=100, description="retry the copies into these destination regions"
    )
    replica_ids: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=100, description="retry these copies (any attempt's replica id)"
    )


class ListQuery(BaseModel):
    """GET /replications query: a replication is listed when one of its replicas matches every filter given."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    state: ReplicaState | None = Field(default=None, description="a replica's state")
    image_id: ImageId | None = Field(default=None, description="a replica's source image")
    region: Region | None = Field(default=None, description="a replica's destination region, or the source region")
    limit: int = Field(default=50, ge=1, le=100, description="page size")
    cursor: str | None = Field(
        default=None, min_length=1, max_length=500, description="next_cursor of the previous page"
    )


# ----------------------------------------------------------------------------------------------- response models


def _iso(value: datetime) -> str:
    return value.isoformat()


#: a time in a response: ISO 8601 with its offset, as datetime.isoformat() writes it
Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str, when_used="json"),
    WithJsonSchema({"format": "date-time", "type": "string"}),
]
ReplicationState = Literal["EMPTY", "PENDING", "WAITING_SOURCE", "COPYING", "SUCCEEDED", "PARTIAL", "FAILED"]


class Document(BaseModel):
    """A response body: closed (a field the server sends is a field the document declares)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    def document(self) -> dict[str, Any]:
        """The JSON object sent: only the fields given to the constructor (see the module docstring)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ReplicaError(Document):
    code: str
    message: str | None = None

    @classmethod
    def of(cls, code: str | None, message: str | None) -> ReplicaError | None:
        return cls(code=code, message=message) if code else None


class HookRunOut(Document):
    model_config = ConfigDict(defer_build=True, title="HookRun")

    hook: str = Field(description="the hook's key")
    type: str
    status: Literal["pending", "done", "failed", "skipped"] = Field(
        description="pending: failed, retried by redelivery; failed: gave up (dead-lettered)"
    )
    attempts: int
    error: ReplicaError | None
    result: dict[str, Any] | None
    updated_at: Timestamp

    @classmethod
    def of(cls, run: HookRun) -> HookRunOut:
        return cls(
            hook=run.hook_key,
            type=run.hook_type,
            status=cast(Any, run.status),  # a str in the port; checked against the Literal here, at run time
            attempts=run.attempts,
            error=ReplicaError.of(run.error_code, run.error_message),
            result=run.result,
            updated_at=run.updated_at,
        )


class EncryptedFrom(Document):
    """Where an encrypted copy (the encrypt hook's same-region copy) was made from."""

    replica_id: str | None = Field(description="the replica whose copy was encrypted")
    image_id: str = Field(description="the image encrypted")


def replica_eta(replica: Replica) -> datetime | None:
    """When a copy in flight is predicted to end (from its SyncPercent at its last update), else None."""
    if replica.state is not ReplicaState.COPYING:
        return None
    return estimate_end(replica.started_at, replica.updated_at, replica.sync_percent)


class ReplicaOut(Document):
    model_config = ConfigDict(defer_build=True, title="Replica")

    id: str
    source_image_id: str
    destination_region: str
    image_name: str
    state: ReplicaState
    destination_image_id: str | None
    sync_percent: int | None
    error: ReplicaError | None
    attempts: int
    created_at: Timestamp
    started_at: Timestamp | None
    ended_at: Timestamp | None
    deadline_at: Timestamp
    eta: Timestamp | None = Field(description="predicted end of a copy in flight (SyncPercent-based)")
    looks: int = Field(default=0, description="the sweep's looks at the copy so far (each a share of a DescribeImages)")
    looks_over: int | None = Field(
        default=None,
        description="at its end: looks taken over a look at the first look and one every IMAGESYNC_MAX_CHECK_SECONDS "
        "(0: a look ahead of that schedule saw the end; null: none went ahead, or not judged)",
    )
    pace_changed: int | None = Field(
        default=None,
        description="1: two of the sweep's looks put the copy's end at different times (its SyncPercent changed "
        "pace); 0: two agreed; null: not yet two looks with a percent",
    )
    encrypted_from: EncryptedFrom | None = Field(default=None, description="an encrypted copy's source")
    account: str | None = Field(default=None, description="a copy in another account: its uin (left out: own)")
    copied_from: str | None = Field(
        default=None, description="a copy in another account's other region: the replica of its handover copy"
    )
    hooks: list[HookRunOut] | None = Field(default=None, description="hook outcomes (GET of one replication)")
    retry_of: str | None = Field(default=None, description="the failed attempt this replica retries (a retry)")
    attempt: int | None = Field(
        default=None, description="which attempt of its copy this is: 1, then 2 for its first retry, ..."
    )
    retried_by: str | None = Field(
        default=None, description="the attempt that retried this one (an earlier attempt, kept as history)"
    )

    @classmethod
    def of(
        cls,
        replica: Replica,
        hooks: Sequence[HookRun] | None = None,
        *,
        attempt: int | None = None,
        retried_by: str | None = None,
    ) -> ReplicaOut:
        """`hooks`: the replica's hook records, sent as "hooks" (left out when not given). `attempt` and
        `retried_by` are known within its replication (ReplicationOut.of gives them); `retry_of` is sent when set."""
        extra: dict[str, Any] = {}
        if replica.retry_of or attempt is not None:
            extra["retry_of"] = replica.retry_of
        if attempt is not None:
            extra["attempt"] = attempt
            extra["retried_by"] = retried_by
        if replica.kms_key_id:
            extra["encrypted_from"] = EncryptedFrom(
                replica_id=replica.parent_replica_id, image_id=replica.source_image_id
            )
        if replica.account:
            extra["account"] = replica.account
            if replica.parent_replica_id:
                extra["copied_from"] = replica.parent_replica_id
        if hooks is not None:
            extra["hooks"] = [HookRunOut.of(h) for h in hooks]
        return cls(
            id=replica.id,
            source_image_id=replica.source_image_id,
            destination_region=replica.destination_region,
            image_name=replica.image_name,
            state=replica.state,
            destination_image_id=replica.destination_image_id,
            sync_percent=replica.sync_percent,
            error=ReplicaError.of(replica.error_code, replica.error_message),
            attempts=replica.attempts,
            created_at=replica.created_at,
            started_at=replica.started_at,
            ended_at=replica.ended_at,
            deadline_at=replica.deadline_at,
            eta=replica_eta(replica),
            looks=replica.looks,
            looks_over=replica.looks_over,
            pace_changed=replica.pace_changed,
            **extra,
        )


class CleanupDecision(Document):
    """One decision on a copy whose source was deleted (app.cleanup)."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    replica_id: str
    region: str
    image_id: str | None
    decision: Literal["deleted", "would_delete", "kept", "gone"]
    code: str = Field(description="Cleanup.Deleted, Cleanup.DryRun, Cleanup.InUse, Cleanup.SharedOut, ...")
    dry_run: bool
    trigger: Literal["event", "reconcile"]


class AccountDelivery(Document):
    """A delivery into another account: the account's image id per region (null until its copy is made)."""

    account: str
    role: str
    state: ReplicationState = Field(description="as a replication's, over this account's replicas")
    image_ids: dict[str, str | None] = Field(description="region -> the account's copy there")

    @classmethod
    def of_replication(cls, replication: Replication) -> list[AccountDelivery]:
        out = []
        for dest in replication.accounts:
            mine = [r for r in replication.replicas if r.account == dest.account]
            part = replication.model_copy(update={"replicas": mine})
            out.append(
                cls(
                    account=dest.account,
                    role=dest.role,
                    state=cast(ReplicationState, part.state),
                    image_ids={r.destination_region: r.destination_image_id for r in mine},
                )
            )
        return out


class ReplicationOut(Document):
    model_config = ConfigDict(defer_build=True, title="Replication")

    id: str
    state: ReplicationState = Field(
        description="the least advanced replica's state while any is active, else SUCCEEDED / PARTIAL / FAILED"
    )
    source_region: str
    image_ids: list[str]
    destination_regions: list[str]
    name: str | None
    dry_run: bool
    origin: Origin
    requested_by: str
    created_at: Timestamp
    replicas: list[ReplicaOut] = Field(description="every attempt of every copy, earlier attempts included")
    accounts: list[AccountDelivery] | None = Field(
        default=None, description="deliveries into other accounts (left out when there are none)"
    )
    cleanup: list[CleanupDecision] | None = Field(
        default=None, description="clean-up decisions on its copies after their source was deleted (GET of one)"
    )
    requested_destinations: list[str] | None = Field(
        default=None,
        description="the destinations as asked when they held a keyword (all, all-mainland, all-overseas); "
        "destination_regions is what it resolved to at request time",
    )

    @classmethod
    def of(
        cls,
        replication: Replication,
        hook_runs: Mapping[str, Sequence[HookRun]] | None = None,
        *,
        cleanup: Sequence[Mapping[str, Any]] | None = None,
    ) -> ReplicationOut:
        """`hook_runs`: the hook runs of its replicas by replica id (HookRunStore.hook_runs()); given, every replica
        carries its "hooks". `cleanup`: the audit trail's clean-up decisions (sent when there are any)."""
        numbers = attempt_numbers(replication.replicas)
        after = successors(replication.replicas)
        extra: dict[str, Any] = {}
        if replication.requested_destinations is not None:
            extra["requested_destinations"] = replication.requested_destinations
        if replication.accounts:
            extra["accounts"] = AccountDelivery.of_replication(replication)
        if cleanup:
            extra["cleanup"] = [CleanupDecision.model_validate(dict(c)) for c in cleanup]
        return cls(
            id=replication.id,
            state=cast(ReplicationState, replication.state),  # checked against the Literal at run time
            source_region=replication.source_region,
            image_ids=replication.image_ids,
            destination_regions=replication.destination_regions,
            name=replication.name,
            dry_run=replication.dry_run,
            origin=replication.origin,
            requested_by=replication.requested_by,
            created_at=replication.created_at,
            replicas=[
                ReplicaOut.of(
                    r,
                    hook_runs.get(r.id, []) if hook_runs is not None else None,
                    attempt=numbers[r.id],
                    retried_by=after[r.id].id if r.id in after else None,
                )
                for r in replication.replicas
            ],
            **extra,
        )


class RetryOut(Document):
    """POST /replications/{id}/retry: the attempts started now, the retries already running, the replication."""

    model_config = ConfigDict(defer_build=True, title="RetryResult")

    replication_id: str
    started: list[str] = Field(description="replica ids of the attempts this call started")
    running: list[str] = Field(description="replica ids of retries already running (a repeated call)")
    replication: ReplicationOut

    @classmethod
    def of(cls, replication: Replication, started: Sequence[Replica], running: Sequence[Replica]) -> RetryOut:
        return cls(
            replication_id=replication.id,
            started=[r.id for r in started],
            running=[r.id for r in running],
            replication=ReplicationOut.of(replication),
        )


class ReplicationPage(Document):
    items: list[ReplicationOut] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class ErrorDetail(Document):
    code: str = Field(description="stable machine-readable code, e.g. Region.CrossBorderNotAllowed")
    message: str
    details: dict[str, Any] | None = Field(
        default=None, description="e.g. `fields`: [{field, message}] on a 400, `allow` on a 405"
    )
    request_id: str | None = Field(default=None, description="on a 500: the id under which the error is logged")


class ErrorBody(Document):
    error: ErrorDetail

    @classmethod
    def of(cls, exc: ImageSyncError) -> ErrorBody:
        """The error's code, message and (when it has any) details."""
        return cls(error=ErrorDetail(**exc.to_dict()))

    @classmethod
    def internal(cls, request_id: str) -> ErrorBody:
        """A 500: a fixed message and the id under which the error is logged, never the error itself."""
        return cls(error=ErrorDetail(code="InternalError", message="internal error", request_id=request_id))


class ConflictBody(Document):
    error: ErrorDetail
    replication: ReplicationOut | None = Field(
        default=None, description="Replication.AlreadyInFlight: the replication that holds the copy"
    )


class Health(Document):
    status: Literal["ok"]


class OpenApiDocument(BaseModel):
    """Stands for the document itself in its own description (an object; see the OpenAPI 3.1 specification)."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    openapi: str

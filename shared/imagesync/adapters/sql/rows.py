"""Rows of the replicas and outbox tables <-> domain objects (shared by the replica, lease and outbox stores)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import RowMapping

from ...domain.errors import AlreadyInFlight
from ...domain.models import CompletionMessage, InFlight, Replica
from ...domain.states import ReplicaState

REPLICA_FIELDS = tuple(Replica.model_fields)
IN_FLIGHT_FIELDS = InFlight._fields
#: hook_runs statuses that no later write may change (see SqlHookRunStore.save_hook_run)
FINAL_HOOK_STATES = ("done", "skipped")
#: hook_runs statuses of a hook that is over: final, or given up
SETTLED_HOOK_STATES = (*FINAL_HOOK_STATES, "failed")


def inflight_key(source_region: str, image_id: str, destination_region: str, account: str | None = None) -> str:
    """The in-flight marker of one copy: "<source_region>/<image>/<destination_region>", prefixed "<uin>:" for a
    copy in another account (a copy of the same image into the same region of each account may run at once)."""
    key = f"{source_region}/{image_id}/{destination_region}"
    return f"{account}:{key}" if account else key


def key_of(r: Replica) -> str:
    return inflight_key(r.source_region, r.source_image_id, r.destination_region, r.account)


def replica_row(r: Replica) -> dict[str, Any]:
    row = {name: getattr(r, name) for name in REPLICA_FIELDS}
    row["state"] = r.state.value
    row["inflight_key"] = None if r.state.terminal else key_of(r)
    return row


def to_replica(row: RowMapping) -> Replica:
    return Replica.model_validate({name: row[name] for name in REPLICA_FIELDS})


def to_replicas(rows: Iterable[Sequence[Any]]) -> list[Replica]:
    """Replicas from plain rows whose columns are REPLICA_FIELDS, in that order (a claim's thousands of rows: by
    position, not through a RowMapping's per-key lookups)."""
    validate = Replica.model_validate
    return [validate(dict(zip(REPLICA_FIELDS, row, strict=True))) for row in rows]


def to_in_flight(rows: Iterable[Sequence[Any]]) -> list[InFlight]:
    """InFlight views from plain rows whose columns are IN_FLIGHT_FIELDS, in that order. The column types already
    give what the view holds (aware UTC datetimes: UTCDateTime); only the state is turned into its enum."""
    state, make = ReplicaState, InFlight._make
    return [make((*row[:2], state(row[2]), *row[3:])) for row in rows]


def to_replica_like(r: Replica) -> Replica:
    """What reading `r` back yields: datetimes normalised to UTC."""
    return Replica.model_validate(
        {k: (v.astimezone(timezone.utc) if isinstance(v, datetime) else v) for k, v in r.model_dump().items()}
    )


def with_end(r: Replica) -> Replica:
    """A terminal replica without ended_at gets ended_at = updated_at."""
    return r if r.ended_at is not None else r.model_copy(update={"ended_at": r.updated_at})


def outbox_row(r: Replica) -> dict[str, Any]:
    """The outbox row of a replica's end (written in the transaction that ends it)."""
    msg = CompletionMessage.for_replica(r)
    return {
        "message_id": msg.message_id,
        "replica_id": r.id,
        "payload": msg.model_dump_json(),
        "created_at": r.ended_at,
        "sent_at": None,
    }


def in_flight(existing: str) -> AlreadyInFlight:
    return AlreadyInFlight(f"a copy of the same image into the same region is in flight in {existing}", existing)

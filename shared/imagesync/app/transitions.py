"""Moving a replica: one compare-and-set write, and the audit record of its end."""

from __future__ import annotations

import logging

from ..domain.models import Replica
from ..domain.states import ReplicaState
from ..ports import AuditLog, Clock, ReplicaStore
from ..runtime.records import emit, seconds

log = logging.getLogger(__name__)


def move(
    replicas: ReplicaStore, audit: AuditLog, clock: Clock, replica: Replica, state: ReplicaState, **changes: object
) -> Replica | None:
    """Write `replica` moved to `state`; None when another invocation changed it first (it owns the replica now)."""
    moved = replica.moved(state, clock.now(), **changes)
    saved = replicas.save_replica(moved, expected_version=replica.version, expected_state=replica.state)
    if saved is None:
        log.info("replica %s changed meanwhile; left to its new owner", replica.id)
    elif state.terminal:
        audit.record_audit(
            replica.replication_id,
            "replica_ended",
            actor="imagesync",
            origin="sweep",
            detail={
                "replica_id": replica.id,
                "state": state.value,
                "destination_region": replica.destination_region,
                "destination_image_id": saved.destination_image_id,
                "error_code": saved.error_code,
            },
        )
        ended(saved)
    return saved


def ended(replica: Replica) -> None:
    """The operator's record of a replica's end (runtime.records: event replica_ended; an error unless it
    SUCCEEDED)."""
    end = replica.ended_at or replica.updated_at
    ok = replica.state is ReplicaState.SUCCEEDED
    emit(
        "replica_ended",
        logging.INFO if ok else logging.ERROR,
        f"replica {replica.state.value}",
        replication=replica.replication_id,
        replica=replica.id,
        source_region=replica.source_region,
        image=replica.source_image_id,
        region=replica.destination_region,
        state=replica.state.value,
        code=replica.error_code,
        error=replica.error_message,
        attempts=replica.attempts,
        duration_s=seconds(replica.started_at or replica.created_at, end),
        total_s=seconds(replica.created_at, end),
        overdue=end > replica.deadline_at,
    )

"""The public JSON shape of replications and replicas (HTTP API, CLI --json, docs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .domain.models import Replica, Replication
from .domain.progress import estimate_end
from .domain.states import ReplicaState
from .ports import HookRun


def replica_eta(replica: Replica) -> str | None:
    """ISO time a copy in flight is predicted to end (from its SyncPercent at its last update), else None."""
    if replica.state is not ReplicaState.COPYING:
        return None
    eta = estimate_end(replica.started_at, replica.updated_at, replica.sync_percent)
    return eta.isoformat() if eta else None


def hook_run_view(run: HookRun) -> dict[str, Any]:
    return {
        "hook": run.hook_key,
        "type": run.hook_type,
        "status": run.status,
        "attempts": run.attempts,
        "error": {"code": run.error_code, "message": run.error_message} if run.error_code else None,
        "result": run.result,
        "updated_at": run.updated_at.isoformat(),
    }


def replica_view(replica: Replica, hooks: Sequence[HookRun] | None = None) -> dict[str, Any]:
    """`hooks`: the replica's hook records (shown as "hooks"; omitted when not given)."""
    view = _replica_view(replica)
    view["eta"] = replica_eta(replica)
    if replica.kms_key_id:
        view["encrypted_from"] = {"replica_id": replica.parent_replica_id, "image_id": replica.source_image_id}
    if hooks is not None:
        view["hooks"] = [hook_run_view(h) for h in hooks]
    return view


def _replica_view(replica: Replica) -> dict[str, Any]:
    return {
        "id": replica.id,
        "source_image_id": replica.source_image_id,
        "destination_region": replica.destination_region,
        "image_name": replica.image_name,
        "state": replica.state.value,
        "destination_image_id": replica.destination_image_id,
        "sync_percent": replica.sync_percent,
        "error": {"code": replica.error_code, "message": replica.error_message} if replica.error_code else None,
        "attempts": replica.attempts,
        "created_at": replica.created_at.isoformat(),
        "started_at": replica.started_at.isoformat() if replica.started_at else None,
        "ended_at": replica.ended_at.isoformat() if replica.ended_at else None,
        "deadline_at": replica.deadline_at.isoformat(),
    }


def replication_view(
    replication: Replication, hook_runs: Mapping[str, Sequence[HookRun]] | None = None
) -> dict[str, Any]:
    """`hook_runs`: HookRunStore.hook_runs() of its replicas; each replica view then carries its "hooks"."""
    return {
        "id": replication.id,
        "state": replication.state,
        "source_region": replication.source_region,
        "image_ids": replication.image_ids,
        "destination_regions": replication.destination_regions,
        "name": replication.name,
        "dry_run": replication.dry_run,
        "origin": replication.origin.value,
        "requested_by": replication.requested_by,
        "created_at": replication.created_at.isoformat(),
        "replicas": [
            replica_view(r, hook_runs.get(r.id, []) if hook_runs is not None else None) for r in replication.replicas
        ],
    }

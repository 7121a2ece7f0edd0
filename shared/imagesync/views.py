"""The public JSON shape of replications and replicas (HTTP API, CLI --json, docs)."""

from __future__ import annotations

from typing import Any

from .domain.models import Replica, Replication


def replica_view(replica: Replica) -> dict[str, Any]:
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


def replication_view(replication: Replication) -> dict[str, Any]:
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
        "replicas": [replica_view(r) for r in replication.replicas],
    }

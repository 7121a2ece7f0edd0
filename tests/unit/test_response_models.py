"""The response models' documents, pinned: the JSON the HTTP API and the CLI's --json send for a replication.

Times as datetime.isoformat() writes them (+00:00, not Z); `hooks` only when hook runs were loaded (a list page
has none); `encrypted_from` only on an encrypted copy; every other field always, null when it has no value."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from imagesync.domain.errors import AlreadyInFlight, InvalidRequest
from imagesync.domain.models import Origin, Replica, Replication
from imagesync.domain.states import ReplicaState
from imagesync.handlers.api.models import ErrorBody, ReplicationOut
from imagesync.ports import HookRun

T0 = datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)


def _replica(**changes: object) -> Replica:
    fields: dict[str, object] = {
        "id": "rpl-aaaaaaaaaaaa",
        "replication_id": "rep-aaaaaaaaaaaa",
        "source_region": "ap-guangzhou",
        "source_image_id": "img-5ddkx3gh",
        "destination_region": "ap-shanghai",
        "image_name": "web",
        "state": ReplicaState.COPYING,
        "destination_image_id": "img-00000001",
        "sync_percent": 25,
        "attempts": 1,
        "created_at": T0,
        "updated_at": T0 + timedelta(minutes=10),
        "started_at": T0 + timedelta(minutes=5),
        "deadline_at": T0 + timedelta(hours=2),
        **changes,
    }
    return Replica.model_validate(fields)


def _replication(*replicas: Replica) -> Replication:
    return Replication(
        id="rep-aaaaaaaaaaaa",
        source_region="ap-guangzhou",
        image_ids=["img-5ddkx3gh"],
        destination_regions=["ap-shanghai"],
        origin=Origin.HTTP,
        requested_by="198.51.100.7",
        created_at=T0,
        replicas=list(replicas),
    )


def test_a_listed_replication() -> None:
    assert ReplicationOut.of(_replication(_replica())).document() == {
        "id": "rep-aaaaaaaaaaaa",
        "state": "COPYING",
        "source_region": "ap-guangzhou",
        "image_ids": ["img-5ddkx3gh"],
        "destination_regions": ["ap-shanghai"],
        "name": None,
        "dry_run": False,
        "origin": "http",
        "requested_by": "198.51.100.7",
        "created_at": "2026-01-02T03:00:00+00:00",
        "replicas": [
            {
                "id": "rpl-aaaaaaaaaaaa",
                "source_image_id": "img-5ddkx3gh",
                "destination_region": "ap-shanghai",
                "image_name": "web",
                "state": "COPYING",
                "destination_image_id": "img-00000001",
                "sync_percent": 25,
                "error": None,
                "attempts": 1,
                "created_at": "2026-01-02T03:00:00+00:00",
                "started_at": "2026-01-02T03:05:00+00:00",
                "ended_at": None,
                "deadline_at": "2026-01-02T05:00:00+00:00",
                # 5 minutes for 25%: 20 minutes in all
                "eta": "2026-01-02T03:25:00+00:00",
                "looks": 0,  # the sweep has not looked at it yet
                "looks_over": None,  # judged at its end
                "pace_changed": None,  # set by the sweep's looks
                # within its replication: a first attempt, not retried
                "retry_of": None,
                "attempt": 1,
                "retried_by": None,
            }
        ],
    }


def test_one_replication_with_its_hook_runs_and_an_encrypted_copy() -> None:
    ended = T0 + timedelta(minutes=30)
    done = _replica(state=ReplicaState.SUCCEEDED, sync_percent=100, ended_at=ended)
    failed = _replica(
        id="rpl-bbbbbbbbbbbb",
        state=ReplicaState.FAILED,
        destination_image_id=None,
        error_code="Image.CopyFailed",
        error_message="CREATEFAILED",
        ended_at=ended,
        kms_key_id="kms-1",
        parent_replica_id="rpl-aaaaaaaaaaaa",
    )
    run = HookRun(
        replica_id=done.id,
        hook_key="tag",
        replication_id="rep-aaaaaaaaaaaa",
        hook_type="tag",
        status="pending",
        attempts=2,
        updated_at=ended,
        error_code="Tag.Failed",
        error_message="throttled",
    )
    doc = ReplicationOut.of(_replication(done, failed), {done.id: [run]}).document()
    assert doc["state"] == "PARTIAL"
    first, second = doc["replicas"]
    assert first["eta"] is None and "encrypted_from" not in first
    assert first["hooks"] == [
        {
            "hook": "tag",
            "type": "tag",
            "status": "pending",
            "attempts": 2,
            "error": {"code": "Tag.Failed", "message": "throttled"},
            "result": None,
            "updated_at": "2026-01-02T03:30:00+00:00",
        }
    ]
    assert second["hooks"] == []  # loaded, none ran (a listed replica has no "hooks" at all)
    assert second["error"] == {"code": "Image.CopyFailed", "message": "CREATEFAILED"}
    assert second["encrypted_from"] == {"replica_id": "rpl-aaaaaaaaaaaa", "image_id": "img-5ddkx3gh"}


def test_error_bodies() -> None:
    assert ErrorBody.of(InvalidRequest("bad")).document() == {"error": {"code": "InvalidRequest", "message": "bad"}}
    assert ErrorBody.of(AlreadyInFlight("busy", replication_id="rep-x")).document() == {
        "error": {"code": "Replication.AlreadyInFlight", "message": "busy", "details": {"replication_id": "rep-x"}}
    }
    assert ErrorBody.internal("req-1").document() == {
        "error": {"code": "InternalError", "message": "internal error", "request_id": "req-1"}
    }


def test_a_value_outside_the_schema_is_refused_not_sent() -> None:
    run = HookRun(
        replica_id="r", hook_key="tag", replication_id="rep", hook_type="tag", status="lost", attempts=1, updated_at=T0
    )
    with pytest.raises(ValidationError):
        ReplicationOut.of(_replication(_replica()), {"rpl-aaaaaaaaaaaa": [run]})

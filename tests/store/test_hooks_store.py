"""Revision 0002 on every backend: rule and hooks of a replication, encrypted-copy replicas, hook records."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from imagesync.adapters.sql import SqlStateStore
from imagesync.domain.errors import AlreadyInFlight
from imagesync.domain.hooks import RetentionHook, WebhookHook
from imagesync.domain.models import Replica, Replication
from imagesync.domain.states import ReplicaState
from imagesync.ports import HookRun

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def _replication(rule: str | None = "nightly", **kw: object) -> Replication:
    fields: dict[str, object] = {
        "hooks": [WebhookHook(url="https://example.test/h", format="slack"), RetentionHook(keep=2)],
        **kw,
    }
    rep = Replication(
        source_region="ap-guangzhou",
        image_ids=["img-aaaa1111"],
        destination_regions=["ap-shanghai"],
        rule=rule,
        created_at=T0,
        **fields,  # type: ignore[arg-type]
    )
    replica = Replica(
        replication_id=rep.id,
        source_region="ap-guangzhou",
        source_image_id="img-aaaa1111",
        destination_region="ap-shanghai",
        image_name="web",
        created_at=T0,
        updated_at=T0,
        next_check_at=T0,
        deadline_at=T0 + timedelta(hours=2),
    )
    return rep.model_copy(update={"replicas": [replica]})


def test_rule_and_hooks_round_trip(store: SqlStateStore) -> None:
    rep = store.create_replication(_replication())
    stored = store.get_replication(rep.id)
    assert stored.rule == "nightly" and stored.hooks == rep.hooks
    bare = _replication(rule=None, hooks=[])
    elsewhere = bare.replicas[0].model_copy(update={"destination_region": "ap-beijing"})
    bare = bare.model_copy(update={"replicas": [elsewhere]})
    stored = store.get_replication(store.create_replication(bare).id)
    assert (stored.rule, stored.hooks) == (None, [])


def test_encrypted_copy_replica_is_added_once_and_guarded_in_flight(store: SqlStateStore) -> None:
    rep = store.create_replication(_replication())
    parent = rep.replicas[0]
    child = Replica(
        id="rpl-child0000001",
        replication_id=rep.id,
        source_region="ap-shanghai",
        source_image_id="img-copy0001",
        destination_region="ap-shanghai",
        image_name="web",
        created_at=T0,
        updated_at=T0,
        next_check_at=T0,
        deadline_at=T0 + timedelta(hours=2),
        kms_key_id="3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        parent_replica_id=parent.id,
    )
    assert store.add_replica(child) == child
    assert store.add_replica(child.model_copy(update={"created_at": T0 + timedelta(minutes=1)})) == child
    stored = store.get_replica(child.id)
    assert (stored.kms_key_id, stored.parent_replica_id) == (child.kms_key_id, parent.id)
    assert len(store.get_replication(rep.id).replicas) == 2
    with pytest.raises(AlreadyInFlight):
        store.add_replica(child.model_copy(update={"id": "rpl-child0000002"}))
    assert store.get_replica("rpl-child0000002") is None


def test_hook_runs_upsert_and_finished_copies(store: SqlStateStore) -> None:
    rep = store.create_replication(_replication())
    replica = rep.replicas[0]
    run = HookRun(
        replica_id=replica.id,
        hook_key="webhook",
        replication_id=rep.id,
        hook_type="webhook",
        status="pending",
        attempts=1,
        updated_at=T0,
        error_code="Webhook.BadStatus",
        error_message="503",
    )
    store.save_hook_run(run)
    store.save_hook_run(
        HookRun(
            replica_id=replica.id,
            hook_key="webhook",
            replication_id=rep.id,
            hook_type="webhook",
            status="done",
            attempts=2,
            updated_at=T0 + timedelta(seconds=5),
            result={"http_status": 200},
        )
    )
    runs = store.hook_runs([replica.id, "rpl-none"])
    assert runs["rpl-none"] == []
    [saved] = runs[replica.id]
    assert (saved.status, saved.attempts, saved.error_code, saved.result) == ("done", 2, None, {"http_status": 200})
    assert saved.updated_at == T0 + timedelta(seconds=5)
    # a slower concurrent run of the same end cannot turn a done record back into pending
    store.save_hook_run(dataclasses.replace(run, attempts=3))
    [kept] = store.hook_runs([replica.id])[replica.id]
    assert (kept.status, kept.attempts) == ("done", 2)

    assert store.finished_copies("ap-shanghai", rule="nightly", image_name="web") == []
    copying = replica.moved(ReplicaState.COPYING, T0, destination_image_id="img-copy0001")
    copying = store.save_replica(copying, expected_version=0, expected_state=ReplicaState.PENDING)
    ended = copying.moved(ReplicaState.SUCCEEDED, T0 + timedelta(minutes=20))
    store.save_replica(ended, expected_version=copying.version, expected_state=ReplicaState.COPYING)
    assert [r.id for r in store.finished_copies("ap-shanghai", rule="nightly", image_name="x")] == [replica.id]
    assert store.finished_copies("ap-shanghai", rule="other", image_name="web") == []
    assert store.finished_copies("ap-shanghai", rule=None, image_name="web") == []  # the rule's copies only

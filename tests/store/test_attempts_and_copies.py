"""Revision 0003 on every backend: retry attempts (replicas.retry_of), the destinations asked
(replications.requested_destinations), and the queries deprecation-following reads (copied_sources, copies_of)."""

from __future__ import annotations

from datetime import timedelta

from store_helpers import make_replication, utcnow

from imagesync.adapters.sql import SqlStateStore
from imagesync.domain.attempts import retry_id
from imagesync.domain.states import ReplicaState

S = ReplicaState


def test_a_retry_attempt_and_the_asked_destinations_round_trip(store: SqlStateStore) -> None:
    rep = make_replication(["img-aaaaaaaa"], ["ap-shanghai"], state=S.FAILED)
    rep = rep.model_copy(update={"requested_destinations": ["all-mainland"]})
    store.create_replication(rep)
    [failed] = rep.replicas
    attempt = failed.model_copy(
        update={
            "id": retry_id(failed.id),
            "state": S.PENDING,
            "ended_at": None,
            "retry_of": failed.id,
            "created_at": failed.created_at + timedelta(seconds=1),
        }
    )
    assert store.add_replica(attempt) == attempt
    assert store.add_replica(attempt).id == attempt.id  # idempotent by the derived id
    stored = store.get_replication(rep.id)
    assert stored is not None and stored.requested_destinations == ["all-mainland"]
    assert [(r.id, r.retry_of) for r in stored.replicas] == [(failed.id, None), (attempt.id, failed.id)]
    assert [r.id for r in stored.current_replicas] == [attempt.id] and stored.state == "PENDING"


def test_copied_sources_and_copies_of(store: SqlStateStore) -> None:
    now = utcnow()
    old = make_replication(["img-aaaaaaaa"], ["ap-shanghai", "ap-beijing"], state=S.SUCCEEDED, created_at=now)
    new = make_replication(["img-bbbbbbbb"], ["ap-shanghai"], state=S.SUCCEEDED, created_at=now + timedelta(minutes=5))
    failed = make_replication(["img-cccccccc"], ["ap-shanghai"], state=S.FAILED)
    for rep, tag in ((old, "a"), (new, "b"), (failed, "c")):
        rep = rep.model_copy(
            update={
                "replicas": [
                    r.model_copy(update={"destination_image_id": f"img-{tag}{i:07d}"})
                    for i, r in enumerate(rep.replicas)
                ]
            }
        )
        store.create_replication(rep)
    assert store.copied_sources(limit=10) == [("ap-guangzhou", "img-bbbbbbbb"), ("ap-guangzhou", "img-aaaaaaaa")]
    assert store.copied_sources(limit=1) == [("ap-guangzhou", "img-bbbbbbbb")]
    copies = store.copies_of("ap-guangzhou", ["img-aaaaaaaa", "img-cccccccc"])
    assert sorted(c.destination_region for c in copies) == ["ap-beijing", "ap-shanghai"]
    assert store.copies_of("ap-shanghai", ["img-aaaaaaaa"]) == []

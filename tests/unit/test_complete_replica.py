"""CompleteReplica on in-memory fakes of its ports: each hook once per replica end, failures alone, redeliveries.

The same use case runs with the SQL stores, the local queue and real webhooks in tests/integration/test_hooks.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from imagesync.app.complete import CompleteReplica, HooksFailed
from imagesync.app.hooks import HookContext, HookError, HookOutcome, done
from imagesync.app.idempotency import Idempotent
from imagesync.domain.hooks import HookSpec, ShareHook, TagHook, WebhookHook
from imagesync.domain.models import CompletionMessage, Origin, Replica, Replication
from imagesync.domain.states import ReplicaState
from tests.unit.fakes import FakeHookRuns, FakeIdempotency, FakeOutbox, FakeReplicaStore, FrozenClock

S = ReplicaState


class Runner:
    """A hook runner that records every run and fails while `failures` is positive."""

    def __init__(self, failures: int = 0) -> None:
        self.runs: list[str] = []
        self.failures = failures

    def run(self, spec: Any, ctx: HookContext) -> HookOutcome:
        self.runs.append(ctx.message.replica_id)
        if self.failures > 0:
            self.failures -= 1
            raise HookError("Webhook.BadStatus", "the webhook answered HTTP 503")
        return done(ran=spec.key)


class World:
    def __init__(self, *, global_hooks: list[HookSpec], rule_hooks: list[HookSpec], max_attempts: int = 3) -> None:
        self.clock = FrozenClock()
        self.replicas = FakeReplicaStore(FakeOutbox(self.clock))
        self.runs = FakeHookRuns()
        self.records = FakeIdempotency()
        self.runners = {"webhook": Runner(), "tag": Runner(), "share": Runner()}
        self.complete = CompleteReplica(
            Idempotent(self.records, self.clock),
            replicas=self.replicas,
            hook_runs=self.runs,
            clock=self.clock,
            runners=self.runners,
            global_hooks=global_hooks,
            max_attempts=max_attempts,
        )
        now = self.clock.now()
        replica = Replica(
            replication_id="rep-1",
            source_region="ap-guangzhou",
            source_image_id="img-a",
            destination_region="ap-shanghai",
            image_name="web",
            state=S.SUCCEEDED,
            destination_image_id="img-c",
            created_at=now,
            updated_at=now,
            ended_at=now,
            deadline_at=now + timedelta(hours=6),
            version=3,
        )
        self.replicas.put_replication(
            Replication(
                id="rep-1",
                source_region="ap-guangzhou",
                image_ids=["img-a"],
                destination_regions=["ap-shanghai"],
                origin=Origin.HTTP,
                hooks=rule_hooks,
                created_at=now,
                replicas=[replica],
            )
        )
        self.message = CompletionMessage.for_replica(replica)

    def statuses(self) -> dict[str, tuple[str, int]]:
        return {
            r.hook_key: (r.status, r.attempts)
            for r in self.runs.hook_runs([self.message.replica_id])[self.message.replica_id]
        }


def test_every_hook_runs_once_and_a_redelivery_replays_the_result() -> None:
    w = World(global_hooks=[WebhookHook(url="https://example.com/h")], rule_hooks=[TagHook(), WebhookHook(url="x")])
    first = w.complete(w.message)
    assert first["replayed"] is False
    assert set(first["hooks"]) == {"log", "webhook", "tag", "rule:webhook"}  # a rule's hook keyed apart
    assert w.statuses() == {"webhook": ("done", 1), "tag": ("done", 1), "rule:webhook": ("done", 1)}
    again = w.complete(w.message.model_copy(update={"message_id": "msg-redelivered"}))
    assert again["replayed"] is True and again["hooks"] == first["hooks"]
    assert len(w.runners["webhook"].runs) == 2 and len(w.runners["tag"].runs) == 1  # not run again


def test_a_failing_hook_fails_alone_and_its_redelivery_runs_only_it() -> None:
    w = World(global_hooks=[WebhookHook(url="https://example.com/h")], rule_hooks=[TagHook()])
    w.runners["webhook"].failures = 1
    with pytest.raises(HooksFailed) as err:
        w.complete(w.message)
    assert err.value.failures == {"webhook": "Webhook.BadStatus"}
    assert w.statuses() == {"webhook": ("pending", 1), "tag": ("done", 1)}
    assert w.records.records == {}  # the claim was released: the redelivery runs the work again
    result = w.complete(w.message)
    assert result["replayed"] is False and w.statuses() == {"webhook": ("done", 2), "tag": ("done", 1)}
    assert len(w.runners["tag"].runs) == 1 and len(w.runners["webhook"].runs) == 2


def test_a_hook_failing_every_delivery_shows_failed_on_the_last() -> None:
    w = World(global_hooks=[WebhookHook(url="https://example.com/h")], rule_hooks=[], max_attempts=2)
    w.runners["webhook"].failures = 5
    for expected in (("pending", 1), ("failed", 2)):
        with pytest.raises(HooksFailed):
            w.complete(w.message)
        assert w.statuses() == {"webhook": expected}
    last = w.runs.writes[-1]
    assert last.error_code == "Webhook.BadStatus" and "503" in (last.error_message or "")


def test_a_hook_not_meant_for_this_end_is_recorded_skipped() -> None:
    w = World(global_hooks=[], rule_hooks=[ShareHook(account_ids=["100000000001"])])
    failed_end = w.message.model_copy(update={"state": S.FAILED, "error_code": "Copy.Failed"})
    result = w.complete(failed_end)
    assert result["hooks"]["share"] == {"status": "skipped"} and w.runners["share"].runs == []
    assert w.statuses() == {"share": ("skipped", 0)}


def test_an_end_whose_replication_is_unknown_runs_only_the_global_hooks() -> None:
    w = World(global_hooks=[WebhookHook(url="https://example.com/h")], rule_hooks=[TagHook()])
    foreign = w.message.model_copy(update={"replication_id": "rep-unknown", "replica_id": "rpl-unknown"})
    result = w.complete(foreign)
    assert set(result["hooks"]) == {"log", "webhook"} and w.runners["tag"].runs == []

"""Hooks on the emulator: each hook's success, failure and retry; retention's refusals; encrypted copies as
replicas; the SyncPercent-based schedule; the image quota. Real handlers, SQLite, the local queue."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagesync.app.hooks.tag import REPLICATION_ID, SOURCE_IMAGE, SOURCE_REGION
from imagesync.domain.hooks import EncryptHook, LaunchHook, RetentionHook, ShareHook, TagHook
from imagesync.domain.models import CompletionMessage, CopyRequest
from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.local import deliver
from tests.conftest import load_event
from tests.integration.test_sweep_and_hooks import Receiver

TIMER = load_event("timer/every_minute.json")
UIN = "100000000001"
PARTNER = "100000000002"
KMS = "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"


def _sweep() -> dict[str, Any]:
    return status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})


def _deliver(svc: Any, n: int = 1) -> dict[str, int]:
    """`n` deliveries (a failed one is visible again at once: the next call redelivers it)."""
    return deliver(svc.queue, completion_hook.main_handler, max_messages=n, retry_delay=0)


def _request(svc: Any, image: str = "img-5ddkx3gh", regions: tuple[str, ...] = ("ap-shanghai",), **kw: Any) -> Any:
    request = CopyRequest(source_region="ap-guangzhou", image_ids=[image], destination_regions=list(regions), **kw)
    return svc.request_copies()(request).replication


def _finish(svc: Any, emulator: Any, minutes: int = 45) -> None:
    emulator.admin.advance(minutes * 60)
    _sweep()


def _runs(svc: Any, replica_id: str) -> dict[str, Any]:
    return {r.hook_key: r for r in svc.store.hook_runs([replica_id])[replica_id]}


def _use(svc: Any, **settings: Any) -> None:
    svc.settings = svc.settings.model_copy(update=settings)


@pytest.fixture
def receiver(services: Any) -> Any:
    r = Receiver()
    _use(services, webhook_url=r.url, webhook_secret="s3cret")
    yield r
    r.server.shutdown()


def test_tag_share_and_webhook_hooks_run_once_and_show_in_the_api(services: Any, emulator: Any, receiver: Any) -> None:
    _use(services, uin=UIN, hooks=[TagHook(extra={"owner": "platform"}), ShareHook(account_ids=[PARTNER])])
    replication = _request(services, rule="nightly")
    _finish(services, emulator)
    assert _deliver(services) == {"delivered": 1, "failed": 0}

    replica = services.store.get_replication(replication.id).replicas[0]
    copy = emulator.admin.image(replica.destination_image_id)
    tags = {t["Key"]: t["Value"] for t in copy["Tags"]}
    assert tags == {
        "team": "web",
        "env": "prod",
        "owner": "platform",
        SOURCE_IMAGE: "img-5ddkx3gh",
        SOURCE_REGION: "ap-guangzhou",
        REPLICATION_ID: replication.id,
        "imagesync:rule": "nightly",
    }
    assert PARTNER in copy["SharedWith"]
    assert len(receiver.received) == 1 and receiver.received[0]["valid"]
    runs = _runs(services, replica.id)
    assert {k: (r.status, r.attempts) for k, r in runs.items()} == {
        "webhook": ("done", 1),
        "tag": ("done", 1),
        "share": ("done", 1),
    }

    # a re-sent message acts on nothing again
    emulator.admin.clear_calls()
    services.queue.send(CompletionMessage.for_replica(replica).model_dump_json())
    assert _deliver(services) == {"delivered": 1, "failed": 0}
    assert len(receiver.received) == 1
    assert emulator.admin.calls(service="tag") == [] and emulator.admin.calls(action="ModifyImageSharePermission") == []

    event = load_event("http/apigw_get_replication.json")
    event["pathParameters"]["replication_id"] = replication.id
    event["path"] = f"/replications/{replication.id}"
    response = copy_request.main_handler(event, {})
    assert response["statusCode"] == 200, response["body"]
    shown = json.loads(response["body"])["replicas"][0]
    assert {h["hook"]: (h["status"], h["attempts"]) for h in shown["hooks"]} == {
        "webhook": ("done", 1),
        "tag": ("done", 1),
        "share": ("done", 1),
    }
    assert shown["hooks"][0]["result"]["image_id"] == replica.destination_image_id  # "share" sorts first


def test_a_failing_hook_is_retried_without_blocking_the_others(services: Any, emulator: Any, receiver: Any) -> None:
    _use(services, uin="", hooks=[TagHook(), ShareHook(account_ids=[PARTNER])])  # no uin: tagging cannot work
    replication = _request(services)
    _finish(services, emulator)
    assert _deliver(services) == {"delivered": 0, "failed": 1}
    replica = services.store.get_replication(replication.id).replicas[0]
    runs = _runs(services, replica.id)
    assert (runs["tag"].status, runs["tag"].error_code, runs["tag"].attempts) == ("pending", "Tag.NoAccountUin", 1)
    assert runs["share"].status == "done" and runs["webhook"].status == "done"
    assert len(receiver.received) == 1

    _use(services, uin=UIN)  # fixed: the redelivery runs only the hook that failed
    emulator.admin.clear_calls()
    assert _deliver(services) == {"delivered": 1, "failed": 0}
    runs = _runs(services, replica.id)
    assert (runs["tag"].status, runs["tag"].attempts, runs["tag"].error_code) == ("done", 2, None)
    assert emulator.admin.calls(action="ModifyImageSharePermission") == [] and len(receiver.received) == 1
    assert any(t["Key"] == SOURCE_IMAGE for t in emulator.admin.image(replica.destination_image_id)["Tags"])


def test_a_hook_failing_every_time_is_dead_lettered_and_recorded_failed(services: Any, emulator: Any) -> None:
    _use(services, hooks=[ShareHook(account_ids=["100000000099"])])  # no such account
    replication = _request(services)
    _finish(services, emulator)
    for _ in range(services.settings.queue_max_attempts + 1):
        _deliver(services)
    assert len(services.queue.dead_letters()) == 1
    replica = services.store.get_replication(replication.id).replicas[0]
    run = _runs(services, replica.id)["share"]
    assert (run.status, run.error_code, run.attempts) == ("failed", "InvalidAccountId.NotFound", 5)
    assert emulator.admin.image(replica.destination_image_id)["SharedWith"] in ([], {})


def test_webhook_robot_formats_and_failure_codes(services: Any, emulator: Any) -> None:
    robot = Receiver()
    try:
        from imagesync.domain.hooks import WebhookHook

        _use(
            services,
            hooks=[
                WebhookHook(name="wecom", url=robot.url, format="wecom"),
                WebhookHook(name="slack", url=robot.url, format="slack"),
                WebhookHook(
                    name="dingtalk", url=robot.url + "?access_token=t", format="dingtalk", secret_env="DT_SECRET"
                ),
            ],
        )
        _request(services)
        _finish(services, emulator)
        assert _deliver(services) == {"delivered": 0, "failed": 1}  # DT_SECRET is not set
        bodies = [r["body"] for r in robot.received]
        assert bodies[0]["msgtype"] == "markdown" and "SUCCEEDED" in bodies[0]["markdown"]["content"]
        assert bodies[1]["blocks"][0]["type"] == "section" and "img-5ddkx3gh" in bodies[1]["text"]
        replica_id = services.store.list_replications()[0][0].replicas[0].id
        assert _runs(services, replica_id)["dingtalk"].error_code == "Webhook.NoSecret"
    finally:
        robot.server.shutdown()


def test_encrypted_copy_is_a_replica_tracked_to_its_own_end(services: Any, emulator: Any) -> None:
    _use(services, uin=UIN)
    replication = _request(services, hooks=[EncryptHook(kms_key_ids={"ap-shanghai": KMS}), TagHook()])
    _finish(services, emulator)
    assert _deliver(services) == {"delivered": 1, "failed": 0}
    stored = services.store.get_replication(replication.id)
    parent, child = stored.replicas
    assert (child.state.value, child.kms_key_id, child.parent_replica_id) == ("PENDING", KMS, parent.id)
    assert (child.source_region, child.source_image_id) == ("ap-shanghai", parent.destination_image_id)
    services.queue.send(CompletionMessage.for_replica(parent).model_dump_json())
    assert _deliver(services) == {"delivered": 1, "failed": 0}  # the re-sent end makes no second encrypted copy
    assert len(services.store.get_replication(replication.id).replicas) == 2

    emulator.admin.advance(60)
    report = _sweep()
    assert report["outcomes"].get("STARTED") == 1
    sync = emulator.admin.calls(action="SyncImages")[-1]
    assert sync["params"]["Encrypt"] is True and sync["params"]["KmsKeyId"] == KMS and sync["region"] == "ap-shanghai"
    _finish(services, emulator)
    child = services.store.get_replica(child.id)
    assert child.state.value == "SUCCEEDED"
    assert emulator.admin.image(child.destination_image_id)["Region"] == "ap-shanghai"
    assert _deliver(services) == {"delivered": 1, "failed": 0}
    runs = _runs(services, child.id)
    assert runs["encrypt"].status == "skipped" and runs["tag"].status == "done"


def test_launch_hook_success_and_failure(services: Any, emulator: Any) -> None:
    good = LaunchHook(name="seed", spec={"Placement": {"Zone": "ap-shanghai-2"}, "InstanceType": "S5.MEDIUM2"})
    bad = LaunchHook(name="wrong-zone", spec={"Placement": {"Zone": "ap-beijing-3"}})
    replication = _request(services, hooks=[good, bad])
    _finish(services, emulator)
    assert _deliver(services) == {"delivered": 0, "failed": 1}
    replica = services.store.get_replication(replication.id).replicas[0]
    runs = _runs(services, replica.id)
    assert runs["seed"].status == "done" and len(runs["seed"].result["instance_ids"]) == 1
    assert (runs["wrong-zone"].status, runs["wrong-zone"].error_code) == ("pending", "InvalidZone.MismatchRegion")
    launched = emulator.admin.calls(action="RunInstances")
    assert [c["params"]["ImageId"] for c in launched if c["outcome"] == "ok"] == [replica.destination_image_id]
    _deliver(services)  # the retry does not launch the good one again
    assert len([c for c in emulator.admin.calls(action="RunInstances") if c["outcome"] == "ok"]) == 1


def test_launch_after_a_lost_answer_launches_one_instance(services: Any, emulator: Any) -> None:
    """RunInstances acted but its answer was lost: the retry carries the same ClientToken, so one instance."""
    hook = LaunchHook(name="seed", spec={"Placement": {"Zone": "ap-shanghai-2"}, "InstanceType": "S5.MEDIUM2"})
    replication = _request(services, hooks=[hook])
    _finish(services, emulator)
    emulator.admin.script_fault("RunInstances", 1, kind="drop_after")
    _deliver(services)
    _deliver(services)
    replica = services.store.get_replication(replication.id).replicas[0]
    assert _runs(services, replica.id)["seed"].status == "done"
    launched = [i for i in emulator.admin.dump()["instances"] if i["image_id"] == replica.destination_image_id]
    assert len(launched) == 1
    assert any(c.get("answer_lost") for c in emulator.admin.calls(action="RunInstances"))


def _copy_three_times(services: Any, emulator: Any, hook: RetentionHook) -> list[str]:
    images = []
    for _ in range(3):
        replication = _request(services, rule="golden", hooks=[hook])
        _finish(services, emulator)
        images.append(services.store.get_replication(replication.id).replicas[0].destination_image_id)
    return images


def test_retention_dry_run_by_default_then_deletes_older_copies(services: Any, emulator: Any) -> None:
    images = _copy_three_times(services, emulator, RetentionHook(keep=1))
    assert _deliver(services, 10) == {"delivered": 3, "failed": 0}
    last = services.store.list_replications(limit=1)[0][0].replicas[0]
    result = _runs(services, last.id)["retention"].result
    assert result["dry_run"] is True and result["kept"] == [images[2]]
    assert sorted(result["would_delete"]) == sorted(images[:2])
    assert all(emulator.admin.image(i) is not None for i in images)

    replication = _request(services, rule="golden", hooks=[RetentionHook(keep=2, dry_run=False)])
    _finish(services, emulator)
    _deliver(services)
    newest = services.store.get_replication(replication.id).replicas[0]
    result = _runs(services, newest.id)["retention"].result
    assert result["deleted"] == [images[1], images[0]] or sorted(result["deleted"]) == sorted(images[:2])
    assert emulator.admin.image(images[0]) is None and emulator.admin.image(images[2]) is not None


def test_retention_refuses_copies_in_use_or_still_syncing(services: Any, emulator: Any) -> None:
    images = _copy_three_times(services, emulator, RetentionHook(keep=1, dry_run=False, on=["FAILED"]))
    services.admin().run_instances(
        "ap-shanghai", images[0], {"Placement": {"Zone": "ap-shanghai-2"}}, client_token="t-1"
    )
    emulator.admin.set_image_state(images[1], "SYNCING")
    replication = _request(services, rule="golden", hooks=[RetentionHook(keep=1, dry_run=False)])
    _finish(services, emulator)
    assert _deliver(services, 10) == {"delivered": 4, "failed": 0}
    newest = services.store.get_replication(replication.id).replicas[0]
    result = _runs(services, newest.id)["retention"].result
    refused = {r["image_id"]: r["code"] for r in result["refused"]}
    assert refused == {images[0]: "Retention.InUse", images[1]: "Retention.NotReady"}
    assert result["deleted"] == [images[2]]
    assert emulator.admin.image(images[0]) and emulator.admin.image(images[1]) and not emulator.admin.image(images[2])
    # a copy not made by imagesync in the same region is never considered
    assert emulator.admin.image(newest.destination_image_id) is not None


def test_a_whole_copy_costs_a_handful_of_describe_calls(services: Any, emulator: Any) -> None:
    _use(services, max_check_seconds=600)
    emulator.admin.set_copy_duration(1800, 1800)
    replication = _request(services)
    emulator.admin.clear_calls()
    ticks = 0
    while services.store.get_replication(replication.id).replicas[0].state.value == "COPYING":
        emulator.admin.advance(60)  # one timer tick per emulated minute
        _sweep()
        ticks += 1
    replica = services.store.get_replication(replication.id).replicas[0]
    assert replica.state.value == "SUCCEEDED"
    checks = [c for c in emulator.admin.calls(action="DescribeImages") if "ImageIds" in c["params"]]
    assert len(checks) <= 8 < ticks // 2, (ticks, len(checks))  # a handful, not one per tick
    assert (replica.ended_at - replica.started_at).total_seconds() <= 1800 + 2 * 60  # seen within a tick or so


def test_eta_is_shown_while_copying(services: Any, emulator: Any) -> None:
    from imagesync.handlers.api.models import ReplicationOut

    emulator.admin.set_copy_duration(1200, 1200)
    replication = _request(services)
    emulator.admin.advance(600)
    _sweep()
    view = ReplicationOut.of(services.store.get_replication(replication.id)).document()["replicas"][0]
    assert view["state"] == "COPYING" and view["eta"] is not None
    replica = services.store.get_replication(replication.id).replicas[0]
    from datetime import datetime

    eta = datetime.fromisoformat(view["eta"])
    assert abs((eta - (replica.started_at + (eta - replica.started_at))).total_seconds()) < 1
    assert 1000 <= (eta - replica.started_at).total_seconds() <= 1400


def test_a_full_region_fails_its_replica_with_the_quota_code(services: Any, emulator: Any) -> None:
    quota = 500
    for i in range(quota):
        emulator.admin.add_image("ap-beijing", name=f"filler-{i}")
    replication = _request(services, regions=("ap-shanghai", "ap-beijing"))
    by_region = {r.destination_region: r for r in services.store.get_replication(replication.id).replicas}
    assert by_region["ap-shanghai"].state.value == "COPYING"
    assert (by_region["ap-beijing"].state.value, by_region["ap-beijing"].error_code) == (
        "FAILED",
        "Region.QuotaExceeded",
    )
    sync = emulator.admin.calls(action="SyncImages")[-1]
    assert sync["params"]["DestinationRegions"] == ["ap-shanghai"]
    assert len(emulator.admin.calls(action="DescribeImageQuota")) == 2

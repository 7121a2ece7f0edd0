"""The three handlers with every events/ file of their triggers, in-process on the emulator (official SDK), SQLite
and the local queue: CreateImage events -> rule copies, timer options, completion messages in every link's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.handlers.copy_request import EventsNotDone
from tests.conftest import EVENTS, load_event

GZ = "ap-guangzhou"
RULES = [
    {
        "name": "releases",
        "selector": {"source_regions": [GZ], "name_glob": "release-*"},
        "destinations": ["ap-shanghai", "ap-beijing"],
        "hooks": [{"type": "tag"}],
    },
]


def use_rules(svc: Any, rules: list[dict[str, Any]], **settings: Any) -> None:
    """Point the installed services at these rules (inline JSON, as on SCF) and other settings."""
    svc.settings = svc.settings.model_copy(update={"rules_json": json.dumps({"rules": rules}), **settings})
    svc.extras.pop("rules", None)


@pytest.fixture
def frozen(services: Any, emulator: Any) -> Any:
    """Emulated time moves only when a test advances it (CreateImage's 5 minutes are 0.5 s at the default scale)."""
    emulator.admin.set_time_scale(0)
    use_rules(services, RULES)
    return services


def create_image(svc: Any, name: str, **params: Any) -> str:
    """CreateImage through the official SDK client (the emulator keeps it CREATING for 5 emulated minutes)."""
    resp = svc.cloud.call(
        "cvm", GZ, "CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": name, **params}, safe=False
    )
    return str(resp["ImageId"])


def audit_event(
    emulator: Any,
    name: str,
    *,
    file: str = "eventbridge/cloudaudit_create_image.json",
    event_id: str | None = None,
    image_id: str | None = None,
) -> dict[str, Any]:
    """An events/ file with the new image's name, the event time (epoch ms, now) and a fresh event id."""
    event = load_event(file)
    params = json.loads(event["data"]["requestParameters"])
    params["ImageName"] = name
    event["data"]["requestParameters"] = json.dumps(params)
    event["time"] = int(emulator.admin.now() * 1000)
    event["id"] = event_id or f"evt-{name}"
    if image_id:
        event["data"]["resourceName"] = f"qcs::cvm:{GZ}:uin/100000000001:image/{image_id}"
    return event


def sweep(event: dict[str, Any] | None = None) -> dict[str, Any]:
    return status_sweep.main_handler(event or load_event("timer/every_minute.json"), {"time_limit_in_ms": 30000})


def replications(svc: Any) -> list[Any]:
    return svc.store.list_replications(limit=100)[0]


# -- EventBridge -> copy_request ------------------------------------------------------------------------------------


def test_create_image_event_starts_waiting_copies_then_the_sweep_starts_them(frozen: Any, emulator: Any) -> None:
    image_id = create_image(frozen, "release-2026-11-26")
    result = copy_request.main_handler(audit_event(emulator, "release-2026-11-26"), {})
    [outcome] = result["events"]
    assert outcome["status"] == "handled" and outcome["image_id"] == image_id and outcome["rules"] == ["releases"]
    assert outcome["requests"][0]["status"] == "requested" and outcome["requests"][0]["states"] == ["WAITING_SOURCE"]
    [replication] = replications(frozen)
    assert replication.origin.value == "event" and replication.rule == "releases"
    assert replication.requested_by == "eventbridge:release-bot"
    assert [h.type for h in replication.hooks] == ["tag"]
    assert {(r.destination_region, r.state.value) for r in replication.replicas} == {
        ("ap-shanghai", "WAITING_SOURCE"),
        ("ap-beijing", "WAITING_SOURCE"),
    }
    assert emulator.admin.calls(action="SyncImages") == []  # the image is still CREATING

    emulator.admin.advance(6 * 60)  # CreateImage's image turns NORMAL after 5 emulated minutes
    report = sweep()
    assert report["outcomes"].get("STARTED") == 2
    [sync] = emulator.admin.calls(action="SyncImages")
    assert sync["params"]["ImageIds"] == [image_id]
    assert sorted(sync["params"]["DestinationRegions"]) == ["ap-beijing", "ap-shanghai"]
    emulator.admin.advance(45 * 60)
    assert sweep()["outcomes"] == {"SUCCEEDED": 2}


def test_the_same_event_twice_makes_one_replication(frozen: Any, emulator: Any) -> None:
    create_image(frozen, "release-twice")
    event = audit_event(emulator, "release-twice")
    first = copy_request.main_handler(event, {})["events"][0]
    emulator.admin.clear_calls()
    again = copy_request.main_handler(event, {})["events"][0]
    assert again["replayed"] is True and again["requests"] == first["requests"]
    assert len(replications(frozen)) == 1
    assert emulator.admin.calls(service="cvm") == []  # answered from the idempotency record


def test_a_batched_delivery_handles_each_event(frozen: Any, emulator: Any) -> None:
    a, b = create_image(frozen, "release-batch-a"), create_image(frozen, "release-batch-b")
    event = load_event("eventbridge/batch_create_image_and_other.json")
    for item in event["EventList"]:
        item["time"] = int(emulator.admin.now() * 1000)
    result = copy_request.main_handler(event, {})
    statuses = [(e["id"][-1], e["status"]) for e in result["events"]]
    assert statuses == [("7", "handled"), ("8", "ignored"), ("9", "handled")]
    assert "ModifyImageAttribute is not CreateImage" in result["events"][1]["reason"]
    assert sorted(r.image_ids[0] for r in replications(frozen)) == sorted([a, b])


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("eventbridge/cloudaudit_create_image_failed.json", "CreateImage failed (InvalidImageName.Duplicate"),
        ("eventbridge/cloudaudit_run_instances_ignored.json", "RunInstances is not CreateImage"),
        ("eventbridge/cvm_instance_state_change_ignored.json", "is not a CloudAudit API call"),
    ],
)
def test_failed_calls_and_other_events_are_ignored_with_a_log_line(
    frozen: Any, emulator: Any, file: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.admin.clear_calls()
    result = copy_request.main_handler(load_event(file), {})
    [outcome] = result["events"]
    assert outcome["status"] == "ignored" and reason in outcome["reason"]
    assert replications(frozen) == [] and emulator.admin.calls(service="cvm") == []
    assert any("event ignored" in r.getMessage() for r in caplog.records)


def test_console_call_with_subjuect_and_string_time(frozen: Any, emulator: Any) -> None:
    create_image(frozen, "release-console")
    event = audit_event(emulator, "release-console", file="eventbridge/cloudaudit_create_image_console_subjuect.json")
    event["time"] = str(event["time"])
    [outcome] = copy_request.main_handler(event, {})["events"]
    assert outcome["status"] == "handled" and len(replications(frozen)) == 1


def test_an_image_id_in_the_record_is_used_directly(frozen: Any, emulator: Any) -> None:
    image_id = create_image(frozen, "release-by-id")
    emulator.admin.clear_calls()
    event = audit_event(
        emulator, "release-by-id", file="eventbridge/cloudaudit_create_image_with_resource_id.json", image_id=image_id
    )
    [outcome] = copy_request.main_handler(event, {})["events"]
    assert outcome["image_id"] == image_id
    first_describe = emulator.admin.calls(action="DescribeImages")[0]
    assert first_describe["params"].get("ImageIds") == [image_id]


def test_an_image_not_visible_yet_is_retried_then_acknowledged(frozen: Any, emulator: Any) -> None:
    use_rules(frozen, RULES, event_image_wait_seconds=900)
    event = audit_event(emulator, "release-not-there-yet")
    with pytest.raises(EventsNotDone) as caught:
        copy_request.main_handler(event, {})
    assert "Event.ImageNotVisibleYet" in str(caught.value)
    # the redelivery looks again (the first attempt released its idempotency claim) and finds the image
    create_image(frozen, "release-not-there-yet")
    [outcome] = copy_request.main_handler(event, {})["events"]
    assert outcome["status"] == "handled" and len(replications(frozen)) == 1

    late = audit_event(emulator, "release-never-made")
    emulator.admin.advance(901)
    [gone] = copy_request.main_handler(late, {})["events"]
    assert gone["status"] == "image_not_found"  # acknowledged: the reconcile pass is the safety net


def test_a_refused_rule_request_is_recorded_not_raised(frozen: Any, emulator: Any) -> None:
    use_rules(frozen, RULES, size_cap_gb=10)  # the instance's image is 20 GB
    create_image(frozen, "release-too-big")
    [outcome] = copy_request.main_handler(audit_event(emulator, "release-too-big"), {})["events"]
    [request] = outcome["requests"]
    assert request["status"] == "refused" and request["code"] == "Image.TooLarge"
    assert replications(frozen) == []
    replay = copy_request.main_handler(audit_event(emulator, "release-too-big"), {})["events"][0]
    assert replay["replayed"] is True  # acknowledged once, never retried


def test_no_matching_rule_and_bad_rules(frozen: Any, emulator: Any) -> None:
    create_image(frozen, "nightly-other")
    [outcome] = copy_request.main_handler(audit_event(emulator, "nightly-other"), {})["events"]
    assert outcome["status"] == "no_rule" and replications(frozen) == []
    frozen.settings = frozen.settings.model_copy(update={"rules_json": '{"rules": [{"name": 1}]}'})
    frozen.extras.pop("rules", None)
    with pytest.raises(EventsNotDone, match="Rules.Invalid"):
        copy_request.main_handler(audit_event(emulator, "nightly-other", event_id="evt-2"), {})


@pytest.mark.parametrize("name", sorted(p.name for p in (EVENTS / "eventbridge").glob("*.json")))
def test_copy_request_with_every_eventbridge_file(frozen: Any, emulator: Any, name: str) -> None:
    """Each file as delivered (its names match no image in the world): acknowledged, nothing copied."""
    use_rules(frozen, RULES, event_image_wait_seconds=0)
    result = copy_request.main_handler(load_event(f"eventbridge/{name}"), {})
    assert {e["status"] for e in result["events"]} <= {"ignored", "image_not_found", "cleanup"}
    assert all(not e.get("decisions") for e in result["events"])  # no copy of a deleted source: nothing decided
    assert replications(frozen) == []


# -- timer -> status_sweep --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in (EVENTS / "timer").glob("*.json")))
def test_status_sweep_with_every_timer_file(frozen: Any, emulator: Any, name: str) -> None:
    create_image(frozen, "release-timer")
    report = sweep(load_event(f"timer/{name}"))
    reconciled = report["reconciled"]
    if name == "skip_reconcile_small_batch.json":
        assert reconciled == {} and replications(frozen) == []
    else:
        assert reconciled["ran"] is True and len(reconciled["requested"]) == 1
        assert replications(frozen)[0].origin.value == "rule"
    if name == "bad_message.json":
        assert report["options_error"]["code"] == "Event.Invalid"
    else:
        assert "options_error" not in report


def test_timer_auto_runs_the_reconcile_pass_once_per_window(frozen: Any, emulator: Any) -> None:
    auto, force = load_event("timer/every_minute.json"), load_event("timer/force_reconcile.json")
    assert sweep(auto)["reconciled"]["ran"] is True
    assert sweep(auto)["reconciled"] == {"ran": False, "reason": "already ran in this window", "window_seconds": 600}
    assert sweep(force)["reconciled"]["ran"] is True
    emulator.admin.advance(600)
    assert sweep(auto)["reconciled"]["ran"] is True


# -- queue -> completion_hook ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in (EVENTS / "queue").glob("*.json")))
def test_completion_hook_with_every_queue_file(services: Any, name: str, caplog: pytest.LogCaptureFixture) -> None:
    result = completion_hook.main_handler(load_event(f"queue/{name}"), {})
    replicas = (
        ["rpl-demo00000001", "rpl-demo00000002"] if name == "scf_async_two_messages.json" else ["rpl-demo00000001"]
    )
    assert result["processed"] == len(replicas)
    assert [r["replica_id"] for r in result["results"]] == replicas
    rejected = {
        "cmq_batch_one_bad_record.json": ["msg-0005", "msg-0006"],
        "scf_async_batch_one_bad_record.json": ["#1", "msg-demo00000002"],
    }.get(name, [])
    assert [r["msg_id"] for r in result["rejected"]] == rejected
    assert sum("completion record rejected" in r.getMessage() for r in caplog.records) == len(rejected)
    again = completion_hook.main_handler(load_event(f"queue/{name}"), {})
    assert all(r["replayed"] is True for r in again["results"])  # acted on once


def test_completion_hook_refuses_a_foreign_shape_without_retrying(services: Any) -> None:
    result = completion_hook.main_handler(load_event("timer/every_minute.json"), {})
    assert result["processed"] == 0 and "not a queue delivery" in result["rejected"][0]["error"]


def test_the_emulators_own_cloudaudit_event_starts_copies(frozen: Any, emulator: Any) -> None:
    """End to end with the event the emulator records for a real CreateImage call (its apiErrorCode is 0)."""
    image_id = create_image(frozen, "release-from-audit")
    [event] = emulator.admin.drain_audit_events()
    result = copy_request.main_handler(event, {})
    [outcome] = result["events"]
    assert outcome["status"] == "handled" and outcome["image_id"] == image_id
    [replication] = replications(frozen)
    assert {r.state.value for r in replication.replicas} == {"WAITING_SOURCE"}

"""Clean up with the source (issue 14 item 4) on the emulator and SQLite: the CloudAudit DeleteImages event through
copy_request, and the reconcile pass as the backstop; never a copy in use, shared out, syncing or not imagesync's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagesync.handlers import copy_request, status_sweep
from tests.conftest import load_event
from tests.integration.test_events import GZ, create_image, replications, use_rules

FORCE = load_event("timer/force_reconcile.json")
PARTNER = "100000000002"


def sweep() -> dict[str, Any]:
    return status_sweep.main_handler(FORCE, {"time_limit_in_ms": 60000})


def rule(**cleanup: Any) -> dict[str, Any]:
    return {
        "name": "releases",
        "selector": {"source_regions": [GZ], "name_glob": "release-*"},
        "destinations": ["ap-shanghai", "ap-beijing", "ap-nanjing"],
        "cleanup": cleanup,
    }


def delete_event(image_id: str) -> dict[str, Any]:
    event = load_event("eventbridge/cloudaudit_delete_images.json")
    params = json.loads(event["data"]["requestParameters"])
    params["ImageIds"] = [image_id]
    event["data"]["requestParameters"] = json.dumps(params)
    event["data"]["resourceName"] = f"image/{image_id}"
    event["data"]["resources"] = json.dumps([f"qcs::cvm:{GZ}:uin/100000000001:image/{image_id}"])
    return event


def get_event(replication_id: str) -> dict[str, Any]:
    event = load_event("http/apigw_get_replication.json")
    event["path"] = f"/replications/{replication_id}"
    return event


@pytest.fixture
def copied(services: Any, emulator: Any) -> tuple[Any, str, dict[str, str]]:
    """A release image copied by the rule into three regions; one copy shared out, one used by an instance."""
    emulator.admin.set_time_scale(0)
    use_rules(services, [rule(on_source_deleted="delete", dry_run=False)])
    image_id = create_image(services, "release-cleanup")
    sweep()
    emulator.admin.advance(6 * 60)
    sweep()
    emulator.admin.advance(45 * 60)
    sweep()
    [replication] = replications(services)
    copies = {r.destination_region: r.destination_image_id for r in replication.replicas}
    assert {r.state.value for r in replication.replicas} == {"SUCCEEDED"} and all(copies.values())
    cloud = services.cloud
    cloud.call(
        "cvm",
        "ap-shanghai",
        "ModifyImageSharePermission",
        {"ImageId": copies["ap-shanghai"], "AccountIds": [PARTNER], "Permission": "SHARE"},
        safe=False,
    )
    cloud.call(
        "cvm",
        "ap-nanjing",
        "RunInstances",
        {"Placement": {"Zone": "ap-nanjing-1"}, "ImageId": copies["ap-nanjing"]},
        safe=False,
    )
    cloud.call("cvm", GZ, "DeleteImages", {"ImageIds": [image_id], "DeleteBindedSnap": True}, safe=False)
    return services, image_id, copies


def test_delete_event_deletes_the_copies_a_rule_asks_for_with_their_snapshots(copied: Any, emulator: Any) -> None:
    svc, image_id, copies = copied
    result = copy_request.main_handler(delete_event(image_id), {})
    [outcome] = result["events"]
    assert outcome["status"] == "cleanup" and outcome["images"] == [image_id]
    decided = {d["region"]: (d["decision"], d["code"]) for d in outcome["decisions"]}
    assert decided == {
        "ap-beijing": ("deleted", "Cleanup.Deleted"),
        "ap-shanghai": ("kept", "Cleanup.SharedOut"),
        "ap-nanjing": ("kept", "Cleanup.InUse"),
    }
    assert emulator.admin.image(copies["ap-beijing"]) is None
    assert emulator.admin.image(copies["ap-shanghai"]) and emulator.admin.image(copies["ap-nanjing"])
    [call] = [c for c in emulator.admin.calls(action="DeleteImages") if c["region"] == "ap-beijing"]
    assert call["params"] == {"ImageIds": [copies["ap-beijing"]], "DeleteBindedSnap": True}
    left = [s for s in emulator.admin.snapshots(region="ap-beijing") if not s["image_ids"]]
    assert left == []  # no snapshot left behind, billing
    # every decision is on the replication's record, shown by the API and the CLI's --json
    [replication] = replications(svc)
    trail = [a for a in svc.store.audit_trail(replication.id) if a["event"] == "cleanup"]
    assert len(trail) == 3 and {a["origin"] for a in trail} == {"event"}
    got = copy_request.main_handler(get_event(replication.id), {})
    shown = json.loads(got["body"])["cleanup"]
    assert {(c["region"], c["decision"], c["code"]) for c in shown} == {
        ("ap-beijing", "deleted", "Cleanup.Deleted"),
        ("ap-shanghai", "kept", "Cleanup.SharedOut"),
        ("ap-nanjing", "kept", "Cleanup.InUse"),
    }
    # a redelivered event decides the same and records nothing new
    again = copy_request.main_handler(delete_event(image_id), {})
    assert again["events"][0]["decisions"] == []
    assert len([a for a in svc.store.audit_trail(replication.id) if a["event"] == "cleanup"]) == 3


def test_dry_run_by_default_deletes_nothing(services: Any, emulator: Any) -> None:
    emulator.admin.set_time_scale(0)
    use_rules(services, [rule(on_source_deleted="delete")])
    image_id = create_image(services, "release-dry")
    sweep()
    emulator.admin.advance(6 * 60)
    sweep()
    emulator.admin.advance(45 * 60)
    sweep()
    services.cloud.call("cvm", GZ, "DeleteImages", {"ImageIds": [image_id]}, safe=False)
    emulator.admin.clear_calls()
    [outcome] = copy_request.main_handler(delete_event(image_id), {})["events"]
    assert {d["decision"] for d in outcome["decisions"]} == {"would_delete"}
    assert all(d["dry_run"] for d in outcome["decisions"]) and len(outcome["decisions"]) == 3
    assert emulator.admin.calls(action="DeleteImages") == []


def test_the_reconcile_pass_is_the_backstop(copied: Any, emulator: Any) -> None:
    svc, image_id, copies = copied  # the source is gone and no event was delivered
    report = sweep()["reconciled"]
    assert report["cleanup"]["sources_missing"] == [image_id]
    assert report["cleanup"]["decisions"] == {"deleted": 1, "kept": 2}
    assert emulator.admin.image(copies["ap-beijing"]) is None
    [replication] = replications(svc)
    assert {a["origin"] for a in svc.store.audit_trail(replication.id) if a["event"] == "cleanup"} == {"reconcile"}
    assert sweep()["reconciled"]["cleanup"]["decisions"] == {}  # decided already: nothing new recorded


def test_copies_not_asked_for_are_never_touched(services: Any, emulator: Any) -> None:
    emulator.admin.set_time_scale(0)
    use_rules(services, [rule()])  # cleanup: keep (the default)
    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps(
        {"source_region": GZ, "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-beijing"]}
    )
    assert copy_request.main_handler(event, {})["statusCode"] == 202
    emulator.admin.advance(45 * 60)
    sweep()
    services.cloud.call("cvm", GZ, "DeleteImages", {"ImageIds": ["img-5ddkx3gh"]}, safe=False)
    [outcome] = copy_request.main_handler(delete_event("img-5ddkx3gh"), {})["events"]
    assert outcome["decisions"] == []  # an HTTP request's copy: no rule asked for cleanup
    assert sweep()["reconciled"].get("cleanup", {}).get("sources_missing", []) == []

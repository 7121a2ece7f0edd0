"""Clean up with the source through the deployed package on the emulated SCF: CloudAudit DeleteImages -> the
EventBridge rule deploy-steps made -> copy_request, which deletes the rule's copies (DeleteBindedSnap)."""

from __future__ import annotations

from typing import Any

import pytest

from imagesync_dev.demo_cloud import RULE_IMAGE_NAME, RULES, sdk

from .conftest import step_until, wait_for

pytestmark = pytest.mark.slow


def test_delete_images_event_cleans_up_the_copies_on_the_deployed_functions(cloud: Any) -> None:
    [rule] = RULES["rules"]
    stack = cloud(rules={"rules": [{**rule, "cleanup": {"on_source_deleted": "delete", "dry_run": False}}]})
    cvm = sdk(stack.emu, "cvm")
    image_id = cvm.call_json("CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": RULE_IMAGE_NAME})["Response"][
        "ImageId"
    ]

    def replication() -> dict[str, Any] | None:
        status, listed = stack.http("GET", f"/replications?image_id={image_id}")
        items = listed.get("items") or [] if status == 200 else []
        return items[0] if items else None

    def succeeded() -> dict[str, Any] | None:
        found = replication()
        ok = found and found["replicas"] and all(r["state"] == "SUCCEEDED" for r in found["replicas"])
        return found if ok else None

    done = step_until(stack, succeeded, what="the rule's copies to succeed")
    copies = {r["destination_region"]: r["destination_image_id"] for r in done["replicas"]}
    wait_for(stack.emu.scf.idle, what="the async queue to drain")
    before = len([r for r in stack.attempts("copy_request") if r["source"] == "eventbridge"])
    cvm.call_json("DeleteImages", {"ImageIds": [image_id]})
    wait_for(
        lambda: len([r for r in stack.attempts("copy_request") if r["source"] == "eventbridge"]) > before,
        what="the routed DeleteImages",
    )
    wait_for(stack.emu.scf.idle, what="the async queue to drain")
    status, shown = stack.http("GET", f"/replications/{done['id']}")
    assert status == 200
    assert {(c["region"], c["decision"]) for c in shown["cleanup"]} == {
        ("ap-shanghai", "deleted"),
        ("ap-beijing", "deleted"),
    }
    assert all(stack.emu.admin.image(i) is None for i in copies.values())
    left = [s for s in stack.emu.admin.snapshots() if not s["image_ids"] and s["region"] in copies]
    assert left == []  # the copies' snapshots went with them: none left behind, billing

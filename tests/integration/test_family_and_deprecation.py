"""Family and deprecation follow the copy (issue 14, item 3) on the emulator (official SDK), SQLite and the local
queue: the `family` hook, the reconcile pass deprecating the copies of a deprecated source, retention per family."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagesync.domain.hooks import FamilyHook, RetentionHook
from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.local import deliver
from tests.conftest import load_event
from tests.integration.test_events import GZ, use_rules

TIMER = load_event("timer/every_minute.json")
FORCE = load_event("timer/force_reconcile.json")


@pytest.fixture
def svc(services: Any, emulator: Any) -> Any:
    emulator.admin.set_time_scale(0)
    return services


def _copy(image_id: str, *regions: str) -> dict[str, Any]:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps({"source_region": GZ, "image_ids": [image_id], "destination_regions": list(regions)})
    response = copy_request.main_handler(event, {})
    assert response["statusCode"] == 202, response["body"]
    return json.loads(response["body"])


def _finish(svc: Any, emulator: Any) -> None:
    emulator.admin.advance(45 * 60)
    status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})
    deliver(svc.queue, completion_hook.main_handler)


def _copies(svc: Any, replication_id: str) -> dict[str, str]:
    return {r.destination_region: r.destination_image_id for r in svc.store.get_replication(replication_id).replicas}


def test_family_hook_sets_the_source_family_on_each_copy(svc: Any, emulator: Any) -> None:
    svc.settings = svc.settings.model_copy(update={"hooks": [FamilyHook()]})
    svc.admin().modify_image(GZ, "img-5ddkx3gh", family="web-base")
    replication = _copy("img-5ddkx3gh", "ap-shanghai", "ap-beijing")
    _finish(svc, emulator)
    copies = _copies(svc, replication["id"])
    assert {emulator.admin.image(i)["ImageFamily"] for i in copies.values()} == {"web-base"}
    runs = svc.store.hook_runs(list(r.id for r in svc.store.get_replication(replication["id"]).replicas))
    assert all([(h.hook_key, h.status) for h in v] == [("family", "done")] for v in runs.values())
    sets = [c for c in emulator.admin.calls(action="ModifyImageAttribute") if c["params"]["ImageId"] != "img-5ddkx3gh"]
    assert sorted(c["params"]["ImageId"] for c in sets) == sorted(copies.values())


def test_a_source_without_family_is_skipped(svc: Any, emulator: Any) -> None:
    svc.settings = svc.settings.model_copy(update={"hooks": [FamilyHook()]})
    replication = _copy("img-8c2rq9tw", "ap-shanghai")
    _finish(svc, emulator)
    [replica] = svc.store.get_replication(replication["id"]).replicas
    [run] = svc.store.hook_runs([replica.id])[replica.id]
    assert run.status == "skipped" and emulator.admin.calls(action="ModifyImageAttribute") == []


def test_the_reconcile_pass_deprecates_the_copies_of_a_deprecated_source(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "none-match",
                "selector": {"source_regions": [GZ], "name_regex": "^nothing-"},
                "destinations": ["ap-shanghai"],
            }
        ],
    )
    replication = _copy("img-5ddkx3gh", "ap-shanghai", "ap-beijing")
    other = _copy("img-8c2rq9tw", "ap-shanghai")
    _finish(svc, emulator)
    report = status_sweep.main_handler(FORCE, {"time_limit_in_ms": 60000})["reconciled"]["deprecations"]
    assert report["sources_checked"] == 2 and report["copies_deprecated"] == []

    svc.admin().modify_image(GZ, "img-5ddkx3gh", deprecated=True)  # the source is deprecated later
    report = status_sweep.main_handler(FORCE, {"time_limit_in_ms": 60000})["reconciled"]["deprecations"]
    copies = _copies(svc, replication["id"])
    assert report["sources_deprecated"] == 1
    assert sorted(r["image_id"] for r in report["copies_deprecated"]) == sorted(copies.values())
    assert all(emulator.admin.image(i)["ImageDeprecated"] is True for i in copies.values())
    untouched = _copies(svc, other["id"])["ap-shanghai"]
    assert not emulator.admin.image(untouched)["ImageDeprecated"]
    trail = [a for a in svc.store.audit_trail(replication["id"]) if a["event"] == "copy_deprecated"]
    assert len(trail) == 2  # shown on the replication's audit trail

    again = status_sweep.main_handler(FORCE, {"time_limit_in_ms": 60000})["reconciled"]["deprecations"]
    assert again["copies_deprecated"] == [] and again["deferred"] == 0  # done once


def test_the_pass_is_bounded(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "none-match",
                "selector": {"source_regions": [GZ], "name_regex": "^nothing-"},
                "destinations": ["ap-shanghai"],
            }
        ],
        reconcile_limit=1,
    )
    _copy("img-5ddkx3gh", "ap-shanghai", "ap-beijing")
    _finish(svc, emulator)
    svc.admin().modify_image(GZ, "img-5ddkx3gh", deprecated=True)
    first = status_sweep.main_handler(FORCE, {"time_limit_in_ms": 60000})["reconciled"]["deprecations"]
    assert len(first["copies_deprecated"]) == 1 and first["deferred"] == 1
    second = status_sweep.main_handler(FORCE, {"time_limit_in_ms": 60000})["reconciled"]["deprecations"]
    assert len(second["copies_deprecated"]) == 1 and second["deferred"] == 0


def test_retention_keeps_the_newest_copies_per_family_and_region(svc: Any, emulator: Any) -> None:
    svc.settings = svc.settings.model_copy(
        update={"hooks": [FamilyHook(), RetentionHook(keep=1, per="family", dry_run=False)]}
    )
    for image_id in ("img-5ddkx3gh", "img-8c2rq9tw"):
        svc.admin().modify_image(GZ, image_id, family="web-base")
    first = _copy("img-5ddkx3gh", "ap-shanghai")
    _finish(svc, emulator)
    old = _copies(svc, first["id"])["ap-shanghai"]
    emulator.admin.advance(60)
    second = _copy("img-8c2rq9tw", "ap-shanghai")
    _finish(svc, emulator)
    new = _copies(svc, second["id"])["ap-shanghai"]
    assert new != old
    [replica] = svc.store.get_replication(second["id"]).replicas
    runs = {h.hook_key: h for h in svc.store.hook_runs([replica.id])[replica.id]}
    assert runs["retention"].status == "done", runs["retention"]
    assert runs["retention"].result["family"] == "web-base"
    assert runs["retention"].result["kept"] == [new] and runs["retention"].result["deleted"] == [old]
    assert emulator.admin.image(old) is None and emulator.admin.image(new) is not None

"""The rules' reconcile pass in the sweep, on the emulator (official SDK), SQLite and the local queue: a missed
event, failed copies, the per-run limit, the window, images imagesync copied, refusals and paging."""

from __future__ import annotations

from typing import Any

import pytest

from imagesync.handlers import status_sweep
from tests.conftest import load_event
from tests.integration.test_events import GZ, create_image, replications, use_rules

FORCE = load_event("timer/force_reconcile.json")


def sweep(event: dict[str, Any] | None = None) -> dict[str, Any]:
    return status_sweep.main_handler(event or FORCE, {"time_limit_in_ms": 60000})


@pytest.fixture
def svc(services: Any, emulator: Any) -> Any:
    emulator.admin.set_time_scale(0)
    return services


def listings(emulator: Any) -> list[dict[str, Any]]:
    """The reconcile pass's DescribeImages calls (by filters; not the starter's look-ups by name)."""
    return [
        c
        for c in emulator.admin.calls(action="DescribeImages")
        if c["params"].get("Filters") and "Offset" in c["params"]
    ]


def pairs(svc: Any) -> list[tuple[str, str, str]]:
    return sorted(
        (r.source_image_id, r.destination_region, r.state.value) for rep in replications(svc) for r in rep.replicas
    )


def test_a_missed_event_is_caught_by_the_reconcile_pass(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "releases",
                "selector": {"source_regions": [GZ], "name_regex": "^release-"},
                "destinations": ["ap-shanghai"],
            }
        ],
    )
    image_id = create_image(svc, "release-missed")  # no event delivered
    report = sweep()["reconciled"]
    assert report["ran"] and [r["image_id"] for r in report["requested"]] == [image_id]
    assert report["skipped"] == {"state_CREATEFAILED": 1}  # broken-build; the rest simply do not match
    [replication] = replications(svc)
    assert replication.origin.value == "rule" and replication.rule == "releases"
    assert replication.requested_by == "rule:releases"
    assert pairs(svc) == [(image_id, "ap-shanghai", "WAITING_SOURCE")]

    assert sweep()["reconciled"]["requested"] == []  # in flight: nothing new
    emulator.admin.advance(6 * 60)
    sweep()
    emulator.admin.advance(45 * 60)
    sweep()
    assert pairs(svc) == [(image_id, "ap-shanghai", "SUCCEEDED")]
    emulator.admin.clear_calls()
    assert sweep()["reconciled"]["requested"] == []  # copied: nothing new
    assert emulator.admin.calls(action="SyncImages") == []


def test_tag_selectors_filter_server_side_and_exactly(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "web",
                "selector": {"source_regions": [GZ], "tags": {"team": "web"}, "tag_keys": ["env"]},
                "destinations": ["ap-shanghai", "ap-beijing"],
            }
        ],
    )
    emulator.admin.clear_calls()
    report = sweep()["reconciled"]
    assert [(r["image_id"], r["destinations"]) for r in report["requested"]] == [
        ("img-5ddkx3gh", ["ap-shanghai", "ap-beijing"])
    ]
    [listing] = listings(emulator)
    names = {f["Name"]: f["Values"] for f in listing["params"]["Filters"]}
    assert names == {"image-type": ["PRIVATE_IMAGE"], "tag:team": ["web"], "tag-key": ["env"]}


def test_family_selector(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "golden",
                "selector": {"source_regions": [GZ], "image_family": "golden"},
                "destinations": ["ap-nanjing"],
            }
        ],
    )
    golden = create_image(svc, "golden-1", ImageFamily="golden")
    create_image(svc, "silver-1", ImageFamily="silver")
    assert [r["image_id"] for r in sweep()["reconciled"]["requested"]] == [golden]


def test_failed_copies_are_requested_again(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "web",
                "selector": {"source_regions": [GZ], "name_glob": "web-base-*"},
                "destinations": ["ap-shanghai"],
            }
        ],
    )
    emulator.admin.set_copy_failure_rate(1.0)
    assert len(sweep()["reconciled"]["requested"]) == 1
    emulator.admin.advance(45 * 60)
    sweep(load_event("timer/skip_reconcile_small_batch.json"))
    assert pairs(svc) == [("img-5ddkx3gh", "ap-shanghai", "FAILED")]
    emulator.admin.set_copy_failure_rate(0.0)
    plan = svc.rule_engine().plan()
    assert [(p["image_id"], p["reason"]) for p in plan["plan"]] == [("img-5ddkx3gh", "failed before")]
    assert len(sweep()["reconciled"]["requested"]) == 1
    assert [p[2] for p in pairs(svc)] == ["COPYING", "FAILED"]


def test_the_limit_bounds_each_run(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "all",
                "selector": {"source_regions": [GZ], "name_regex": "^(web|api|nightly)-"},
                "destinations": ["ap-shanghai", "ap-beijing"],
            }
        ],
        reconcile_limit=4,
    )
    first = sweep()["reconciled"]
    assert sum(len(r["destinations"]) for r in first["requested"]) == 4 and first["deferred"] == 2
    second = sweep()["reconciled"]
    assert sum(len(r["destinations"]) for r in second["requested"]) == 2 and second["deferred"] == 0
    assert len(pairs(svc)) == 6
    assert sweep()["reconciled"]["requested"] == []


def test_a_request_larger_than_the_limit_is_trimmed_not_starved(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [
            {
                "name": "web",
                "selector": {"source_regions": [GZ], "name_glob": "web-*"},
                "destinations": ["ap-shanghai", "ap-beijing", "ap-nanjing"],
            }
        ],
        reconcile_limit=2,
    )
    report = sweep()["reconciled"]
    assert [r["destinations"] for r in report["requested"]] == [["ap-shanghai", "ap-beijing"]]
    assert report["deferred"] == 1


def test_refusals_are_reported_without_using_the_limit(svc: Any, emulator: Any) -> None:
    use_rules(
        svc,
        [{"name": "all", "selector": {"source_regions": [GZ]}, "destinations": ["ap-shanghai"]}],
        reconcile_limit=10,
    )
    report = sweep()["reconciled"]
    refused = {r["image_id"]: r["code"] for r in report["refused"]}
    assert refused == {"img-2hxv7lqe": "Image.TooLarge"}  # bigdata-node, 80 GB
    assert {r["image_id"] for r in report["requested"]} == {"img-5ddkx3gh", "img-8c2rq9tw", "img-9fjm4wza"}
    assert "img-2hxv7lqe" not in {p[0] for p in pairs(svc)}


def test_copies_imagesync_made_are_never_sources(svc: Any, emulator: Any) -> None:
    both_ways = [
        {
            "name": "mirror",
            "selector": {"source_regions": [GZ, "ap-shanghai"], "name_glob": "web-*"},
            "destinations": [GZ, "ap-shanghai"],
        }
    ]
    use_rules(svc, both_ways)
    assert len(sweep()["reconciled"]["requested"]) == 1
    emulator.admin.advance(45 * 60)
    sweep(load_event("timer/skip_reconcile_small_batch.json"))
    [(source, _, state)] = pairs(svc)
    assert state == "SUCCEEDED"
    report = sweep()["reconciled"]
    assert report["requested"] == [] and report["skipped"].get("made_by_imagesync") == 1


def test_listing_pages_by_100(svc: Any, emulator: Any) -> None:
    for i in range(130):
        emulator.admin.add_image(GZ, name=f"bulk-{i:03d}", size=10)
    use_rules(
        svc,
        [
            {
                "name": "bulk",
                "selector": {"source_regions": [GZ], "name_glob": "bulk-*"},
                "destinations": ["ap-shanghai"],
            }
        ],
        reconcile_limit=5,
    )
    emulator.admin.clear_calls()
    report = sweep()["reconciled"]
    assert report["listed"] == 135 and report["candidates"] == 130 and len(report["requested"]) == 5
    offsets = [c["params"].get("Offset") for c in listings(emulator)]
    assert offsets == [0, 100]


def test_bad_rules_never_stop_the_sweep(svc: Any, emulator: Any, tmp_path: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: x\n    destinations: [ap-shanghai]\n")
    svc.settings = svc.settings.model_copy(update={"rules_file": str(path)})
    report = sweep()
    assert report["reconciled"]["ran"] is False and report["reconciled"]["error"]["code"] == "Rules.Invalid"
    assert "selector: Field required" in report["reconciled"]["error"]["message"]
    assert report["published"] == 0  # the rest of the sweep ran


def test_a_rule_to_all_mainland_copies_into_every_live_mainland_region(svc: Any, emulator: Any) -> None:
    """Destination keywords in rules (issue 14, item 2): resolved per request from DescribeRegions."""
    use_rules(
        svc,
        [
            {
                "name": "everywhere",
                "selector": {"source_regions": [GZ], "name_regex": "^release-"},
                "destinations": ["all-mainland"],
            }
        ],
    )
    image_id = create_image(svc, "release-all")
    report = sweep()["reconciled"]
    live = svc.images.available_regions()
    expected = [r for r in ["ap-beijing", "ap-chengdu", "ap-chongqing", "ap-nanjing", "ap-shanghai"] if r in live]
    assert [(r["image_id"], r["destinations"]) for r in report["requested"]] == [(image_id, expected)]
    [replication] = replications(svc)
    assert replication.requested_destinations == ["all-mainland"] and replication.destination_regions == expected
    assert sweep()["reconciled"]["requested"] == []  # every resolved region is in flight: nothing new

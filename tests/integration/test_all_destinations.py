"""Destination keywords (issue 14, item 2): `all`, `all-mainland`, `all-overseas` resolved at request time from
the region service's live list (the emulator's DescribeRegions), through the HTTP API on SQLite."""

from __future__ import annotations

from typing import Any

from tests.integration.test_http_api import invoke, url_event

MAINLAND_BUT_GUANGZHOU = ["ap-beijing", "ap-chengdu", "ap-chongqing", "ap-nanjing", "ap-shanghai"]


def _body(*destinations: str, **extra: Any) -> dict[str, Any]:
    return {
        "source_region": "ap-guangzhou",
        "image_ids": ["img-5ddkx3gh"],
        "destination_regions": list(destinations),
        **extra,
    }


def test_all_mainland_resolves_to_the_live_mainland_regions_but_the_source(services: Any, emulator: Any) -> None:
    live = services.images.available_regions()
    status, _, body = invoke(url_event("POST", "/replications", _body("all-mainland")))
    assert status == 202, body
    expected = [r for r in MAINLAND_BUT_GUANGZHOU if r in live]
    assert expected and body["destination_regions"] == expected
    assert body["requested_destinations"] == ["all-mainland"]
    assert sorted(r["destination_region"] for r in body["replicas"]) == expected
    [sync] = emulator.admin.calls(action="SyncImages")
    assert sorted(sync["params"]["DestinationRegions"]) == expected
    # recorded: the stored replication says what was asked and what it resolved to
    status, _, stored = invoke(url_event("GET", f"/replications/{body['id']}"))
    assert (stored["requested_destinations"], stored["destination_regions"]) == (["all-mainland"], expected)
    [requested] = [a for a in services.store.audit_trail(body["id"]) if a["event"] == "requested"]
    assert requested["detail"]["asked"] == ["all-mainland"]


def test_all_leaves_out_what_the_copy_rules_refuse_unless_cross_border_is_approved(
    services: Any, emulator: Any
) -> None:
    live = services.images.available_regions()
    status, _, body = invoke(url_event("POST", "/replications", _body("all", dry_run=True)))
    assert status == 200, body
    assert body["destination_regions"] == [r for r in MAINLAND_BUT_GUANGZHOU if r in live]  # no cross-border
    assert body["requested_destinations"] == ["all"]

    services.settings = services.settings.model_copy(update={"cross_border_allowed": True})
    emulator.admin.approve_cross_border("100000000001")  # as Tencent does for the account after the ticket
    status, _, body = invoke(url_event("POST", "/replications", _body("all", dry_run=True)))
    assert status == 200, body
    resolved = set(body["destination_regions"])
    assert "ap-guangzhou" not in resolved and "ap-taipei" not in resolved
    assert not any(r.endswith("-fsi") for r in resolved)  # finance zones: only from a finance zone
    assert {"ap-singapore", "ap-shanghai"} <= resolved


def test_all_overseas_without_approval_leaves_nothing_and_says_why(services: Any, emulator: Any) -> None:
    status, _, body = invoke(url_event("POST", "/replications", _body("all-overseas")))
    assert (status, body["error"]["code"]) == (422, "Region.NoneLeft")
    left_out = body["error"]["details"]["left_out"]
    assert left_out["ap-singapore"] == "Region.CrossBorderNotAllowed"
    assert emulator.admin.calls(action="SyncImages") == []


def test_keyword_and_explicit_region_together_and_bad_keywords(services: Any, emulator: Any) -> None:
    status, _, body = invoke(url_event("POST", "/replications", _body("ap-shanghai", "all-mainland", dry_run=True)))
    assert status == 200 and body["destination_regions"][0] == "ap-shanghai"
    assert body["destination_regions"].count("ap-shanghai") == 1
    # an explicit region is checked as always, keyword or not
    status, _, body = invoke(url_event("POST", "/replications", _body("ap-tokyo", "all-mainland")))
    assert (status, body["error"]["code"]) == (422, "Region.CrossBorderNotAllowed")
    status, _, body = invoke(url_event("POST", "/replications", _body("all-europe")))
    assert (status, body["error"]["code"]) == (400, "InvalidRequest")

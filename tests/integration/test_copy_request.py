"""copy_request's handler in-process against the emulator and SQLite: the happy path and every validation error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagesync.handlers import copy_request
from tests.conftest import load_event


def _post(body: dict[str, Any], template: str = "http/function_url_create_replication.json") -> tuple[int, Any]:
    event = load_event(template)
    event["body"] = json.dumps(body)
    response = copy_request.main_handler(event, {"request_id": "test", "time_limit_in_ms": 30000})
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_function_url_event_starts_copies(services: Any, emulator: Any) -> None:
    response = copy_request.main_handler(load_event("http/function_url_create_replication.json"), {})
    assert response["statusCode"] == 202
    body = json.loads(response["body"])
    assert body["state"] == "COPYING"
    assert {(r["source_image_id"], r["destination_region"]) for r in body["replicas"]} == {
        ("img-5ddkx3gh", "ap-shanghai"),
        ("img-5ddkx3gh", "ap-beijing"),
        ("img-8c2rq9tw", "ap-shanghai"),
        ("img-8c2rq9tw", "ap-beijing"),
    }
    # one SyncImages per image, with all its regions and ImageSetRequired
    syncs = emulator.admin.calls(action="SyncImages")
    assert len(syncs) == 2
    assert all(sorted(c["params"]["DestinationRegions"]) == ["ap-beijing", "ap-shanghai"] for c in syncs)
    # each destination id exists in its region, SYNCING, with the source's name
    for replica in body["replicas"]:
        image = emulator.admin.image(replica["destination_image_id"])
        assert image["ImageState"] == "SYNCING"
        assert image["Region"] == replica["destination_region"]
        assert image["ImageName"] == replica["image_name"]
    stored = services.store.get_replication(body["id"])
    assert [r.state.value for r in stored.replicas] == ["COPYING"] * 4


def test_legacy_api_gateway_event_and_waiting_source(services: Any, emulator: Any) -> None:
    response = copy_request.main_handler(load_event("http/apigw_create_replication.json"), {})
    assert response["statusCode"] == 202, response["body"]
    body = json.loads(response["body"])
    assert [r["state"] for r in body["replicas"]] == ["WAITING_SOURCE"]
    assert emulator.admin.calls(action="SyncImages") == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-singapore"]}, 422, "Region.CrossBorderNotAllowed"),
        ({"image_ids": ["img-2hxv7lqe"], "destination_regions": ["ap-shanghai"]}, 422, "Image.TooLarge"),
        ({"image_ids": ["img-487zeit5"], "destination_regions": ["ap-shanghai"]}, 422, "Image.NotCustom"),
        ({"image_ids": ["img-sh4red01"], "destination_regions": ["ap-shanghai"]}, 422, "Image.SharedOnlySameRegion"),
        ({"image_ids": ["img-0ldcr7ya"], "destination_regions": ["ap-shanghai"]}, 422, "Image.NotNormal"),
        ({"image_ids": ["img-zzzzzzzz"], "destination_regions": ["ap-shanghai"]}, 422, "Image.NotFound"),
        ({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-guangzhou"]}, 422, "Region.SameAsSource"),
        (
            {"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai-fsi"]},
            422,
            "Region.FinanceZoneIsolation",
        ),
        ({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-taipei"]}, 422, "Region.CannotCopy"),
        ({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["eu-moscow"]}, 422, "Region.Unknown"),
        ({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-beijing", "ap-beijing"]}, 400, "Region.Duplicate"),
        ({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-beijing"], "name": "n" * 61}, 400, "Name.TooLong"),
        (
            {"image_ids": [f"img-{i:08d}" for i in range(11)], "destination_regions": ["ap-beijing"]},
            400,
            "Request.TooManyItems",
        ),
        ({"image_ids": ["bogus"], "destination_regions": ["ap-beijing"]}, 400, "InvalidRequest"),
    ],
)
def test_validation_errors(services: Any, emulator: Any, body: dict[str, Any], status: int, code: str) -> None:
    got_status, answer = _post({"source_region": "ap-guangzhou", **body})
    assert (got_status, answer["error"]["code"]) == (status, code), answer
    assert emulator.admin.calls(action="SyncImages") == []
    assert services.store.list_replications()[0] == []


def test_malformed_json_is_400(services: Any) -> None:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = "{not json"
    response = copy_request.main_handler(event, {})
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "InvalidRequest"


def test_copy_already_in_flight_answers_the_existing_replication(services: Any, emulator: Any) -> None:
    first_status, first = _post(
        {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
    )
    assert first_status == 202
    status, answer = _post(
        {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
    )
    assert status == 409
    assert answer["error"]["code"] == "Replication.AlreadyInFlight"
    assert answer["replication"]["id"] == first["id"]
    assert len(emulator.admin.calls(action="SyncImages")) == 1


def test_dry_run_records_nothing(services: Any, emulator: Any) -> None:
    status, answer = _post(
        {
            "source_region": "ap-guangzhou",
            "image_ids": ["img-5ddkx3gh"],
            "destination_regions": ["ap-shanghai"],
            "dry_run": True,
        }
    )
    assert status == 200
    assert answer["dry_run"] is True
    calls = emulator.admin.calls(action="SyncImages")
    assert len(calls) == 1 and calls[0]["params"].get("DryRun") is True
    assert services.store.list_replications()[0] == []


@pytest.mark.slow  # the adapter retries the throttled SyncImages with real backoff sleeps (~5 s)
def test_retryable_failure_leaves_pending_for_the_sweep(services: Any, emulator: Any) -> None:
    emulator.admin.script_fault("SyncImages", 10, code="RequestLimitExceeded")
    status, answer = _post(
        {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
    )
    assert status == 202
    replica = answer["replicas"][0]
    assert replica["state"] == "PENDING"
    assert replica["error"]["code"] == "RequestLimitExceeded"


def test_final_cloud_failure_is_failed_with_its_code(services: Any, emulator: Any) -> None:
    emulator.admin.script_fault("SyncImages", 1, code="InvalidImageId.TooLarge")
    status, answer = _post(
        {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
    )
    assert status == 202
    replica = answer["replicas"][0]
    assert replica["state"] == "FAILED"
    assert replica["error"]["code"] == "InvalidImageId.TooLarge"
    assert len(services.store.pending_outbox()) == 1


def test_health(services: Any) -> None:
    response = copy_request.main_handler(load_event("http/function_url_health.json"), {})
    assert response["statusCode"] == 200


def test_idempotency_key_makes_one_replication(services: Any, emulator: Any) -> None:
    event = load_event("http/function_url_create_replication.json")
    event["headers"]["Idempotency-Key"] = "order-42"
    first = copy_request.main_handler(event, {})
    again = copy_request.main_handler(event, {})
    assert first["statusCode"] == again["statusCode"] == 202
    assert json.loads(first["body"])["id"] == json.loads(again["body"])["id"]
    assert len(services.store.list_replications()[0]) == 1
    assert len(emulator.admin.calls(action="SyncImages")) == 2  # one per image, once

    other = load_event("http/function_url_create_replication.json")
    other["headers"]["Idempotency-Key"] = "order-42"
    other["body"] = json.dumps(
        {"source_region": "ap-guangzhou", "image_ids": ["img-8c2rq9tw"], "destination_regions": ["ap-chengdu"]}
    )
    reused = copy_request.main_handler(other, {})
    assert reused["statusCode"] == 409
    assert json.loads(reused["body"])["error"]["code"] == "Idempotency.KeyReused"

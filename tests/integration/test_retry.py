"""Retry only what failed (issue 14, item 1): POST /replications/{id}/retry on the emulator and SQLite.

Copies are made to fail by the emulator (the destination image forced to CREATEFAILED, as a failed SyncImages copy
ends); the emulated clock is frozen and moved by the test, so nothing depends on the machine's speed. Every answer
is checked against the OpenAPI document by `invoke`.
"""

from __future__ import annotations

from typing import Any

from imagesync.handlers import status_sweep
from tests.conftest import load_event
from tests.integration.test_http_api import invoke, url_event

TIMER = load_event("timer/every_minute.json")
THREE = {
    "source_region": "ap-guangzhou",
    "image_ids": ["img-5ddkx3gh"],
    "destination_regions": ["ap-shanghai", "ap-beijing", "ap-chengdu"],
}


def _sweep() -> dict[str, Any]:
    return status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})


def _replication_with_failures(emulator: Any, failing: tuple[str, ...] = ("ap-beijing", "ap-chengdu")) -> dict:
    """A replication of one image into three regions whose copies into `failing` ended FAILED (Copy.Failed)."""
    status, _, created = invoke(url_event("POST", "/replications", THREE))
    assert status == 202
    for replica in created["replicas"]:
        if replica["destination_region"] in failing:
            emulator.admin.set_image_state(replica["destination_image_id"], "CREATEFAILED")
    emulator.admin.advance(45 * 60)
    _sweep()
    status, _, body = invoke(url_event("GET", f"/replications/{created['id']}"))
    states = {r["destination_region"]: r["state"] for r in body["replicas"]}
    assert states == {region: "FAILED" if region in failing else "SUCCEEDED" for region in THREE["destination_regions"]}
    assert body["state"] == "PARTIAL"
    return body


def test_retry_starts_new_attempts_for_failed_copies_only_and_keeps_the_history(services: Any, emulator: Any) -> None:
    first = _replication_with_failures(emulator)
    succeeded = next(r for r in first["replicas"] if r["state"] == "SUCCEEDED")
    emulator.admin.clear_calls()

    status, _, answer = invoke(url_event("POST", f"/replications/{first['id']}/retry"))  # no body: every failed one
    assert status == 202
    assert len(answer["started"]) == 2 and answer["running"] == []
    sync = emulator.admin.calls(action="SyncImages")
    assert sorted(r for c in sync for r in c["params"]["DestinationRegions"]) == ["ap-beijing", "ap-chengdu"]
    replicas = answer["replication"]["replicas"]
    assert len(replicas) == 5  # three first attempts (two failed, kept) and two new ones
    by_id = {r["id"]: r for r in replicas}
    for new_id in answer["started"]:
        new = by_id[new_id]
        old = by_id[new["retry_of"]]
        assert (old["state"], old["attempt"], old["retried_by"]) == ("FAILED", 1, new_id)
        assert old["error"]["code"] == "Copy.Failed"
        assert (new["state"], new["attempt"], new["retried_by"]) == ("COPYING", 2, None)
        assert new["destination_region"] == old["destination_region"]
    assert by_id[succeeded["id"]]["destination_image_id"] == succeeded["destination_image_id"]
    assert by_id[succeeded["id"]]["state"] == "SUCCEEDED" and by_id[succeeded["id"]]["retried_by"] is None
    assert answer["replication"]["state"] == "COPYING"  # the latest attempts count for the summary

    # a repeated call while the retries run starts nothing and answers what is running
    emulator.admin.clear_calls()
    status, _, again = invoke(url_event("POST", f"/replications/{first['id']}/retry", {}))
    assert status == 200
    assert again["started"] == [] and sorted(again["running"]) == sorted(answer["started"])
    assert emulator.admin.calls(action="SyncImages") == []

    emulator.admin.advance(45 * 60)
    _sweep()
    status, _, done = invoke(url_event("GET", f"/replications/{first['id']}"))
    assert done["state"] == "SUCCEEDED"
    assert sorted((r["destination_region"], r["attempt"], r["state"]) for r in done["replicas"]) == [
        ("ap-beijing", 1, "FAILED"),
        ("ap-beijing", 2, "SUCCEEDED"),
        ("ap-chengdu", 1, "FAILED"),
        ("ap-chengdu", 2, "SUCCEEDED"),
        ("ap-shanghai", 1, "SUCCEEDED"),
    ]
    trail = [a["event"] for a in services.store.audit_trail(first["id"])]
    assert trail.count("retried") == 1

    # nothing failed any more: nothing to retry
    status, _, refused = invoke(url_event("POST", f"/replications/{first['id']}/retry"))
    assert (status, refused["error"]["code"]) == (409, "Retry.NothingToRetry")


def test_retry_of_named_regions_and_replicas(services: Any, emulator: Any) -> None:
    first = _replication_with_failures(emulator)
    rid = first["id"]
    emulator.admin.clear_calls()
    status, _, answer = invoke(url_event("POST", f"/replications/{rid}/retry", {"regions": ["ap-beijing"]}))
    assert status == 202 and len(answer["started"]) == 1
    assert [c["params"]["DestinationRegions"] for c in emulator.admin.calls(action="SyncImages")] == [["ap-beijing"]]
    chengdu = next(r for r in answer["replication"]["replicas"] if r["destination_region"] == "ap-chengdu")
    assert chengdu["state"] == "FAILED" and chengdu["retried_by"] is None  # not named: untouched

    # naming the first attempt again (by replica id) answers the retry that runs for it
    old_beijing = next(r["id"] for r in first["replicas"] if r["destination_region"] == "ap-beijing")
    status, _, again = invoke(url_event("POST", f"/replications/{rid}/retry", {"replica_ids": [old_beijing]}))
    assert status == 200 and again["running"] == answer["started"] and again["started"] == []

    # a SUCCEEDED copy is never retried; a region not in the replication is refused
    status, _, body = invoke(url_event("POST", f"/replications/{rid}/retry", {"regions": ["ap-shanghai"]}))
    assert (status, body["error"]["code"]) == (409, "Retry.AlreadySucceeded")
    status, _, body = invoke(url_event("POST", f"/replications/{rid}/retry", {"regions": ["ap-nanjing"]}))
    assert (status, body["error"]["code"]) == (400, "Retry.NotInReplication")
    status, _, body = invoke(url_event("POST", f"/replications/{rid}/retry", {"replica_ids": ["rpl-nosuchreplic"]}))
    assert (status, body["error"]["code"]) == (400, "Retry.NotInReplication")
    status, _, body = invoke(url_event("POST", f"/replications/{rid}/retry", {"regions": "ap-beijing"}))
    assert (status, body["error"]["code"]) == (400, "InvalidRequest")
    status, _, body = invoke(url_event("POST", "/replications/rep-nosuchreplic/retry"))
    assert (status, body["error"]["code"]) == (404, "Replication.NotFound")
    assert len(emulator.admin.calls(action="SyncImages")) == 1  # none of the refused calls copied anything


def test_a_copy_still_in_its_first_attempt_is_refused(services: Any, emulator: Any) -> None:
    status, _, created = invoke(url_event("POST", "/replications", THREE))
    status, _, body = invoke(url_event("POST", f"/replications/{created['id']}/retry", {"regions": ["ap-beijing"]}))
    assert (status, body["error"]["code"]) == (409, "Retry.StillActive")
    status, _, body = invoke(url_event("POST", f"/replications/{created['id']}/retry"))
    assert (status, body["error"]["code"]) == (409, "Retry.NothingToRetry")


def test_timed_out_copies_are_retried(services: Any, emulator: Any) -> None:
    emulator.admin.set_copy_duration(10 * 3600, 10 * 3600)  # longer than IMAGESYNC_COPY_TIMEOUT_SECONDS
    status, _, created = invoke(url_event("POST", "/replications", {**THREE, "destination_regions": ["ap-beijing"]}))
    emulator.admin.advance(services.settings.copy_timeout_seconds + 600)
    _sweep()
    status, _, body = invoke(url_event("GET", f"/replications/{created['id']}"))
    assert [r["state"] for r in body["replicas"]] == ["TIMED_OUT"]
    emulator.admin.set_copy_duration(600, 600)
    emulator.admin.advance(11 * 3600)  # the first copy ends: the source is free again
    status, _, answer = invoke(url_event("POST", f"/replications/{created['id']}/retry"))
    assert status == 202 and len(answer["started"]) == 1


def test_idempotency_key_replays_the_first_answer(services: Any, emulator: Any) -> None:
    first = _replication_with_failures(emulator, ("ap-chengdu",))
    headers = {"idempotency-key": "retry-1"}
    path = f"/replications/{first['id']}/retry"
    one = invoke(url_event("POST", path, {}, headers))
    two = invoke(url_event("POST", path, {}, headers))
    assert one[0] == two[0] == 202 and one[2] == two[2]
    status, _, body = invoke(url_event("POST", path, {"regions": ["ap-chengdu"]}, headers))
    assert (status, body["error"]["code"]) == (409, "Idempotency.KeyReused")


def test_openapi_documents_the_retry_route(services: Any) -> None:
    status, _, document = invoke(url_event("GET", "/openapi.json"))
    operation = document["paths"]["/replications/{replication_id}/retry"]["post"]
    assert operation["operationId"] == "retryReplication"
    assert operation["requestBody"]["required"] is False
    assert {"200", "202", "400", "404", "409"} <= set(operation["responses"])
    assert {"RetryOut", "RetryBody"} <= set(document["components"]["schemas"])

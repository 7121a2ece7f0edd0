"""Pathological input through EVERY trigger's real handler, in-process on the emulator and SQLite (issue 11, items
1 and 2): the same generated table (tests/pathological.py) as an HTTP body (Function URL, API Gateway, base64), a
timer Message, a queue msgBody (CMQ, CKafka, EventBridge, local delivery, the local queue itself), an EventBridge
`data` and a CloudAudit requestParameters string; then values a runtime may already have decoded, in the event.

Each must end in the trigger's coded refusal -- 400 InvalidRequest (413 for a body over the limit), a rejected
record (acknowledged, never retried), an invalid event, the sweep's defaults with `options_error` -- and leave
nothing recorded: no table row, no cloud call.

One test per trigger shape runs the whole table through it (`each`: every case runs, a failure names each case
that failed), so the ~350 cases cost one set of fixtures per shape, not one each: they stay in `make check`.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from sqlalchemy import func, select

from imagesync.adapters.queues.local import LocalQueue
from imagesync.adapters.sql import schema
from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.local import deliver
from tests.conftest import load_event
from tests.pathological import BYTES, TEXTS, TIMER_DEEP, VALUES, deep_list, nested_arrays

CONTEXT = {"request_id": "pathological", "time_limit_in_ms": 30000}
BIG = {"enormous string"}  # refused by size: 413 over HTTP (the API's 64 KB), the loaders' 1 MiB elsewhere


def each(cases: Mapping[str, Any], check: Callable[[str, Any], None]) -> None:
    """`check(name, case)` on every case of the table; one failure at the end naming every case that failed."""
    failures = []
    for name, case in cases.items():
        try:
            check(name, case)
        except AssertionError as exc:
            failures.append(f"{name}: {str(exc)[:400]}")
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


def recorded(services: Any) -> dict[str, int]:
    """Rows in every table of the state table that records what was asked (replications, replicas, outbox, audit,
    idempotency, hook_runs): not `leases`, whose one row any sweep takes and gives back."""
    with services.store.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in schema.TABLES
            if t is not schema.leases
        }


def nothing_recorded(services: Any, emulator: Any) -> None:
    assert set(recorded(services).values()) == {0}, recorded(services)
    assert emulator.admin.calls(service="cvm") == [] and emulator.admin.calls(service="tag") == []


def call(handler: Any, event: Any) -> Any:
    return handler.main_handler(event, dict(CONTEXT))


def http_answer(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = call(copy_request, event)
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}, response
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def assert_refused(status: int, body: dict[str, Any], name: str) -> None:
    expected = (413, "Request.TooLarge") if name in BIG else (400, "InvalidRequest")
    assert (status, body["error"]["code"]) == expected, body
    assert body["error"]["message"] and "request_id" not in body["error"]  # a refusal, not a logged 500


# ------------------------------------------------------------------------------------------------ copy_request HTTP


def function_url(body: str) -> dict[str, Any]:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = body
    return event


def api_gateway(body: str) -> dict[str, Any]:
    event = load_event("http/apigw_create_replication.json")
    event["body"] = body
    return event


def base64_body(raw: bytes) -> dict[str, Any]:
    event = load_event("http/function_url_create_replication_base64.json")
    event["body"] = base64.b64encode(raw).decode()
    return event


@pytest.mark.parametrize("shape", ["function_url", "api_gateway", "base64"])
def test_http_body_is_refused_with_400(services: Any, emulator: Any, shape: str) -> None:
    def check(name: str, text: str) -> None:
        if shape == "base64":
            if "surrogate raw" in name:  # a lone surrogate has no UTF-8 bytes: sent raw, it is the event's problem
                return
            event = base64_body(text.encode("utf-8"))
        else:
            event = function_url(text) if shape == "function_url" else api_gateway(text)
        status, body = http_answer(event)
        assert_refused(status, body, name)

    each(TEXTS, check)
    nothing_recorded(services, emulator)


def test_http_base64_body_that_is_not_utf8_is_refused_with_400(services: Any, emulator: Any) -> None:
    def check(name: str, raw: bytes) -> None:
        status, body = http_answer(base64_body(raw))
        assert_refused(status, body, name)
        assert "UTF-8" in body["error"]["message"]

    each(BYTES, check)
    nothing_recorded(services, emulator)


@pytest.mark.parametrize("where", ["header", "query", "path", "body object"])
def test_http_event_holding_a_pathological_value_is_refused_with_400(services: Any, emulator: Any, where: str) -> None:
    def check(name: str, value: Any) -> None:
        event = function_url(
            json.dumps(
                {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
            )
        )
        if where == "header":
            event["headers"]["x-extra"] = value
        elif where == "query":
            event["queryString"] = {"state": value}
        elif where == "path":
            if not isinstance(value, str):
                event["requestContext"]["path"] = value
            else:
                event["path"] = "/replications/" + value
        else:
            event["body"] = {"source_region": value}  # a trigger that decoded the body into an object
        status, body = http_answer(event)
        assert (status, body["error"]["code"]) == (400, "InvalidRequest"), body

    each(VALUES, check)
    nothing_recorded(services, emulator)


def test_a_huge_or_non_integer_query_number_is_400(services: Any, emulator: Any) -> None:
    def check(_: str, limit: str) -> None:
        event = load_event("http/function_url_list_replications.json")
        event["queryString"] = event["queryStringParameters"] = {"limit": limit}
        status, body = http_answer(event)
        assert (status, body["error"]["code"]) == (400, "InvalidRequest")
        assert body["error"]["details"]["fields"][0]["field"] == "query.limit"

    each(
        {
            "5,000 digits": "9" * 5_000,
            "20 digits": "1" * 20,
            "huge exponent": "1e999999",
            "NaN": "NaN",
            "Infinity": "-Infinity",
            "hex": "0x10",
            "fraction": "1.5",
        },
        check,
    )


def test_idempotency_key_out_of_bounds_is_400_not_a_database_error(services: Any, emulator: Any) -> None:
    def check(_: str, key: str) -> None:
        event = function_url(
            json.dumps(
                {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
            )
        )
        event["headers"]["idempotency-key"] = key
        status, body = http_answer(event)
        assert (status, body["error"]["code"]) == (400, "InvalidRequest"), body

    each(
        {
            "201 chars": "k" * 201,
            "surrogate": "order-\ud800",
            "NUL": "order-\x00",
            "newline": "order\n42",
            "non-ASCII": "émoji-🙂",
        },
        check,
    )
    nothing_recorded(services, emulator)


def test_a_client_address_longer_than_the_audit_trail_holds_is_400(services: Any, emulator: Any) -> None:
    event = function_url(
        json.dumps(
            {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
        )
    )
    event["headers"]["x-scf-remote-addr"] = "1" * 201
    status, body = http_answer(event)
    assert (status, body["error"]["code"]) == (400, "InvalidRequest")
    assert "x-scf-remote-addr" in body["error"]["message"]
    nothing_recorded(services, emulator)


def test_idempotency_key_of_200_printable_characters_is_accepted(services: Any, emulator: Any) -> None:
    event = function_url(
        json.dumps(
            {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
        )
    )
    event["headers"]["idempotency-key"] = "k" * 199 + "~"
    assert http_answer(event)[0] == 202
    assert http_answer(event)[0] == 202  # the same answer again, from the idempotency record
    assert recorded(services)["replications"] == 1


# ------------------------------------------------------------------------------------------- copy_request EventBridge


AUDIT = load_event("eventbridge/cloudaudit_create_image.json")


def audit_event(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(AUDIT)
    data = changes.pop("data", None)
    event.update(changes)
    if data is not None:
        event["data"] = data
    return event


def invalid_outcomes(answer: dict[str, Any], count: int = 1) -> list[dict[str, Any]]:
    outcomes = answer["events"]
    assert len(outcomes) == count and all(o["status"] == "invalid" for o in outcomes), outcomes
    assert all(o["code"] == "Event.Invalid" and o["error"] for o in outcomes), outcomes
    return outcomes


@pytest.fixture
def with_rules(services: Any, tmp_path: Any) -> Any:
    """A rule that copies every new image in ap-guangzhou: a CreateImage event that got through would record."""
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "rules": [
                    {"name": "all", "selector": {"source_regions": ["ap-guangzhou"]}, "destinations": ["ap-shanghai"]}
                ]
            }
        )
    )
    services.settings = services.settings.model_copy(update={"rules_file": str(rules)})
    services.extras.pop("rules", None)
    return services


@pytest.mark.parametrize("field", ["data", "requestParameters"])
def test_eventbridge_text_is_an_invalid_event(with_rules: Any, emulator: Any, field: str) -> None:
    def check(_: str, text: str) -> None:
        if field == "data":
            event = audit_event(data=text)
        else:
            event = audit_event(data={**AUDIT["data"], "requestParameters": text})
        invalid_outcomes(call(copy_request, event))
        other = audit_event(id="evt-other", data={**AUDIT["data"], "eventName": "RunInstances"})
        answer = call(copy_request, {"EventList": [event, other]})  # one bad event never hides another
        outcomes = [(o["id"], o["status"]) for o in answer["events"]]
        assert outcomes == [(AUDIT["id"], "invalid"), ("evt-other", "ignored")], outcomes

    each(TEXTS, check)
    nothing_recorded(with_rules, emulator)


@pytest.mark.parametrize("where", ["data", "time", "id", "resources"])
def test_eventbridge_event_holding_a_pathological_value_is_invalid(with_rules: Any, emulator: Any, where: str) -> None:
    def check(_: str, value: Any) -> None:
        if where == "data":
            event = audit_event(data={**AUDIT["data"], "requestParameters": {"ImageName": value}})
        elif where == "resources":
            event = audit_event(data={**AUDIT["data"], "resources": value})
        else:
            event = audit_event(**{where: value})
        invalid_outcomes(call(copy_request, event))

    each(VALUES, check)
    nothing_recorded(with_rules, emulator)


def test_eventbridge_id_too_long_for_an_idempotency_key_is_invalid(with_rules: Any, emulator: Any) -> None:
    invalid_outcomes(call(copy_request, audit_event(id="e" * 201)))
    nothing_recorded(with_rules, emulator)


def test_cloudaudit_caller_longer_than_the_audit_trail_holds_is_invalid(with_rules: Any, emulator: Any) -> None:
    identity = {**AUDIT["data"]["userIdentity"], "userName": "u" * 200}
    invalid_outcomes(call(copy_request, audit_event(data={**AUDIT["data"], "userIdentity": identity})))
    nothing_recorded(with_rules, emulator)


# -------------------------------------------------------------------------------------------------- status_sweep


def timer(message: Any) -> dict[str, Any]:
    event = load_event("timer/every_minute.json")
    event["Message"] = message
    return event


def swept_with_defaults(report: dict[str, Any]) -> dict[str, Any]:
    assert {"claimed", "outcomes", "published"} <= set(report), report
    problem = report["options_error"]
    assert problem["code"] == "Event.Invalid" and problem["message"], problem
    json.dumps(report).encode("utf-8")  # the report (logged, returned to SCF) encodes: no lone surrogate in it
    return problem


def test_timer_message_falls_back_to_the_defaults(services: Any, emulator: Any) -> None:
    def check(_: str, text: str) -> None:
        swept_with_defaults(call(status_sweep, timer(text)))

    each(TEXTS, check)
    nothing_recorded(services, emulator)


@pytest.mark.parametrize("where", ["Message", "TriggerName", "extra"])
def test_timer_event_holding_a_pathological_value_falls_back_to_the_defaults(
    services: Any, emulator: Any, where: str
) -> None:
    def check(_: str, value: Any) -> None:
        event = timer("")
        event[where] = value
        swept_with_defaults(call(status_sweep, event))

    each(VALUES, check)
    nothing_recorded(services, emulator)


def test_any_other_event_runs_the_sweep_with_the_defaults(services: Any) -> None:
    def check(_: str, event: Any) -> None:
        report = call(status_sweep, event)
        assert {"claimed", "outcomes", "published"} <= set(report) and "options_error" not in report, report

    each(
        {
            "deep list": deep_list(),
            "string": "x" * 100,
            "huge int": 10**30,
            "list of timer": [load_event("timer/every_minute.json")],
            "deep Type": {"Type": deep_list()},
        },
        check,
    )


def test_a_4kb_nested_message_still_tracks_the_copies_in_flight(services: Any, emulator: Any) -> None:
    """Issue 11 item 2: the trigger with that Message used to raise RecursionError, so no copy was ever tracked."""
    message = nested_arrays(TIMER_DEEP)
    assert len(message) == 4096
    event = function_url(
        json.dumps(
            {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
        )
    )
    assert http_answer(event)[0] == 202
    emulator.admin.advance(45 * 60)  # the copy (10-30 emulated minutes) has ended
    report = call(status_sweep, timer(message))
    assert "nested deeper than 64 levels" in swept_with_defaults(report)["message"]
    assert report["outcomes"] == {"SUCCEEDED": 1} and report["published"] == 1


# ----------------------------------------------------------------------------------------------- completion_hook

GOOD_BODY = load_event("queue/cmq_queue_completion.json")["Records"][0]["CMQ"]["msgBody"]


def cmq(*bodies: Any) -> dict[str, Any]:
    template = load_event("queue/cmq_queue_completion.json")["Records"][0]["CMQ"]
    return {"Records": [{"CMQ": {**template, "msgId": f"m{i}", "msgBody": b}} for i, b in enumerate(bodies)]}


def ckafka(*bodies: Any) -> dict[str, Any]:
    template = load_event("queue/ckafka_completion.json")["Records"][0]["Ckafka"]
    return {"Records": [{"Ckafka": {**template, "offset": i, "msgBody": b}} for i, b in enumerate(bodies)]}


def eventbridge(*bodies: Any) -> dict[str, Any]:
    template = load_event("queue/eventbridge_completion.json")
    return {"EventList": [{**template, "id": f"evt-{i}", "data": b} for i, b in enumerate(bodies)]}


def scf_async(*bodies: Any) -> dict[str, Any]:
    """status_sweep's asynchronous invocation: messages as objects, or as JSON strings holding one."""
    return {"source": "imagesync.outbox", "messages": list(bodies)}


def local(body: Any) -> dict[str, Any]:
    return {**load_event("queue/local_delivery.json"), "body": body}


SHAPES = {"cmq": cmq, "ckafka": ckafka, "eventbridge": eventbridge, "scf_async": scf_async}


def rejected_only(answer: dict[str, Any], count: int = 1) -> None:
    assert answer["processed"] == 0 and answer["results"] == [], answer
    assert len(answer["rejected"]) == count, answer
    assert {r["code"] for r in answer["rejected"]} == {"Event.Invalid"} and all(r["error"] for r in answer["rejected"])
    json.dumps(answer).encode("utf-8")


@pytest.mark.parametrize("shape", ["cmq", "ckafka", "eventbridge", "scf_async", "local"])
def test_queue_body_is_a_rejected_record(services: Any, emulator: Any, shape: str) -> None:
    def check(_: str, text: str) -> None:
        event = local(text) if shape == "local" else SHAPES[shape](text)
        rejected_only(call(completion_hook, event))  # answered: the queue acknowledges it, never redelivers it

    each(TEXTS, check)
    nothing_recorded(services, emulator)


@pytest.mark.parametrize("shape", ["cmq", "ckafka", "eventbridge", "scf_async"])
def test_a_rejected_record_does_not_hide_a_good_one(services: Any, shape: str) -> None:
    answer = call(completion_hook, SHAPES[shape](TEXTS["deep arrays"], GOOD_BODY, TEXTS["lone surrogate escaped"]))
    assert answer["processed"] == 1 and len(answer["rejected"]) == 2, answer
    assert recorded(services)["idempotency"] == 1  # the good record's end, acted on once


@pytest.mark.parametrize("where", ["msgBody", "msgId", "msgTag", "extra"])
def test_queue_record_holding_a_pathological_value_is_rejected(services: Any, emulator: Any, where: str) -> None:
    def check(_: str, value: Any) -> None:
        event = cmq(GOOD_BODY)
        event["Records"][0]["CMQ"][where] = value
        rejected_only(call(completion_hook, event))

    each(VALUES, check)
    nothing_recorded(services, emulator)


@pytest.mark.parametrize("where", ["message_id", "replica_id", "extra"])
def test_async_invocation_message_holding_a_pathological_value_is_rejected(services: Any, where: str) -> None:
    def check(_: str, value: Any) -> None:
        message = {**json.loads(GOOD_BODY), where: value}
        answer = call(completion_hook, scf_async(message, GOOD_BODY))  # the good one (a JSON string) is processed
        assert answer["processed"] == 1 and [r["code"] for r in answer["rejected"]] == ["Event.Invalid"], answer

    each(VALUES, check)
    assert recorded(services)["idempotency"] == 1  # the good message's end, acted on once however often it came


def test_queue_delivery_that_is_pathological_as_a_whole_is_refused(services: Any, emulator: Any) -> None:
    def check(_: str, value: Any) -> None:
        for event in ({"Records": value}, {"Records": [value]}, {"EventList": [value]}, value):
            answer = call(completion_hook, event)
            assert answer["processed"] == 0 and answer["rejected"], answer
            assert {r["code"] for r in answer["rejected"]} == {"Event.Invalid"}, answer

    each(VALUES, check)
    nothing_recorded(services, emulator)


def test_completion_ids_the_state_table_cannot_hold_are_rejected(services: Any) -> None:
    def check(_: str, changes: dict[str, str]) -> None:
        rejected_only(call(completion_hook, cmq(json.dumps({**json.loads(GOOD_BODY), **changes}))))

    each(
        {"replica id of 33 characters": {"replica_id": "r" * 33}, "empty replication id": {"replication_id": ""}}, check
    )
    assert recorded(services)["idempotency"] == 0


def test_local_queue_delivers_a_pathological_body_once_and_acks_it(services: Any, tmp_path: Any) -> None:
    """The local queue's stored bodies go through the same envelope: rejected, acknowledged, not dead-lettered."""
    queue = LocalQueue(str(tmp_path / "q.db"), max_attempts=2)
    sent = 0
    for name in TEXTS:  # SQLite cannot store a lone surrogate; the queue refuses a body over 1 MB itself
        if "surrogate raw" not in name and name not in BIG:
            queue.send(TEXTS[name])
            sent += 1
    counts = deliver(queue, completion_hook.main_handler, max_messages=100)
    assert counts == {"delivered": sent, "failed": 0}
    assert queue.receive(10, 1) == [] and queue.dead_letters() == []
    assert recorded(services)["idempotency"] == 0


# ---------------------------------------------------------------------------------------------- imagesync invoke


def test_invoke_refuses_an_unreadable_event_file_with_exit_2(services: Any, emulator: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from imagesync.cli import app

    def check(name: str, text: str) -> None:
        if "surrogate raw" in name:  # no file holds one: UTF-8 cannot encode it
            return
        file = tmp_path / "event.json"
        file.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(app, ["invoke", "status_sweep", "--event", str(file)])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.exit_code, result.exception)
        assert "Event.Invalid" in result.stderr and str(file) in result.stderr.replace("\n", ""), result.stderr

    each({k: v for k, v in TEXTS.items() if k not in BIG}, check)  # 1 MB is a readable event file (SCF: 6 MB)
    nothing_recorded(services, emulator)

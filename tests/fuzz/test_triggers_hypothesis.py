"""Every trigger envelope through the real handlers, on arbitrary JSON and on the events/ files mutated.

The contract under test (docs: README "Events"): whatever SCF hands a function, it answers with a clean result --
handled, ignored with a reason, or rejected with a stable error code -- and raises only the two deliberate
redelivery signals (copy_request's EventsNotDone, completion_hook's DeliveryFailed), each naming what failed.
An HTTP event never gets a 5xx. Side effects are checked too: a mutated event never records more replications
than copy requests it answered 202 to or events it handled.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from imagesync.handlers import completion_hook, copy_request, status_sweep
from tests.conftest import EVENTS, load_event
from tests.fuzz.strategies import deep_json_texts, deep_values, json_objects, json_values, mutated

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "example-api-token"  # what the events/http/*.json files that carry credentials send
CONTEXT = {"request_id": "fuzz", "time_limit_in_ms": 30000}
SETTINGS = settings(
    max_examples=120, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def _events(kind: str) -> list[dict[str, Any]]:
    return [load_event(f"{kind}/{p.name}") for p in sorted((EVENTS / kind).glob("*.json"))]


def _codes_in(text: str) -> bool:
    """A failure reason names its cause: "Code.Sub: message" or an exception name (never empty)."""
    return bool(text.strip())


@pytest.fixture
def svc(services: Any) -> Any:
    """Services with the example rules (so CreateImage events reach the rule engine) and the API's auth on."""
    services.settings = services.settings.model_copy(
        update={
            "rules_file": str(ROOT / "examples" / "rules.yaml"),
            "api_auth": "required",
            "api_token": SecretStr(TOKEN),
        }
    )
    services.extras.pop("rules", None)
    return services


def check_copy_request(event: Any) -> dict[str, Any] | None:
    """copy_request on `event`: an HTTP answer below 500 with its code, events handled/ignored/invalid, an ignore,
    or EventsNotDone naming each event to retry. Returns the answer (None when redelivery was asked)."""
    try:
        answer = copy_request.main_handler(event, dict(CONTEXT))
    except copy_request.EventsNotDone as exc:
        assert exc.pending and all(p["id"] and _codes_in(p["error"]) for p in exc.pending), exc.pending
        return None
    assert isinstance(answer, dict)
    if "statusCode" in answer:
        assert answer["statusCode"] < 500, (event, answer)
        body = json.loads(answer["body"])
        if answer["statusCode"] >= 400:
            assert body["error"]["code"], body
    elif "events" in answer:
        for outcome in answer["events"]:
            assert outcome["id"] and outcome.get("status"), outcome
            if outcome["status"] in ("invalid", "failed"):
                assert _codes_in(outcome["error"]), outcome
    else:
        assert answer.get("ignored") is True and answer["reason"], answer
    return answer


def check_completion_hook(event: Any) -> None:
    try:
        answer = completion_hook.main_handler(event, dict(CONTEXT))
    except completion_hook.DeliveryFailed as exc:
        assert exc.failures and all(f["msg_id"] is not None and _codes_in(f["error"]) for f in exc.failures)
        return
    assert set(answer) >= {"processed", "results", "rejected"}, answer
    for rejected in answer["rejected"]:
        assert rejected.get("code") and _codes_in(rejected["error"]), rejected


def check_status_sweep(event: Any) -> None:
    report = status_sweep.main_handler(event, dict(CONTEXT))
    assert {"claimed", "outcomes", "published"} <= set(report), report
    if "options_error" in report:
        assert report["options_error"]["code"] == "Event.Invalid", report


def _recorded(services: Any) -> int:
    return len(services.store.list_replications(limit=100)[0])


def test_copy_request_on_mutated_and_arbitrary_events(svc: Any, emulator: Any) -> None:
    seeds = _events("http") + _events("eventbridge")
    accepted = 0

    @SETTINGS
    @given(event=st.sampled_from(seeds).flatmap(mutated) | json_objects)
    def run(event: Any) -> None:
        nonlocal accepted
        answer = check_copy_request(event)  # a mutation may turn the whole event into null, a list, a number
        if answer and answer.get("statusCode") == 202:
            accepted += 1

    run()
    # the side effect: HTTP replications only for the requests answered 202 (the rules' ones come from events)
    assert _recorded(svc) - _rule_requests(svc) <= accepted


def _rule_requests(services: Any) -> int:
    """Replications made by rules for CreateImage events (one event may make several: one per rule)."""
    return sum(1 for r in services.store.list_replications(limit=100)[0] if r.origin.value != "http")


def test_completion_hook_on_mutated_and_arbitrary_deliveries(svc: Any) -> None:
    seeds = _events("queue")

    @SETTINGS
    @given(event=st.sampled_from(seeds).flatmap(mutated) | json_objects)
    def run(event: Any) -> None:
        check_completion_hook(event)

    run()
    assert _recorded(svc) == 0  # completion messages never create replications


def test_status_sweep_on_mutated_and_arbitrary_timer_events(svc: Any, emulator: Any) -> None:
    seeds = _events("timer")

    @settings(SETTINGS, max_examples=60)
    @given(event=st.sampled_from(seeds).flatmap(mutated) | json_objects)
    def run(event: Any) -> None:
        check_status_sweep(event)

    run()
    assert _recorded(svc) <= _rule_requests(svc)  # the sweep's reconcile pass is the only writer here


@SETTINGS
@given(value=json_values)
def test_queue_envelope_never_raises_anything_but_invalid_event(value: Any) -> None:
    from imagesync.domain.models import CompletionMessage
    from imagesync.platform.envelopes import InvalidEvent, QueueEnvelope

    try:
        records = QueueEnvelope.parse(value, CompletionMessage)
    except InvalidEvent as exc:
        assert exc.code == "Event.Invalid"
        return
    for record in records:
        assert (record.value is None) != (record.error is None), record


# ---------------------------------------------------------------- deep nesting, through every trigger (issue 11)

DEEP = settings(SETTINGS, max_examples=80)
TEXT_TRIGGERS = [
    "function_url",
    "apigw_base64",
    "timer",
    "cmq",
    "ckafka",
    "eventbridge_queue",
    "scf_async",
    "local",
    "cloudaudit_data",
    "cloudaudit_request_parameters",
]
VALUE_TRIGGERS = [
    "http_header",
    "http_body_object",
    "timer_message",
    "cmq_msgbody",
    "cmq_msgid",
    "eventbridge_data",
    "cloudaudit_request_parameters",
    "eventbridge_queue_data",
    "scf_async_message",
]


def _refused_everywhere(trigger: str, event: Any) -> None:
    """`event` answered with its trigger's coded refusal: 400/413, options_error, a rejected record, an invalid
    CloudEvent."""
    if trigger.startswith(("function_url", "apigw", "http")):
        answer = copy_request.main_handler(event, dict(CONTEXT))
        code = json.loads(answer["body"])["error"]["code"]
        assert (answer["statusCode"], code) in ((400, "InvalidRequest"), (413, "Request.TooLarge")), answer
    elif trigger.startswith("timer"):
        report = status_sweep.main_handler(event, dict(CONTEXT))
        assert report["options_error"]["code"] == "Event.Invalid", report
    elif trigger.startswith("cloudaudit") or trigger == "eventbridge_data":
        answer = copy_request.main_handler(event, dict(CONTEXT))
        assert [(o["status"], o["code"]) for o in answer["events"]] == [("invalid", "Event.Invalid")], answer
    else:
        answer = completion_hook.main_handler(event, dict(CONTEXT))
        assert answer["processed"] == 0 and [r["code"] for r in answer["rejected"]] == ["Event.Invalid"], answer


def _http_event() -> dict[str, Any]:
    event = load_event("http/function_url_create_replication.json")
    event["headers"] = {**event["headers"], "authorization": f"Bearer {TOKEN}"}
    return event


def _event_with_text(trigger: str, text: str) -> Any:
    if trigger == "function_url":
        return {**_http_event(), "body": text}
    if trigger == "apigw_base64":
        return {
            **load_event("http/function_url_create_replication_base64.json"),
            "body": base64.b64encode(text.encode()).decode(),
        }
    if trigger == "timer":
        return {**load_event("timer/every_minute.json"), "Message": text}
    if trigger in ("cmq", "ckafka"):
        event = load_event(f"queue/{'cmq_queue' if trigger == 'cmq' else 'ckafka'}_completion.json")
        next(iter(event["Records"][0].values()))["msgBody"] = text
        return event
    if trigger == "eventbridge_queue":
        return {**load_event("queue/eventbridge_completion.json"), "data": text}
    if trigger == "local":
        return {**load_event("queue/local_delivery.json"), "body": text}
    if trigger == "scf_async":
        return {"source": "imagesync.outbox", "messages": [text]}
    audit = load_event("eventbridge/cloudaudit_create_image.json")
    if trigger == "cloudaudit_data":
        return {**audit, "data": text}
    return {**audit, "data": {**audit["data"], "requestParameters": text}}


def _event_with_value(trigger: str, value: Any) -> Any:
    if trigger.startswith("http"):
        event = _http_event()
        if trigger == "http_header":
            event["headers"] = {**event["headers"], "x-deep": value}
        else:
            event["body"] = value
        return event
    if trigger == "timer_message":
        return {**load_event("timer/every_minute.json"), "Message": value}
    if trigger.startswith("cmq"):
        event = load_event("queue/cmq_queue_completion.json")
        event["Records"][0]["CMQ"]["msgBody" if trigger == "cmq_msgbody" else "msgId"] = value
        return event
    if trigger == "eventbridge_queue_data":
        return {**load_event("queue/eventbridge_completion.json"), "data": value}
    if trigger == "scf_async_message":
        return {"source": "imagesync.outbox", "messages": [value]}
    audit = load_event("eventbridge/cloudaudit_create_image.json")
    if trigger == "eventbridge_data":
        return {**audit, "data": value}
    return {**audit, "data": {**audit["data"], "requestParameters": value}}


def test_deep_nesting_in_any_text_is_refused_by_every_trigger(svc: Any, emulator: Any) -> None:
    @DEEP
    @given(text=deep_json_texts(), trigger=st.sampled_from(TEXT_TRIGGERS))
    def run(text: str, trigger: str) -> None:
        _refused_everywhere(trigger, _event_with_text(trigger, text))

    run()
    assert _recorded(svc) == _rule_requests(svc)  # only the sweep's reconcile pass (the example rules) records


def test_deep_values_in_any_event_are_refused_by_every_trigger(svc: Any, emulator: Any) -> None:
    @DEEP
    @given(value=deep_values(), trigger=st.sampled_from(VALUE_TRIGGERS))
    def run(value: Any, trigger: str) -> None:
        _refused_everywhere(trigger, _event_with_value(trigger, value))

    run()
    assert _recorded(svc) == _rule_requests(svc)  # only the sweep's reconcile pass (the example rules) records


# ------------------------------------------------------------------------ what the fuzzing found, kept as examples

CMQ_MESSAGE = load_event("queue/cmq_queue_completion.json")["Records"][0]["CMQ"]
AUDIT_EVENT = load_event("eventbridge/cloudaudit_create_image.json")


@pytest.mark.parametrize(
    ("event", "rejected"),
    [
        (None, 1),
        ([], 1),
        (7, 1),  # not a JSON object: was an AttributeError
        ({"Records": [{"CMQ": {**CMQ_MESSAGE, "msgTag": False}}]}, 1),  # was a TypeError failing the whole delivery
        ({"Records": [{"CMQ": {**CMQ_MESSAGE, "msgTag": 3}}, {"CMQ": {**CMQ_MESSAGE, "msgTag": {"a": 1}}}]}, 2),
    ],
)
def test_completion_hook_rejects_what_used_to_crash_it(svc: Any, event: Any, rejected: int) -> None:
    # answered, not raised: the queue acknowledges a delivery that can never become valid instead of redelivering it
    answer = completion_hook.main_handler(event, dict(CONTEXT))
    assert answer["processed"] == 0 and len(answer["rejected"]) == rejected
    assert {r["code"] for r in answer["rejected"]} == {"Event.Invalid"}


@pytest.mark.parametrize(
    "event",
    [
        None,
        [AUDIT_EVENT],
        "CreateImage",  # not a JSON object: was an AttributeError
        {**AUDIT_EVENT, "time": 1e20},  # out of datetime's range: an OSError/OverflowError escaped pydantic
        {"EventList": [{**AUDIT_EVENT, "time": -1e17}, AUDIT_EVENT]},
    ],
)
def test_copy_request_answers_what_used_to_crash_it(svc: Any, emulator: Any, event: Any) -> None:
    answer = check_copy_request(event)
    if isinstance(event, dict) and answer is not None:
        invalid = [o for o in answer["events"] if o["status"] == "invalid"]
        assert invalid and all(o["code"] == "Event.Invalid" and "time" in o["error"] for o in invalid), answer
    elif answer is not None:
        assert answer["ignored"] is True
    assert emulator.admin.calls(action="SyncImages") == []


def test_cloudaudit_record_with_an_object_for_errorcode_is_unreadable_not_a_crash() -> None:
    from imagesync.platform.envelopes import CloudAuditRecord

    with pytest.raises(ValueError, match="errorCode"):  # pydantic's ValidationError is a ValueError
        CloudAuditRecord.model_validate({**AUDIT_EVENT["data"], "errorCode": []})

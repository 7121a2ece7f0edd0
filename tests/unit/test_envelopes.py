"""Trigger envelopes: every events/ file validates against its envelope; tolerant parsing of each documented
variant; one bad record never hides the others."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from imagesync.domain.models import CompletionMessage
from imagesync.handlers.status_sweep import SweepOptions
from imagesync.platform.envelopes import (
    CloudAuditRecord,
    EventBridgeEnvelope,
    InvalidEvent,
    QueueEnvelope,
    TimerEnvelope,
    epoch_or_iso,
)
from tests.conftest import EVENTS, load_event

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def _files(kind: str) -> list[str]:
    return sorted(f"{kind}/{p.name}" for p in (EVENTS / kind).glob("*.json"))


@pytest.mark.parametrize("name", _files("eventbridge"))
def test_every_eventbridge_file_validates(name: str) -> None:
    event = load_event(name)
    assert EventBridgeEnvelope.matches(event)
    items = EventBridgeEnvelope.events(event)
    assert items and all(i.ok for i in items), [i.error for i in items]
    for item in items:
        assert item.value is not None and item.value.time is not None
        if item.value.type.split(":")[1:2] == ["CloudEvent"]:
            CloudAuditRecord.model_validate(item.value.data)


@pytest.mark.parametrize("name", _files("timer"))
def test_every_timer_file_validates(name: str) -> None:
    event = load_event(name)
    assert TimerEnvelope.matches(event)
    if name.endswith("bad_message.json"):
        with pytest.raises(InvalidEvent) as caught:
            TimerEnvelope.parse(event, SweepOptions)
        assert caught.value.code == "Event.Invalid" and "Message" in caught.value.message
    else:
        assert isinstance(TimerEnvelope.parse(event, SweepOptions), SweepOptions)


@pytest.mark.parametrize("name", _files("queue"))
def test_every_queue_file_validates(name: str) -> None:
    records = QueueEnvelope.parse(load_event(name), CompletionMessage)
    good = [r for r in records if r.ok]
    if name.endswith("scf_async_two_messages.json"):  # status_sweep packs many messages into one invocation
        assert [r.value.replica_id for r in good] == ["rpl-demo00000001", "rpl-demo00000002"]  # type: ignore[union-attr]
        return
    assert good and all(r.value.replica_id == "rpl-demo00000001" for r in good)  # type: ignore[union-attr]
    if "bad_record" in name:
        assert [r.ok for r in records] == [True, False, False]
        assert "not JSON" in (records[1].error or "") or "json" in (records[1].error or "").lower()
        assert "replica_id" in (records[2].error or "")
    else:
        assert len(records) == len(good) == 1


def test_time_as_epoch_ms_number_or_string_or_iso() -> None:
    assert epoch_or_iso(1795694400000) == NOON
    assert epoch_or_iso("1795694400000") == NOON
    assert epoch_or_iso(1795694400) == NOON  # seconds
    assert epoch_or_iso("2026-11-26T12:00:00Z") == NOON
    assert epoch_or_iso("2026-11-26T12:00:00") == NOON
    assert epoch_or_iso(None) is None
    with pytest.raises(ValueError):
        epoch_or_iso("yesterday")


def test_subjuect_misspelling_and_string_data_and_batch() -> None:
    event = load_event("eventbridge/cloudaudit_create_image_console_subjuect.json")
    item = EventBridgeEnvelope.events(event)[0].value
    assert item is not None and item.subject.startswith("qcs::cvm:") and item.time == NOON
    event["data"] = json.dumps(event["data"])  # data as a JSON string
    record = EventBridgeEnvelope.parse(event, CloudAuditRecord)[0].value
    assert record is not None and record.event_name == "CreateImage"
    batch = EventBridgeEnvelope.events(load_event("eventbridge/batch_create_image_and_other.json"))
    assert [i.value.id[-1] for i in batch if i.value] == ["7", "8", "9"]


def test_one_malformed_event_in_a_batch_stands_alone() -> None:
    good = load_event("eventbridge/cloudaudit_create_image.json")
    items = EventBridgeEnvelope.events({"EventList": [good, {"type": "x"}, "nonsense"]})
    assert [i.ok for i in items] == [True, False, False]
    assert "id" in (items[1].error or "")


def test_cloudaudit_record_decodes_request_parameters_and_finds_image_ids() -> None:
    data = load_event("eventbridge/cloudaudit_create_image_with_resource_id.json")["data"]
    record = CloudAuditRecord.model_validate(data)
    assert isinstance(data["requestParameters"], str)
    assert record.request_parameters["ImageName"] == "release-2026-11-26"
    assert record.image_ids == ["img-0000abcd"] and record.succeeded
    assert record.event_time_utc() == NOON
    failed = CloudAuditRecord.model_validate(load_event("eventbridge/cloudaudit_create_image_failed.json")["data"])
    assert not failed.succeeded and failed.api_error_code == "InvalidImageName.Duplicate"
    assert CloudAuditRecord.model_validate(
        {**data, "errorCode": "0", "resources": ["img-1234abcd"], "resourceName": ""}
    ).image_ids == ["img-1234abcd"]
    with pytest.raises(ValueError):
        CloudAuditRecord.model_validate({**data, "requestParameters": "[1, 2]"})


def test_cmq_tags_and_owner_in_either_shape() -> None:
    as_string = QueueEnvelope.parse(load_event("queue/cmq_topic_tags_string.json"), CompletionMessage)[0]
    as_list = QueueEnvelope.parse(load_event("queue/cmq_topic_tags_list.json"), CompletionMessage)[0]
    assert as_string.meta["tags"] == as_list.meta["tags"] == ["done", "SUCCEEDED"]
    assert as_string.id == "msg-0002" and as_list.id == "msg-0003"
    kafka = QueueEnvelope.parse(load_event("queue/ckafka_completion.json"), CompletionMessage)[0]
    assert kafka.id == "imagesync-completions/1/36" and kafka.meta["link"] == "ckafka"
    local = QueueEnvelope.parse(load_event("queue/local_delivery.json"), CompletionMessage)[0]
    assert local.id == "lq-0000000001" and local.meta["attempts"] == 1


def test_scf_async_invocation_is_one_record_per_message() -> None:
    records = QueueEnvelope.parse(load_event("queue/scf_async_two_messages.json"), CompletionMessage)
    assert QueueEnvelope.kind(load_event("queue/scf_async_two_messages.json")) == "scf-async"
    assert [r.id for r in records] == ["msg-demo00000001", "msg-demo00000002"]
    assert [r.value.replica_id for r in records if r.value] == ["rpl-demo00000001", "rpl-demo00000002"]
    assert all(r.meta["link"] == "scf-async" for r in records)
    mixed = QueueEnvelope.parse(load_event("queue/scf_async_batch_one_bad_record.json"), CompletionMessage)
    assert [r.ok for r in mixed] == [True, False, False]
    assert mixed[1].id == "#1" and mixed[2].id == "msg-demo00000002" and "replica_id" in (mixed[2].error or "")
    # a message given as a JSON string is read too
    as_text = {"source": "imagesync.outbox", "messages": [records[0].value.model_dump_json()]}  # type: ignore[union-attr]
    assert QueueEnvelope.parse(as_text, CompletionMessage)[0].value == records[0].value


@pytest.mark.parametrize(
    "event", [{"source": "imagesync.outbox", "messages": "x"}, {"source": "imagesync.outbox", "messages": None}]
)
def test_scf_async_invocation_without_a_message_list_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent, match="imagesync.outbox"):
        QueueEnvelope.parse(event, CompletionMessage)


@pytest.mark.parametrize("event", [{}, {"foo": 1}, {"Type": "Timer"}])
def test_queue_envelope_refuses_a_foreign_shape(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as caught:
        QueueEnvelope.parse(event, CompletionMessage)
    assert caught.value.code == "Event.Invalid"


def test_cmq_record_without_cmq_object_fails_alone() -> None:
    event = load_event("queue/cmq_queue_completion.json")
    event["Records"].append({"Other": {}})
    records = QueueEnvelope.parse(event, CompletionMessage)
    assert [r.ok for r in records] == [True, False]


def test_timer_variants() -> None:
    lower = load_event("timer/every_minute_lowercase_no_message.json")
    assert TimerEnvelope.parse(lower, SweepOptions) == SweepOptions()
    force = TimerEnvelope.parse(load_event("timer/force_reconcile.json"), SweepOptions)
    assert force.reconcile == "force"
    skip = TimerEnvelope.parse(load_event("timer/skip_reconcile_small_batch.json"), SweepOptions)
    assert (skip.reconcile, skip.batch) == ("skip", 200)
    with pytest.raises(InvalidEvent):
        TimerEnvelope.parse({"Type": "Timer", "Message": '{"reconcile": "sometimes"}'}, SweepOptions)
    with pytest.raises(InvalidEvent):
        TimerEnvelope.parse({"Type": "cron"}, SweepOptions)


def test_envelopes_module_does_not_import_powertools_parser() -> None:
    import subprocess
    import sys

    code = (
        "import sys, imagesync.platform.envelopes; "
        "print(any(m.startswith('aws_lambda_powertools.utilities.parser') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("api_error_code", "error_code", "ok"),
    [
        (0, 0, True),
        ("0", "0", True),
        ("", 0, True),
        (None, None, True),
        ("InvalidInstanceId.NotFound", 1, False),
        ("", 1, False),
    ],
)
def test_cloudaudit_success_in_every_published_spelling(api_error_code: Any, error_code: Any, ok: bool) -> None:
    from imagesync.platform.envelopes import CloudAuditRecord

    record = CloudAuditRecord.model_validate(
        {"eventName": "CreateImage", "apiErrorCode": api_error_code, "errorCode": error_code}
    )
    assert record.succeeded is ok

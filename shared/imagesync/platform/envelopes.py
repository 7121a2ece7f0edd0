"""Trigger envelopes: validate the outer shape of what SCF delivers and hand back only the business payload.

This is the pattern of powertools' parser (an envelope per trigger; `parse(event, model)`), built on plain pydantic
models instead of importing `aws_lambda_powertools.utilities.parser`. Why: measured here (2 cores, warm bytecode)
the parser import adds ~0.08-0.11 s on top of a ~0.22 s floor (pydantic + SQLAlchemy + the CVM client + Logger),
in line with docs/facts.md#F-SCF-8, and it brings only AWS event models, none of SCF's shapes. Defining
the models below costs ~0.04 s at import (pydantic builds their validators), less than half of that, and only
where a record is parsed (copy_request imports this module for EventBridge events only, never for HTTP ones).

Shapes (docs/facts.md#events; parsed tolerantly because the official docs disagree with each other):

* timer: ``{"Type": "Timer"|"timer", "TriggerName", "Time", "Message"}`` -> TimerEnvelope, Message decoded (in
  platform.timer, re-exported here: status_sweep's cold start imports it without the other triggers' models).
* EventBridge: a CloudEvent, or ``{"EventList": [CloudEvent, ...]}`` (batched delivery); ``time`` is epoch
  milliseconds as a number or a string (ISO 8601 accepted too); "subjuect" is read as "subject"; ``data`` is an
  object or a JSON string.
* queue records: status_sweep's asynchronous invocation ``{"source": "imagesync.outbox", "messages": [message,
  ...]}`` (the default cloud link: the event is the Invoke's ClientContext), CMQ ``{"Records": [{"CMQ": {...,
  "msgBody", "msgTag": "t1,t2" | ["t1", "t2"], "topicOwner": int | str}}]}`` (the retired trigger's shape, kept
  for anyone who sends it), CKafka ``{"Records": [{"Ckafka": {"topic", "partition", "offset", "msgKey",
  "msgBody"}}]}``, an EventBridge event whose ``data`` is the message, or a local-queue delivery
  ``{"message_id", "body", "receipt", "attempts"}``.

Record envelopes never raise for one bad record: each record comes back as a Parsed item holding its value or its
error, so a handler processes the good ones and reports the bad one. A malformed outer shape raises InvalidEvent.

Every text decoded here (a Message, a msgBody, a `data` or requestParameters string) goes through
domain.safeparse, and every record (the timer event, each CloudEvent, each queue record) is checked by it before
its fields are read: nesting, numbers, NUL and lone surrogates out of bounds make that record invalid, never a
RecursionError or an encoding error further on.

Over 400 lines on purpose: one module per trigger would be one pydantic model each, and the shapes share their
tolerant readers (time, data, bodies). The Parsed/InvalidEvent contract the handlers rely on is in platform.events,
shared with the timer's envelope.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ..domain.safeparse import Unparseable, check_value, loads_json, printable
from .events import InvalidEvent, JsonText, M, Parsed, describe_error
from .timer import TimerEnvelope, TimerEvent

__all__ = [  # the shared contract and the timer are re-exported: every trigger's envelope is importable from here
    "CkafkaRecord",
    "CloudAuditRecord",
    "CloudEvent",
    "CmqRecord",
    "EventBridgeEnvelope",
    "InvalidEvent",
    "LocalDelivery",
    "Parsed",
    "QueueEnvelope",
    "ScfAsyncEvent",
    "TimerEnvelope",
    "TimerEvent",
    "describe_error",
    "epoch_or_iso",
]


def _json_or_value(value: Any) -> Any:
    """A JSON string decoded (objects and arrays only), anything else as is; Unparseable (a ValueError)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unparseable(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if isinstance(value, str) and value.lstrip(" \t\r\n\ufeff")[:1] in ("{", "["):  # a BOM: refused by the loader
        return loads_json(value)
    return value


def epoch_or_iso(value: Any) -> datetime | None:
    """EventBridge `time`: epoch milliseconds (number or digit string), epoch seconds, or ISO 8601 -> UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) >= 1e11 else value  # 1e11 s is the year 5138; ms since 1973
        try:
            return datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError) as exc:  # out of datetime's range: a ValueError, so pydantic reports it
            raise ValueError(f"not a time: {value!r}") from exc
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ValueError(f"not a time: {value!r}")


#: A text field that captures fill with null or a number as often as a string: None -> "", anything else str().
Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))]


# -- EventBridge --------------------------------------------------------------------------------------------------


class CloudEvent(BaseModel):
    """An EventBridge event (CloudEvents 1.0 as Tencent fills it); unknown keys kept."""

    model_config = ConfigDict(defer_build=True, extra="allow", populate_by_name=True)

    #: at most 200: it becomes an idempotency key ("event:<id>", a 255-character column)
    id: str = Field(min_length=1, max_length=200)
    type: str
    source: str = ""
    subject: str = Field(default="", validation_alias=AliasChoices("subject", "subjuect"))
    time: datetime | None = None
    region: str = ""
    specversion: str = ""
    datacontenttype: str = ""
    resource: list[str] = Field(default_factory=list)
    tags: dict[str, Any] | None = None
    data: Any = None

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> datetime | None:
        return epoch_or_iso(value)

    @field_validator("resource", mode="before")
    @classmethod
    def _resource(cls, value: Any) -> list[str]:
        if value in (None, ""):
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, value: Any) -> Any:
        return _json_or_value(value)


class EventBridgeEnvelope:
    """One CloudEvent or a batch; the business payload is each event's `data`, validated as the given model."""

    @staticmethod
    def matches(event: Mapping[str, Any]) -> bool:
        if not isinstance(event, Mapping):
            return False
        if isinstance(event.get("EventList"), list):
            return True
        return "specversion" in event or ("type" in event and "data" in event and "id" in event)

    @staticmethod
    def events(event: Mapping[str, Any]) -> list[Parsed[CloudEvent]]:
        """Every CloudEvent of the delivery (one item per event; a malformed one holds its error)."""
        raw = event.get("EventList") if isinstance(event.get("EventList"), list) else [event]
        if raw is None:
            raise InvalidEvent("EventList is not a list")
        out: list[Parsed[CloudEvent]] = []
        for i, item in enumerate(raw):
            rid = f"#{i}"
            try:
                ident = item.get("id") if isinstance(item, Mapping) else None
                if isinstance(ident, (str, int)) and not isinstance(ident, bool) and ident != "":
                    check_value(ident)
                    rid = printable(str(ident), 200)  # CloudEvent.id holds at most 200
                check_value(item)  # before any other field is read: bounded depth, numbers and text
                out.append(Parsed(rid, CloudEvent.model_validate(item)))
            except Exception as exc:  # parsing only: whatever fails, this event is invalid, the others still parse
                out.append(Parsed(rid, error=describe_error(exc)))
        return out

    @classmethod
    def parse(cls, event: Mapping[str, Any], model: type[M]) -> list[Parsed[M]]:
        out: list[Parsed[M]] = []
        for item in cls.events(event):
            if item.value is None:
                out.append(Parsed(item.id, error=item.error))
                continue
            meta = {"type": item.value.type, "source": item.value.source, "time": item.value.time}
            try:
                out.append(Parsed(item.id, model.model_validate(item.value.data), meta=meta))
            except Exception as exc:  # parsing only (see events)
                out.append(Parsed(item.id, error=describe_error(exc), meta=meta))
        return out


class CloudAuditRecord(BaseModel):
    """CloudAudit's record of one API call (docs/facts.md#F-EVT-5), as EventBridge carries it in `data`.

    requestParameters is a JSON string holding the call's parameters: decoded into a dict here.
    """

    model_config = ConfigDict(defer_build=True, extra="allow", populate_by_name=True)

    event_name: str = Field(validation_alias=AliasChoices("eventName", "EventName"))
    event_region: str = Field(default="", validation_alias=AliasChoices("eventRegion", "EventRegion", "region"))
    event_time: Text = Field(default="", validation_alias=AliasChoices("eventTime", "EventTime"))
    event_id: str = Field(default="", validation_alias=AliasChoices("eventID", "eventId", "EventId"))
    error_code: int = Field(default=0, validation_alias=AliasChoices("errorCode", "ErrorCode"))
    error_message: Text = Field(default="", validation_alias=AliasChoices("errorMessage", "ErrorMessage"))
    api_error_code: Text = Field(default="", validation_alias=AliasChoices("apiErrorCode", "ApiErrorCode"))
    request_parameters: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("requestParameters", "RequestParameters")
    )
    resource_name: Text = Field(default="", validation_alias=AliasChoices("resourceName", "ResourceName"))
    resources: Any = None
    user_identity: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("userIdentity", "UserIdentity")
    )

    @field_validator("error_code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> int:
        if value in (None, ""):
            return 0
        if not isinstance(value, (int, float, str)):  # int([]) is a TypeError, which pydantic does not catch
            raise ValueError(f"errorCode must be a number, not {type(value).__name__}")
        return int(value)

    @field_validator("request_parameters", "user_identity", mode="before")
    @classmethod
    def _params(cls, value: Any) -> dict[str, Any]:
        if value in (None, ""):
            return {}
        value = _json_or_value(value)
        if not isinstance(value, dict):
            raise ValueError("expected an object or a JSON string holding one")
        return value

    @property
    def succeeded(self) -> bool:
        # Published samples carry apiErrorCode as 0, "0" or "" on success: only another value means failure.
        return self.error_code == 0 and self.api_error_code in ("", "0")

    @property
    def image_ids(self) -> list[str]:
        """Image ids the record names in resourceName / resources (whether CloudAudit puts the new id there is
        unconfirmed: docs/facts.md#F-EVT-5), e.g. "img-xxxx" or "qcs::cvm:ap-guangzhou:uin/1:image/img-xxxx"."""
        found: list[str] = []
        values: list[Any] = [self.resource_name]
        if isinstance(self.resources, list):
            values.extend(self.resources)
        elif self.resources:
            values.append(self.resources)
        for value in values:
            text = json.dumps(value) if isinstance(value, (dict, list)) else str(value or "")
            for token in text.replace('"', " ").replace("/", " ").replace(",", " ").split():
                if token.startswith("img-") and len(token) == 12 and token not in found:
                    found.append(token)
        return found

    def event_time_utc(self) -> datetime | None:
        """eventTime ("2019-03-20 12:36:27"); its time zone is unconfirmed (read as UTC: prefer the CloudEvent's
        epoch `time`)."""
        try:
            return epoch_or_iso(self.event_time.replace(" ", "T")) if self.event_time else None
        except ValueError:
            return None


# -- queue records ------------------------------------------------------------------------------------------------


class CmqRecord(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    type: str = ""
    topic_owner: Text = Field(default="", validation_alias=AliasChoices("topicOwner", "TopicOwner"))
    topic_name: str = Field(default="", validation_alias=AliasChoices("topicName", "TopicName"))
    subscription_name: str = Field(default="", validation_alias=AliasChoices("subscriptionName", "SubscriptionName"))
    publish_time: Text = Field(default="", validation_alias=AliasChoices("publishTime", "PublishTime"))
    msg_id: Text = Field(default="", validation_alias=AliasChoices("msgId", "MsgId"))
    request_id: Text = Field(default="", validation_alias=AliasChoices("requestId", "RequestId"))
    msg_body: JsonText = Field(validation_alias=AliasChoices("msgBody", "MsgBody"))
    msg_tag: list[str] = Field(default_factory=list, validation_alias=AliasChoices("msgTag", "MsgTag"))

    @field_validator("msg_tag", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> list[str]:
        if value in (None, ""):
            return []
        if not isinstance(value, (str, list)):  # a TypeError would escape pydantic and fail the whole delivery
            raise ValueError(f"msgTag must be a string or a list, not {type(value).__name__}")
        items = value.split(",") if isinstance(value, str) else value
        return [str(t).strip() for t in items if str(t).strip()]


class CkafkaRecord(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    topic: str = ""
    partition: int = 0
    offset: int = 0
    msg_key: Text = Field(default="", validation_alias=AliasChoices("msgKey", "MsgKey"))
    msg_body: JsonText = Field(validation_alias=AliasChoices("msgBody", "MsgBody"))


class LocalDelivery(BaseModel):
    """The local SQLite queue's delivery (imagesync.ports.Delivery) handed over as an event."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    message_id: str
    body: str
    receipt: str = ""
    attempts: int = 1


class ScfAsyncEvent(BaseModel):
    """status_sweep's asynchronous invocation of completion_hook (scf Invoke, InvocationType Event): the event IS
    the ClientContext it sent, ``{"source": "imagesync.outbox", "messages": [message, ...]}`` (at most 128 KB)."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    source: Literal["imagesync.outbox"]
    messages: list[Any]


#: the `source` that marks status_sweep's asynchronous invocation (adapters.queues.scf_async.SOURCE)
SCF_ASYNC_SOURCE = "imagesync.outbox"

QueueKind = Literal["scf-async", "cmq", "ckafka", "eventbridge", "local"]


class QueueEnvelope:
    """Completion messages in whatever shape the chosen link delivers; the payload is each message body."""

    @staticmethod
    def kind(event: Mapping[str, Any]) -> QueueKind:
        if not isinstance(event, Mapping):
            raise InvalidEvent(f"not a queue delivery: the event is a JSON {type(event).__name__}, not an object")
        if event.get("source") == SCF_ASYNC_SOURCE and "messages" in event:
            return "scf-async"
        records = event.get("Records")
        if isinstance(records, list):
            first = records[0] if records and isinstance(records[0], Mapping) else {}
            if any(str(k).lower() == "ckafka" for k in first):
                return "ckafka"
            return "cmq"
        if EventBridgeEnvelope.matches(event):
            return "eventbridge"
        if "body" in event and "message_id" in event:
            return "local"
        raise InvalidEvent(
            "not a queue delivery: expected status_sweep's async invocation, CMQ or CKafka Records, an EventBridge "
            "event or a local delivery",
            keys=sorted(str(k) for k in event)[:10],
        )

    @classmethod
    def parse(cls, event: Mapping[str, Any], model: type[M]) -> list[Parsed[M]]:
        """One Parsed per record; a record that does not validate carries its error (the others still parse)."""
        kind = cls.kind(event)
        if kind == "scf-async":
            return cls._scf_async(event, model)
        if kind == "eventbridge":
            return EventBridgeEnvelope.parse(event, model)
        if kind == "local":
            return [cls._one(LocalDelivery, event, 0, model, "local")]
        return [
            cls._one(CkafkaRecord if kind == "ckafka" else CmqRecord, r, i, model, kind)
            for i, r in enumerate(event["Records"])
        ]

    @staticmethod
    def _scf_async(event: Mapping[str, Any], model: type[M]) -> list[Parsed[M]]:
        """One Parsed per message of status_sweep's invocation (each an object, or a JSON string holding one)."""
        try:
            outer = ScfAsyncEvent.model_validate(event)
        except ValidationError as exc:
            raise InvalidEvent(f"not an imagesync.outbox invocation: {describe_error(exc)}") from exc
        out: list[Parsed[M]] = []
        for i, item in enumerate(outer.messages):
            rid = f"#{i}"
            meta: dict[str, Any] = {"link": "scf-async", "index": i}
            try:
                check_value(item)  # before any field is read: bounded depth, numbers and text
                if isinstance(item, Mapping) and isinstance(item.get("message_id"), str) and item["message_id"]:
                    rid = printable(item["message_id"], 128)
                value = model.model_validate(loads_json(item) if isinstance(item, str) else item)
                out.append(Parsed(rid, value, meta=meta))
            except Exception as exc:  # parsing only: whatever fails, this message is rejected, the others still parse
                out.append(Parsed(rid, error=describe_error(exc), meta=meta))
        return out

    @staticmethod
    def _one(outer: type[BaseModel], record: Any, index: int, model: type[M], kind: str) -> Parsed[M]:
        rid = f"#{index}"
        meta: dict[str, Any] = {"link": kind}
        try:
            check_value(record)  # before any field is read: bounded depth, numbers and text
            if isinstance(record, Mapping) and kind in ("cmq", "ckafka"):
                inner = next((v for k, v in record.items() if k.lower() == kind), None)
            else:
                inner = record
            if not isinstance(inner, Mapping):
                raise ValueError(f"record {index} has no {kind.upper()} object")
            parsed: Any = outer.model_validate(inner)
            if isinstance(parsed, CmqRecord):
                rid = printable(parsed.msg_id, 128) or rid
                meta.update(queue=parsed.topic_name, tags=parsed.msg_tag, request_id=parsed.request_id)
                body = parsed.msg_body
            elif isinstance(parsed, CkafkaRecord):
                rid = printable(f"{parsed.topic}/{parsed.partition}/{parsed.offset}", 128)
                meta.update(topic=parsed.topic, partition=parsed.partition, offset=parsed.offset)
                body = parsed.msg_body
            else:
                rid = printable(parsed.message_id, 128)
                meta.update(receipt=parsed.receipt, attempts=parsed.attempts)
                body = parsed.body
            return Parsed(rid, model.model_validate(loads_json(body)), meta=meta)
        except Exception as exc:  # parsing only: whatever fails, this record is rejected, the others still parse
            return Parsed(rid, error=describe_error(exc), meta=meta)

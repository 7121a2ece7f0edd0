"""copy_request: validates and starts copies. Triggers: HTTP (Function URL, legacy API Gateway) and EventBridge
(CloudAudit CreateImage events: the replication rules' copies of each new image)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..domain.errors import CloudError, ImageSyncError
from ..domain.safeparse import printable
from ..platform.context import invocation
from ..platform.http import is_http_event, to_scf_response
from ..platform.logs import logger
from ..wiring import services

if TYPE_CHECKING:
    from ..app.rules import NewImage
    from ..platform.envelopes import CloudEvent

#: CloudAudit's event types (docs/facts.md#F-EVT-5): a console-made image arrives as ConsoleCall, not ApiCall.
AUDIT_TYPES = ("CloudEvent:ApiCall", "CloudEvent:ConsoleCall", "CloudEvent:MiniProgramCall")
#: "eventbridge:<who>" is stored as requested_by (200 characters)
MAX_WHO = 200 - len("eventbridge:")


class EventsNotDone(Exception):
    """Some events must be tried again (image not visible yet, a transient cloud error, bad rules): raising makes
    EventBridge/SCF redeliver the delivery; the events already handled replay their stored result."""

    def __init__(self, pending: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(pending)} event(s) to retry: " + "; ".join(f"{p['id']}: {p['error']}" for p in pending))
        self.pending = pending


def main_handler(event: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    with invocation(context, "copy_request") as ctx:
        services().begin_invocation()
        if is_http_event(event):
            from .api.routes import handle

            response = to_scf_response(handle(event, ctx))
            if response.get("statusCode") == 202:  # copies recorded (started, or waiting for their source)
                _arm_sweep()
            return response
        if _is_eventbridge(event):
            try:
                return _events(event)
            finally:  # what was handled before a retried event is recorded and must be tracked
                _arm_sweep()
        keys = sorted(event)[:10] if isinstance(event, dict) else type(event).__name__
        logger.warning("ignored an event copy_request does not handle", extra={"keys": keys})
        return {"ignored": True, "reason": "neither an HTTP nor an EventBridge event"}


def _arm_sweep() -> None:
    """Have status_sweep's timer armed at the earliest due check (app.schedule; a no-op without a scheduler). A
    failure is logged, never answered: the copies are recorded and tracked anyway (docs/deploy.md)."""
    follow = services().follow_work()
    if follow is not None:
        result = follow()
        if "error" in result:
            logger.error("the sweep's timer was not armed", extra=result)


def _is_eventbridge(event: dict[str, Any]) -> bool:
    # the envelope models are imported only by invocations that need them (HTTP ones never do)
    from ..platform.envelopes import EventBridgeEnvelope

    return EventBridgeEnvelope.matches(event)


def _events(event: dict[str, Any]) -> dict[str, Any]:
    """Each CloudEvent of the delivery on its own: handled, ignored (logged), invalid (logged) or to retry."""
    from ..platform.envelopes import EventBridgeEnvelope, InvalidEvent

    outcomes: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for item in EventBridgeEnvelope.events(event):
        try:
            if item.value is None:
                raise InvalidEvent(item.error or "invalid event")
            deleted = _deleted_images(item.value)
            new, why = (None, "") if deleted else _new_image(item.value)
        except InvalidEvent as exc:
            logger.error("invalid EventBridge event ignored", extra={"event_id": item.id, "error": exc.message})
            outcomes.append({"id": item.id, "status": "invalid", "code": InvalidEvent.code, "error": exc.message})
            continue
        if deleted is not None:
            try:
                decisions = services().cleanup().on_deleted(deleted[0], deleted[1], trigger="event")
            except Exception as exc:  # a transient cloud error, or bad rules: EventBridge redelivers
                error = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
                logger.warning("DeleteImages event to retry", extra={"event_id": item.id, "error": error})
                pending.append({"id": item.id, "error": error})
                continue
            logger.info("DeleteImages event handled", extra={"event_id": item.id, "decisions": len(decisions)})
            outcomes.append({"id": item.id, "status": "cleanup", "images": deleted[1], "decisions": decisions})
            continue
        if new is None:
            logger.info("event ignored: " + why, extra={"event_id": item.id, "event_type": item.value.type[:100]})
            outcomes.append({"id": item.id, "status": "ignored", "reason": why})
            continue
        try:
            result = services().rule_engine().on_image_created(new)
        except Exception as exc:
            retry = not isinstance(exc, ImageSyncError) or exc.kind in ("retryable", "invalid", "internal")
            if isinstance(exc, CloudError):
                retry = exc.retryable
            error = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
            if not retry:
                logger.error("CreateImage event failed", extra={"event_id": item.id, "error": error})
                outcomes.append({"id": item.id, "status": "failed", "error": error})
                continue
            logger.warning("CreateImage event to retry", extra={"event_id": item.id, "error": error})
            pending.append({"id": item.id, "error": error})
            continue
        logger.info("CreateImage event handled", extra={"event_id": item.id, "status": result.get("status")})
        outcomes.append({"id": item.id, **result})
    if pending:
        raise EventsNotDone(pending)
    return {"events": outcomes}


def _deleted_images(ce: CloudEvent) -> tuple[str, list[str]] | None:
    """(region, image ids) a successful DeleteImages audit event tells of (the sources whose copies a rule may
    clean up: app.cleanup), else None. Ids from requestParameters.ImageIds and the record's resources."""
    from ..platform.envelopes import CloudAuditRecord, InvalidEvent, describe_error

    if not ce.type.endswith(AUDIT_TYPES) or not isinstance(ce.data, dict):
        return None
    try:
        record = CloudAuditRecord.model_validate(ce.data)
        if record.event_name != "DeleteImages" or not record.succeeded:
            return None
        named = record.request_parameters.get("ImageIds")
        ids = [i for i in (named if isinstance(named, list) else []) if isinstance(i, str)]
        ids = list(dict.fromkeys([*ids, *record.image_ids]))
    except Exception as exc:  # parsing only: the record is unreadable, whatever the error
        raise InvalidEvent(f"unreadable audit record ({describe_error(exc)})") from exc
    region = record.event_region or ce.region
    valid = [i for i in ids if len(i) == 12 and i.startswith("img-") and i[4:].isalnum()]
    if not region or not valid:
        return None
    return region, valid[:100]


def _new_image(ce: CloudEvent) -> tuple[NewImage | None, str]:
    """The new image a CreateImage audit event tells of, or (None, why the event is not one to act on).

    Raises InvalidEvent for a CloudAudit record that cannot be read (e.g. a requestParameters string that is not
    a JSON object within domain.safeparse's bounds).
    """
    from ..app.rules import NewImage
    from ..platform.envelopes import CloudAuditRecord, InvalidEvent, describe_error

    if not ce.type.endswith(AUDIT_TYPES):
        return None, f"type {printable(ce.type, 100)!r} is not a CloudAudit API call"
    if not isinstance(ce.data, dict):
        return None, "no audit record in data"
    try:
        record = CloudAuditRecord.model_validate(ce.data)
        ids = record.image_ids
    except Exception as exc:  # parsing only: the record is unreadable, whatever the error
        raise InvalidEvent(f"unreadable audit record ({describe_error(exc)})") from exc
    if record.event_name != "CreateImage":
        return None, f"{record.event_name} is not CreateImage"
    if not record.succeeded:
        return None, f"CreateImage failed ({record.api_error_code or record.error_code}: {record.error_message})"
    name = str(record.request_parameters.get("ImageName") or "")
    region = record.event_region or ce.region
    if not name or not region:
        return None, "CreateImage record without ImageName or region"
    identity = record.user_identity
    who = str(identity.get("userName") or identity.get("principalId") or identity.get("accountId") or "cloudaudit")
    if len(who) > MAX_WHO:  # the audit trail could not hold it: refused, not a database error on every redelivery
        raise InvalidEvent(f"userIdentity names a caller of over {MAX_WHO} characters")
    return NewImage(
        event_id=ce.id,
        region=region,
        name=name,
        event_time=ce.time or record.event_time_utc(),
        image_id=ids[0] if ids else None,
        requested_by=f"eventbridge:{who}",
    ), ""

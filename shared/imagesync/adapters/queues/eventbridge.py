"""The alternative completion link: an EventBridge custom bus (for teams that fan completions out).

eb `2021-04-16` `PutEvents(EventBusId, EventList)` with at most 10 events per call; one event per completion
message, its `Data` the message's JSON. A rule on the bus (`{"source": ["imagesync.outbox"]}`) targets
completion_hook, which EventBridge invokes asynchronously with the CloudEvent it builds: `data` is the message,
which is what completion_hook's envelope reads (platform.envelopes, kind "eventbridge"); other rules may send the
same events to more consumers. What it costs: EventBridge delivers at most 2,000 events a day to one SCF target by
default (docs/deploy.md).

The client is injected (the Tencent adapter builds it); nothing is retried here (status_sweep owns the retries).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.eb.v20210416 import models

from imagesync.domain.errors import CloudError

from .errors import EMPTY_RESPONSE_CODE, to_cloud_error
from .limits import message_object
from .scf_async import SOURCE

logger = logging.getLogger(__name__)

#: PutEvents takes at most 10 events per call.
MAX_EVENTS_PER_CALL = 10
#: The CloudEvent `type` of a completion (the rule may select on it).
EVENT_TYPE = "imagesync:Replica:Ended"


class PutEventsClient(Protocol):
    """The call of `tencentcloud.eb.v20210416.eb_client.EbClient` this link uses."""

    def PutEvents(self, request: models.PutEventsRequest) -> Any: ...  # noqa: N802 (the SDK's name)


def _event(body: str) -> models.Event:
    message = message_object(body)
    event = models.Event()
    event.Source = SOURCE
    event.Type = EVENT_TYPE
    # the subject names what the event is about: the replica (its id is also the message's replica_id)
    event.Subject = f"replica/{message.get('replica_id') or message.get('message_id') or 'unknown'}"
    event.Data = body
    return event


class EventBridgeLink:
    """Puts each completion message on one EventBridge bus as one event (implements `ports.BatchQueue`).

    Contract:
    - `batches(bodies)` groups them, in order, 10 per PutEvents call.
    - `send_batch(bodies)` makes ONE PutEvents with one event per body (1 to 10 bodies; each a JSON object's text,
      ValueError otherwise, before any call) and returns the API request id.
    - `send(body)` is `send_batch([body])` (the `Queue` port); no delay (`delay_seconds` > 0 raises).
    - Every SDK failure raises `CloudError` `from` the SDK exception (retryable for throttling, internal and
      network errors). PutEvents is all or nothing for our purposes: a failed call is sent again whole, and
      completion_hook acts once per replica end however often a message arrives.
    """

    def __init__(self, client: PutEventsClient, *, event_bus_id: str) -> None:
        if not event_bus_id:
            raise ValueError("event_bus_id must not be empty (IMAGESYNC_EVENT_BUS_ID)")
        self._client = client
        self.event_bus_id = event_bus_id

    def __repr__(self) -> str:
        return f"EventBridgeLink(event_bus_id={self.event_bus_id!r})"

    @staticmethod
    def batches(bodies: Sequence[str]) -> list[list[int]]:
        indexes = list(range(len(bodies)))
        return [indexes[i : i + MAX_EVENTS_PER_CALL] for i in range(0, len(indexes), MAX_EVENTS_PER_CALL)]

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        if delay_seconds:
            raise ValueError("an EventBridge event cannot be delayed (PutEvents has no delay)")
        return self.send_batch([body])

    def send_batch(self, bodies: Sequence[str]) -> str:
        if not bodies:
            raise ValueError("nothing to send")
        if len(bodies) > MAX_EVENTS_PER_CALL:
            raise ValueError(f"{len(bodies)} events: PutEvents takes at most {MAX_EVENTS_PER_CALL} per call")
        request = models.PutEventsRequest()
        request.EventBusId = self.event_bus_id
        request.EventList = [_event(b) for b in bodies]
        try:
            response = self._client.PutEvents(request)
        except TencentCloudSDKException as exc:
            raise to_cloud_error(exc, "eb", "PutEvents") from exc
        request_id = getattr(response, "RequestId", None)
        if not request_id:
            raise CloudError(
                EMPTY_RESPONSE_CODE,
                "eb PutEvents answered without a request id; the events may not be put",
                retryable=False,
            )
        logger.debug(
            "completion events put",
            extra={"event_bus_id": self.event_bus_id, "events": len(bodies), "request_id": request_id},
        )
        return str(request_id)

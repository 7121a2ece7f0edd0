"""The default cloud completion link: completion_hook invoked asynchronously through SCF's own API.

scf `2018-04-16` `Invoke(FunctionName, InvocationType="Event", ClientContext=<event JSON>, Namespace, Qualifier)`
queues one invocation and returns at once; the function's event IS ClientContext, at most 128 KB for an async
invocation (docs/facts.md, SCF). SCF then retries a failing invocation (RetryNum, MsgTTL:
UpdateFunctionEventInvokeConfig) and hands what still fails to the function's dead letter, if one is configured
(deploy/, docs/deploy.md).

The event completion_hook gets (platform.envelopes.QueueEnvelope, kind "scf-async")::

    {"source": "imagesync.outbox", "messages": [<CompletionMessage as a JSON object>, ...]}

Messages are packed into as few invocations as fit in 128 KB. The client is injected (the Tencent adapter builds
it: region, credentials, endpoint); this module only shapes requests and maps errors. Nothing is retried here:
status_sweep owns the retry policy (within its deadline) and leaves what was not accepted in the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.scf.v20180416 import models

from imagesync.domain.errors import CloudError

from .errors import EMPTY_RESPONSE_CODE, to_cloud_error
from .limits import message_object

logger = logging.getLogger(__name__)

#: The `source` of every event this link sends; completion_hook's envelope recognises the shape by it.
SOURCE = "imagesync.outbox"
#: SCF's limit on an asynchronous invocation's ClientContext (128 KB), in bytes of UTF-8.
MAX_EVENT_BYTES = 128 * 1024

_PREFIX = '{"source":"' + SOURCE + '","messages":['
_SUFFIX = "]}"


class InvokeClient(Protocol):
    """The call of `tencentcloud.scf.v20180416.scf_client.ScfClient` this link uses."""

    def Invoke(self, request: models.InvokeRequest) -> Any: ...  # noqa: N802 (the SDK's name)


def event_text(bodies: Sequence[str]) -> str:
    """The ClientContext of one invocation carrying `bodies` (each a JSON object's text), compact JSON."""
    return _PREFIX + ",".join(bodies) + _SUFFIX


class ScfAsyncLink:
    """Hands completion messages to one function by asynchronous Invoke (implements `ports.BatchQueue`).

    Contract:
    - `batches(bodies)` splits the bodies, in order, into groups whose event fits in MAX_EVENT_BYTES and that hold
      at most `max_messages` each (when given): as few invocations as fit. A body too large to fit even alone
      raises ValueError (nothing is sent).
    - `send_batch(bodies)` makes ONE Invoke carrying all of them and returns the id SCF gave it (the function
      request id, else the API request id). Bodies must be JSON objects' text (ValueError otherwise, before any
      call); an event over MAX_EVENT_BYTES raises ValueError before any call.
    - `send(body)` is `send_batch([body])` (the `Queue` port); there is no delay (`delay_seconds` > 0 raises).
    - Every SDK failure raises `CloudError` (Tencent's code, request id, `retryable` for throttling, internal and
      network errors) `from` the SDK exception. A failed Invoke may still have been queued (an answer lost after
      SCF accepted it): completion_hook acts once per replica end however often a message arrives.
    """

    def __init__(
        self,
        client: InvokeClient,
        *,
        function_name: str,
        namespace: str = "default",
        qualifier: str = "",
        max_messages: int | None = None,
    ) -> None:
        if not function_name:
            raise ValueError("function_name must not be empty (IMAGESYNC_COMPLETION_FUNCTION)")
        if not namespace:
            raise ValueError("namespace must not be empty (IMAGESYNC_COMPLETION_NAMESPACE)")
        if max_messages is not None and max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._client = client
        self.max_messages = max_messages
        self.function_name = function_name
        self.namespace = namespace
        self.qualifier = qualifier

    def __repr__(self) -> str:
        return f"ScfAsyncLink(function_name={self.function_name!r}, namespace={self.namespace!r})"

    def batches(self, bodies: Sequence[str]) -> list[list[int]]:
        """Indexes of `bodies` grouped, in order, into invocations of at most MAX_EVENT_BYTES each (and at most
        `max_messages` messages, when set: one invocation's hooks must fit in completion_hook's timeout)."""
        groups: list[list[int]] = []
        current: list[int] = []
        size = len(_PREFIX) + len(_SUFFIX)
        base = size
        for i, body in enumerate(bodies):
            item = len(body.encode("utf-8"))
            if base + item > MAX_EVENT_BYTES:
                raise ValueError(
                    f"message {i} is {item} bytes: an asynchronous invocation holds at most {MAX_EVENT_BYTES} bytes"
                )
            extra = item + (1 if current else 0)  # the comma between two messages
            full = self.max_messages is not None and len(current) >= self.max_messages
            if current and (full or size + extra > MAX_EVENT_BYTES):
                groups.append(current)
                current, size, extra = [], base, item
            current.append(i)
            size += extra
        if current:
            groups.append(current)
        return groups

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        if delay_seconds:
            raise ValueError("an asynchronous invocation cannot be delayed (Invoke has no delay)")
        return self.send_batch([body])

    def send_batch(self, bodies: Sequence[str]) -> str:
        """One asynchronous Invoke carrying `bodies`; returns the id SCF gave the invocation."""
        if not bodies:
            raise ValueError("nothing to send")
        for body in bodies:
            message_object(body)  # refuses a body that is not a JSON object's text, before any call
        text = event_text(bodies)
        size = len(text.encode("utf-8"))
        if size > MAX_EVENT_BYTES:
            raise ValueError(f"the event is {size} bytes; an asynchronous invocation holds at most {MAX_EVENT_BYTES}")
        request = models.InvokeRequest()
        request.FunctionName = self.function_name
        request.InvocationType = "Event"
        request.ClientContext = text
        request.Namespace = self.namespace
        if self.qualifier:
            request.Qualifier = self.qualifier
        try:
            response = self._client.Invoke(request)
        except TencentCloudSDKException as exc:
            raise to_cloud_error(exc, "scf", "Invoke") from exc
        result = getattr(response, "Result", None)
        invocation_id = getattr(result, "FunctionRequestId", None) or getattr(response, "RequestId", None)
        if not invocation_id:
            # Not retryable: a misread answer (see EMPTY_RESPONSE_CODE), which repeating would not fix.
            raise CloudError(
                EMPTY_RESPONSE_CODE,
                "scf Invoke answered without a request id; the invocation may not be queued",
                retryable=False,
            )
        logger.debug(
            "completion_hook invoked",
            extra={
                "function": self.function_name,
                "messages": len(bodies),
                "bytes": size,
                "invocation_id": invocation_id,
            },
        )
        return str(invocation_id)

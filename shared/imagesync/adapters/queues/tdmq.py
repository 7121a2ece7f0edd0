"""The `Queue` port over TDMQ for CMQ (service `tdmq`, version 2020-02-17), through the official Python SDK.

Producer only: `SendCmqMsg` into a queue, or `PublishCmqMsg` to a topic. Receiving happens in the CMQ data plane (or
the trigger delivers to the function), so nothing here consumes. The client is injected (the Tencent adapter builds
clients: region, credentials, endpoint); this module only shapes requests and maps errors.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.tdmq.v20200217 import models

from imagesync.domain.errors import CloudError

from .limits import check_body_size

logger = logging.getLogger(__name__)

#: Error codes worth retrying: throttling (RequestLimitExceeded and its .UinLimitExceeded / .GlobalRegion... variants),
#: Tencent's own failures, and the SDK's codes for transport failures (no connection / a non-200 HTTP status).
_RETRYABLE_PREFIXES = ("RequestLimitExceeded", "InternalError")
_NETWORK_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})

#: Our own code for a 200 answer without a message id. The SDK parses an error envelope as an empty success when the
#: Content-Type is not exactly application/json (reference, section 4), so "no MsgId" must not pass for "sent".
EMPTY_RESPONSE_CODE = "ClientError.EmptyResponse"


class CmqProducerClient(Protocol):
    """The two calls of `tencentcloud.tdmq.v20200217.tdmq_client.TdmqClient` this adapter uses."""

    def SendCmqMsg(self, request: models.SendCmqMsgRequest) -> Any: ...  # noqa: N802 (the SDK's names)

    def PublishCmqMsg(self, request: models.PublishCmqMsgRequest) -> Any: ...  # noqa: N802


def is_retryable(code: str | None) -> bool:
    """Whether an SDK error code is transient (throttling, internal error, network): the same call may succeed later."""
    if not code:
        return False
    return code.startswith(_RETRYABLE_PREFIXES) or code in _NETWORK_CODES


def to_cloud_error(exc: TencentCloudSDKException, action: str) -> CloudError:
    """The domain error for an SDK exception from `action` (raise it `from exc`)."""
    code = exc.code or "UnknownError"
    detail: Any = exc.message
    if isinstance(detail, bytes):
        # ServerNetworkError carries the raw HTTP body (bytes, maybe an HTML error page): keep it readable and short.
        detail = detail.decode("utf-8", errors="replace")[:500]
    return CloudError(
        code,
        f"tdmq {action} failed: {detail or code}",
        request_id=exc.requestId,
        retryable=is_retryable(exc.code),
    )


class TdmqCmqQueue:
    """Send each message to one CMQ queue (`queue_name`) or publish it to one CMQ topic (`topic_name`, with `tags`).

    Contract (the `Queue` port):
    - `send(body, delay_seconds=0)` returns the MsgId TDMQ assigned.
    - A body over 1 MB (1,048,576 bytes of UTF-8) raises ValueError before any call is made.
    - Every SDK failure raises `CloudError` (cloud_code = Tencent's code, request_id, `retryable` for throttling,
      internal and network errors) `from` the SDK exception. Nothing is retried here: the caller owns the retry
      policy (status_sweep leaves unsent messages in the outbox for its next run). A failed send may still have been
      delivered (e.g. a timeout after TDMQ accepted it): consumers must be idempotent, as CMQ is at-least-once anyway.
    - Topics have no delay: `delay_seconds` > 0 with a topic raises ValueError rather than being dropped silently.
    """

    def __init__(
        self,
        client: CmqProducerClient,
        *,
        queue_name: str | None = None,
        topic_name: str | None = None,
        tags: list[str] | None = None,
    ) -> None:
        if (queue_name is None) == (topic_name is None):
            raise ValueError("give exactly one of queue_name or topic_name")
        if queue_name is not None and not queue_name:
            raise ValueError("queue_name must not be empty")
        if topic_name is not None and not topic_name:
            raise ValueError("topic_name must not be empty")
        if tags and queue_name is not None:
            # Tags only exist on topic publishes (subscription filters); on a queue they would be silently lost.
            raise ValueError("tags apply to a topic only (PublishCmqMsg MsgTag); SendCmqMsg has none")
        self._client = client
        self.queue_name = queue_name
        self.topic_name = topic_name
        self.tags = list(tags) if tags else []

    def __repr__(self) -> str:
        target = f"queue_name={self.queue_name!r}" if self.queue_name else f"topic_name={self.topic_name!r}"
        return f"TdmqCmqQueue({target}, tags={self.tags!r})"

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Send `body` (to the queue, after `delay_seconds`; or to the topic); returns TDMQ's MsgId."""
        check_body_size(body)
        if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int) or delay_seconds < 0:
            raise ValueError(f"delay_seconds must be an int >= 0, got {delay_seconds!r}")
        if self.queue_name is not None:
            send_request = models.SendCmqMsgRequest()
            send_request.QueueName = self.queue_name
            send_request.MsgContent = body
            # Always sent, 0 included: DelaySeconds is a required parameter of SendCmqMsg.
            send_request.DelaySeconds = delay_seconds
            return self._call("SendCmqMsg", self._client.SendCmqMsg, send_request)
        if delay_seconds:
            raise ValueError("a topic publish cannot be delayed (PublishCmqMsg has no DelaySeconds)")
        publish_request = models.PublishCmqMsgRequest()
        publish_request.TopicName = self.topic_name
        publish_request.MsgContent = body
        if self.tags:
            publish_request.MsgTag = list(self.tags)
        return self._call("PublishCmqMsg", self._client.PublishCmqMsg, publish_request)

    def _call(self, action: str, method: Any, request: Any) -> str:
        try:
            response = method(request)
        except TencentCloudSDKException as exc:
            raise to_cloud_error(exc, action) from exc
        msg_id = getattr(response, "MsgId", None)
        request_id = getattr(response, "RequestId", None)
        if not msg_id or getattr(response, "Result", None) is False:
            # Not retryable: this is a misread answer (see EMPTY_RESPONSE_CODE), which repeating would not fix.
            raise CloudError(
                EMPTY_RESPONSE_CODE,
                f"tdmq {action} answered without a MsgId (Result={getattr(response, 'Result', None)!r}); "
                "the message may not have been sent",
                request_id=request_id,
                retryable=False,
            )
        logger.debug(
            "cmq message sent",
            extra={"action": action, "msg_id": msg_id, "request_id": request_id,
                   "queue": self.queue_name, "topic": self.topic_name},
        )
        return str(msg_id)

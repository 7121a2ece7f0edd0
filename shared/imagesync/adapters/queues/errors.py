"""SDK errors of the completion links, mapped to the domain's CloudError (one mapping for every link)."""

from __future__ import annotations

from typing import Any

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from imagesync.domain.errors import CloudError

#: Error codes worth retrying: throttling (RequestLimitExceeded and its .UinLimitExceeded / .GlobalRegion... variants),
#: Tencent's own failures, and the SDK's codes for transport failures (no connection / a non-200 HTTP status).
_RETRYABLE_PREFIXES = ("RequestLimitExceeded", "InternalError")
_NETWORK_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})

#: Our own code for a 200 answer that carries no request id. The SDK parses an error envelope as an empty success
#: when the Content-Type is not exactly application/json (docs/facts: the SDK's traps), so an answer with nothing in
#: it must not pass for "accepted".
EMPTY_RESPONSE_CODE = "ClientError.EmptyResponse"


def is_retryable(code: str | None) -> bool:
    """Whether an SDK error code is transient (throttling, internal error, network): the same call may succeed later."""
    if not code:
        return False
    return code.startswith(_RETRYABLE_PREFIXES) or code in _NETWORK_CODES


def to_cloud_error(exc: TencentCloudSDKException, service: str, action: str) -> CloudError:
    """The domain error for an SDK exception from `service` `action` (raise it `from exc`)."""
    code = exc.code or "UnknownError"
    detail: Any = exc.message
    if isinstance(detail, bytes):
        # ServerNetworkError carries the raw HTTP body (bytes, maybe an HTML error page): keep it readable and short.
        detail = detail.decode("utf-8", errors="replace")[:500]
    return CloudError(
        code,
        f"{service} {action} failed: {detail or code}",
        request_id=exc.requestId,
        retryable=is_retryable(exc.code),
    )

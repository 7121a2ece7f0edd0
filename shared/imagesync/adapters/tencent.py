"""Tencent Cloud through the official per-product SDK clients: CVM images, the region service, tags, and the
completion links' SCF (async Invoke) and EventBridge (PutEvents). The CVM ports on it are in cvm.py, where the keys
come from in credentials.py.

Clients are made once per region per container and reused; credentials are found per invocation, by the first call
that needs them (SCF rotates the role's temporary keys; commands that only read local state need none), along
CredentialChain. The SDK's own StandardRetryer is broken (docs/facts.md#F-SDK-3), so the retry loop is ours.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from ..domain.errors import BUSY_CODES, CloudError
from ..runtime.deadline import time_left
from .credentials import CredentialChain

log = logging.getLogger(__name__)

#: What the SDK's DEBUG lines carry that must never reach a log: each request's headers include X-TC-Token (the
#: session token of the function role's temporary key) and the TC3 signature.
_SDK_SECRET = re.compile(r"(X-TC-Token:\s*|Signature=)[^\s,]+", re.IGNORECASE)


class RedactSdkSecrets(logging.Filter):
    """Redacts the session token and signature from the SDK's own log records (logger "tencentcloud_sdk_common"),
    whatever level that logger or the root logger is set to."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SDK_SECRET.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


logging.getLogger("tencentcloud_sdk_common").addFilter(RedactSdkSecrets())

#: Refused before any work was done: always safe to send again.
REFUSED_CODES = ("RequestLimitExceeded", *BUSY_CODES)
#: The request may or may not have been carried out: safe to repeat for reads only.
AMBIGUOUS_CODES = ("InternalError", "ClientNetworkError", "ServerNetworkError")


def is_refused(code: str) -> bool:
    return code.startswith(REFUSED_CODES)


def is_ambiguous(code: str) -> bool:
    return code.startswith(AMBIGUOUS_CODES)


class RateLimiter:
    """A token bucket per action, so one container stays under the API's per-second limits."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


class TencentCloud:
    """Official SDK clients, one per (product, region), made once per container.

    `endpoint` ("http://host:port" or "host:port") points every product at one host, as the emulator serves them.
    """

    def __init__(
        self,
        *,
        endpoint: str = "",
        credential_provider: Callable[[], Any] | None = None,
        max_attempts: int = 6,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        rates: Mapping[str, float] | None = None,
        timeout: int = 30,
    ) -> None:
        self.endpoint = endpoint
        self._credential_provider = credential_provider or CredentialChain()
        self._credential: Any = None  # read on the first call that needs it, never before
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._limiters = {action: RateLimiter(rate) for action, rate in (rates or {}).items()}

    def refresh_credentials(self) -> None:
        """Once per invocation: the next call finds credentials anew (every client asks for them through
        _InvocationCredential, so clients already made sign with the new ones).

        Lazy on purpose: work that never calls the cloud (reading the state table, a webhook-only hook) needs no
        keys, and a missing key is reported by the call that needed it (CredentialsNotFound).
        """
        with self._lock:
            self._credential = None

    def credential(self) -> Any:
        """This invocation's credential (a Credential, or the instance role's self-renewing one), found on first
        use; raises CredentialsNotFound / CredentialsInvalid."""
        with self._lock:
            if self._credential is None:
                self._credential = self._credential_provider()
            return self._credential

    def _profile(self, product: str) -> ClientProfile:
        http = HttpProfile(reqTimeout=self.timeout, keepAlive=True)
        if self.endpoint:
            scheme, _, host = self.endpoint.rpartition("://")
            http.protocol = http.scheme = scheme or "https"
            http.endpoint = host  # a scheme inside endpoint is sent and signed in Host (docs/facts.md#F-SDK-1)
        else:
            http.endpoint = f"{product}.tencentcloudapi.com"
        return ClientProfile(httpProfile=http, language="en-US")

    def client(self, product: str, region: str) -> Any:
        return self._cached(
            (product, region),
            lambda: _CLIENT_FACTORIES[product](_InvocationCredential(self), region, self._profile(product)),
        )

    def common_client(self, product: str, version: str, region: str) -> Any:
        """The SDK's generic client (`tencentcloud.common.common_client.CommonClient`) for `product` at API `version`,
        made once per container like the product clients: the same signing, endpoint and credentials, and no import
        of the product's client or models module (`call_json(action, params)` takes and answers plain JSON)."""

        def make() -> Any:
            from tencentcloud.common.common_client import CommonClient

            return CommonClient(product, version, _InvocationCredential(self), region, self._profile(product))

        return self._cached((f"{product}@{version}", region), make)

    def _cached(self, key: tuple[str, str], make: Callable[[], Any]) -> Any:
        """The client under `key`, made by `make` on first use: one per container, shared by its threads."""
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = make()
            return client

    def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> dict[str, Any]:
        """Call `action`, retrying refused requests (and, when `safe`, ambiguous ones) with backoff and jitter.

        Never sleeps past the invocation's deadline. Raises CloudError (retryable=True where a later try may work).
        """
        client = self.client(product, region)
        # Found here, outside the SDK: its product clients turn any exception into a TencentCloudSDKException, and
        # missing keys must not look like a refusal of this call (a copy would be marked failed for it).
        self.credential()
        limiter = self._limiters.get(action)
        attempt = 0
        while True:
            attempt += 1
            if limiter:
                limiter.acquire()
            try:
                return _invoke(client, product, action, params)
            except TencentCloudSDKException as exc:
                code = exc.code or "InternalError"
                retryable = is_refused(code) or (safe and is_ambiguous(code))
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if not retryable or attempt >= self.max_attempts or delay >= time_left() - 1.0:
                    raise CloudError(
                        code,
                        str(exc.message or code),
                        request_id=exc.requestId,
                        retryable=is_refused(code) or is_ambiguous(code),
                    ) from exc
                log.info("retrying %s after %s (attempt %d, %.2fs)", action, code, attempt, delay)
                time.sleep(delay)


class _InvocationCredential:
    """What every SDK client holds: the SDK asks it for (secret id, secret key, token) before each request (its
    only use of a credential), and it answers with the cloud's credential of the current invocation."""

    def __init__(self, cloud: TencentCloud) -> None:
        self._cloud = cloud

    def get_credential_info(self) -> tuple[str, str, str | None]:
        info: tuple[str, str, str | None] = self._cloud.credential().get_credential_info()
        return info


def _invoke(client: Any, product: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The SDK call, as its typed method makes it (request model from params, `client.call`, the SDK's status and
    error checks), answering the `Response` object of the JSON body. The typed method's response model is skipped:
    deserialising the body into models and serialising them back to a dict cost more than the HTTP round trip on a
    100-image DescribeImages page (docs/benchmarks.md, "One sweep of 10,000 copies")."""
    models = _MODELS[product]()
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    body = client.call(action, request._serialize(), headers=request.headers)
    answer: dict[str, Any] = json.loads(body)["Response"]
    return answer


def _cvm_client(cred: Any, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.cvm.v20170312.cvm_client import CvmClient

    return CvmClient(cred, region, profile)


def _region_client(cred: Any, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.region.v20220627.region_client import RegionClient

    return RegionClient(cred, region, profile)


def _tag_client(cred: Any, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.tag.v20180813.tag_client import TagClient

    return TagClient(cred, region, profile)


def _scf_client(cred: Any, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.scf.v20180416.scf_client import ScfClient

    return ScfClient(cred, region, profile)


def _eb_client(cred: Any, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.eb.v20210416.eb_client import EbClient

    return EbClient(cred, region, profile)


def _sts_client(cred: Any, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.sts.v20180813.sts_client import StsClient

    return StsClient(cred, region, profile)


def _sts_models() -> Any:
    from tencentcloud.sts.v20180813 import models

    return models


def _cvm_models() -> Any:
    from tencentcloud.cvm.v20170312 import models

    return models


def _region_models() -> Any:
    from tencentcloud.region.v20220627 import models

    return models


def _tag_models() -> Any:
    from tencentcloud.tag.v20180813 import models

    return models


def _scf_models() -> Any:
    from tencentcloud.scf.v20180416 import models

    return models


def _eb_models() -> Any:
    from tencentcloud.eb.v20210416 import models

    return models


# Imported lazily: a function pays only for the products it calls (cold start matters on SCF).
_CLIENT_FACTORIES: dict[str, Callable[[Any, str, ClientProfile], Any]] = {
    "cvm": _cvm_client,
    "region": _region_client,
    "tag": _tag_client,
    "scf": _scf_client,
    "eb": _eb_client,
    "sts": _sts_client,
}
_MODELS: dict[str, Callable[[], Any]] = {
    "cvm": _cvm_models,
    "region": _region_models,
    "tag": _tag_models,
    "scf": _scf_models,
    "eb": _eb_models,
    "sts": _sts_models,
}

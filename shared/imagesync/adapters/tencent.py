"""Tencent Cloud through the official per-product SDK clients: CVM images, the region service, tags, TDMQ.

Clients are made once per region per container and reused; credentials are re-read per invocation (SCF rotates the
role's temporary keys). The SDK's own StandardRetryer is broken (fact sheet, section 4), so the retry loop is ours.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from ..domain.errors import BUSY_CODES, CloudError
from ..domain.models import SourceImage
from ..platform.deadline import time_left

log = logging.getLogger(__name__)

#: Refused before any work was done: always safe to send again.
REFUSED_CODES = ("RequestLimitExceeded", *BUSY_CODES)
#: The request may or may not have been carried out: safe to repeat for reads only.
AMBIGUOUS_CODES = ("InternalError", "ClientNetworkError", "ServerNetworkError")


def is_refused(code: str) -> bool:
    return code.startswith(REFUSED_CODES)


def is_ambiguous(code: str) -> bool:
    return code.startswith(AMBIGUOUS_CODES)


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credential:
    """The function role's keys as SCF injects them, else the SDK's own variable names.

    SCF: TENCENTCLOUD_SECRETID / TENCENTCLOUD_SECRETKEY / TENCENTCLOUD_SESSIONTOKEN (temporary, at most 6 h).
    SDK: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY.
    """
    env = os.environ if environ is None else environ
    secret_id = env.get("TENCENTCLOUD_SECRETID") or env.get("TENCENTCLOUD_SECRET_ID")
    secret_key = env.get("TENCENTCLOUD_SECRETKEY") or env.get("TENCENTCLOUD_SECRET_KEY")
    token = env.get("TENCENTCLOUD_SESSIONTOKEN") or env.get("TENCENTCLOUD_SESSION_TOKEN") or None
    if not secret_id or not secret_key:
        raise CloudError(
            "AuthFailure.NoCredentials",
            "no Tencent Cloud credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY "
            "(SCF injects TENCENTCLOUD_SECRETID/SECRETKEY/SESSIONTOKEN from the function's role)",
        )
    return Credential(secret_id, secret_key, token)


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
        credential_provider: Callable[[], Credential] = credentials_from_env,
        max_attempts: int = 6,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        rates: Mapping[str, float] | None = None,
        timeout: int = 30,
    ) -> None:
        self.endpoint = endpoint
        self._credential_provider = credential_provider
        self._credential: Credential | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._limiters = {action: RateLimiter(rate) for action, rate in (rates or {}).items()}

    def refresh_credentials(self) -> None:
        """Re-read credentials (once per invocation) and hand them to every client already made."""
        self._credential = self._credential_provider()
        with self._lock:
            for client in self._clients.values():
                client.credential = self._credential

    def _profile(self, product: str) -> ClientProfile:
        http = HttpProfile(reqTimeout=self.timeout, keepAlive=True)
        if self.endpoint:
            scheme, _, host = self.endpoint.rpartition("://")
            http.protocol = http.scheme = scheme or "https"
            http.endpoint = host  # a scheme inside endpoint would corrupt the Host header (fact sheet, section 4)
        else:
            http.endpoint = f"{product}.tencentcloudapi.com"
        return ClientProfile(httpProfile=http, language="en-US")

    def client(self, product: str, region: str) -> Any:
        key = (product, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if self._credential is None:
                    self._credential = self._credential_provider()
                client = _CLIENT_FACTORIES[product](self._credential, region, self._profile(product))
                self._clients[key] = client
            return client

    def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> dict[str, Any]:
        """Call `action`, retrying refused requests (and, when `safe`, ambiguous ones) with backoff and jitter.

        Never sleeps past the invocation's deadline. Raises CloudError (retryable=True where a later try may work).
        """
        client = self.client(product, region)
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


def _invoke(client: Any, product: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The typed SDK call: request model from params, response model to a dict."""
    models = _MODELS[product]()
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    response = getattr(client, action)(request)
    return json.loads(response.to_json_string())


def _cvm_client(cred: Credential, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.cvm.v20170312.cvm_client import CvmClient

    return CvmClient(cred, region, profile)


def _region_client(cred: Credential, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.region.v20220627.region_client import RegionClient

    return RegionClient(cred, region, profile)


def _tag_client(cred: Credential, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.tag.v20180813.tag_client import TagClient

    return TagClient(cred, region, profile)


def _tdmq_client(cred: Credential, region: str, profile: ClientProfile) -> Any:
    from tencentcloud.tdmq.v20200217.tdmq_client import TdmqClient

    return TdmqClient(cred, region, profile)


def _cvm_models() -> Any:
    from tencentcloud.cvm.v20170312 import models

    return models


def _region_models() -> Any:
    from tencentcloud.region.v20220627 import models

    return models


def _tag_models() -> Any:
    from tencentcloud.tag.v20180813 import models

    return models


def _tdmq_models() -> Any:
    from tencentcloud.tdmq.v20200217 import models

    return models


# Imported lazily: a function pays only for the products it calls (cold start matters on SCF).
_CLIENT_FACTORIES: dict[str, Callable[[Credential, str, ClientProfile], Any]] = {
    "cvm": _cvm_client,
    "region": _region_client,
    "tag": _tag_client,
    "tdmq": _tdmq_client,
}
_MODELS: dict[str, Callable[[], Any]] = {
    "cvm": _cvm_models,
    "region": _region_models,
    "tag": _tag_models,
    "tdmq": _tdmq_models,
}


def _to_source_image(region: str, raw: dict[str, Any]) -> SourceImage:
    return SourceImage(
        image_id=raw["ImageId"],
        region=region,
        name=raw.get("ImageName") or "",
        image_type=raw.get("ImageType") or "",
        state=raw.get("ImageState") or "",
        size_gb=int(raw.get("ImageSize") or 0),
        tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags") or []},
        created_time=raw.get("CreatedTime"),
        sync_percent=raw.get("SyncPercent"),
    )


class TencentImages:
    """The ImageService port on CVM: DescribeImages, SyncImages, and the region service."""

    PAGE = 100  # DescribeImages' Limit maximum

    def __init__(self, cloud: TencentCloud, *, home_region: str = "ap-guangzhou") -> None:
        self.cloud = cloud
        self.home_region = home_region
        self._regions: frozenset[str] | None = None

    def describe_images(self, region: str, image_ids: Sequence[str]) -> dict[str, SourceImage]:
        found: dict[str, SourceImage] = {}
        ids = list(dict.fromkeys(image_ids))
        for start in range(0, len(ids), self.PAGE):
            chunk = ids[start : start + self.PAGE]
            resp = self.cloud.call(
                "cvm", region, "DescribeImages", {"ImageIds": chunk, "Limit": self.PAGE}, safe=True
            )
            for raw in resp.get("ImageSet") or []:
                found[raw["ImageId"]] = _to_source_image(region, raw)
        return found

    def find_by_name(self, region: str, name: str) -> list[SourceImage]:
        """Custom images named exactly `name` in `region` (the image-name filter is fuzzy: compare ourselves)."""
        params = {
            "Filters": [
                {"Name": "image-name", "Values": [name]},
                {"Name": "image-type", "Values": ["PRIVATE_IMAGE"]},
            ],
            "Limit": self.PAGE,
        }
        resp = self.cloud.call("cvm", region, "DescribeImages", params, safe=True)
        return [
            _to_source_image(region, raw) for raw in resp.get("ImageSet") or [] if raw.get("ImageName") == name
        ]

    def sync_image(
        self, region: str, image_id: str, destinations: Sequence[str], *, name: str | None, dry_run: bool
    ) -> dict[str, str]:
        params: dict[str, Any] = {
            "ImageIds": [image_id],
            "DestinationRegions": list(destinations),
            "ImageSetRequired": True,
        }
        if name:
            params["ImageName"] = name
        if dry_run:
            params["DryRun"] = True
        # Not `safe`: a SyncImages lost in transit may have started copies; the sweep reconciles by name instead.
        resp = self.cloud.call("cvm", region, "SyncImages", params, safe=False)
        return {item["Region"]: item["ImageId"] for item in resp.get("ImageSet") or []}

    def available_regions(self) -> frozenset[str]:
        if self._regions is None:
            resp = self.cloud.call("region", self.home_region, "DescribeRegions", {"Product": "cvm"}, safe=True)
            self._regions = frozenset(
                r["Region"] for r in resp.get("RegionSet") or [] if r.get("RegionState", "AVAILABLE") == "AVAILABLE"
            )
        return self._regions

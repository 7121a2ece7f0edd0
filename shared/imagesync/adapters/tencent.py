"""Tencent Cloud through the official per-product SDK clients: CVM images, the region service, tags, and the
completion links' SCF (async Invoke) and EventBridge (PutEvents).

Clients are made once per region per container and reused; credentials are found per invocation, by the first call
that needs them (SCF rotates the role's temporary keys; commands that only read local state need none), along
CredentialChain. The SDK's own StandardRetryer is broken (docs/facts.md#F-SDK-3), so the retry loop is ours.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tencentcloud.common.credential import Credential, CVMRoleCredential, ProfileCredential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from ..domain.errors import BUSY_CODES, CloudError, CredentialsInvalid, CredentialsNotFound
from ..domain.models import SourceImage
from ..runtime.deadline import time_left

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


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credential | None:
    """The keys in the environment, or None: the function role's as SCF injects them, else the SDK's own names.

    SCF: TENCENTCLOUD_SECRETID / TENCENTCLOUD_SECRETKEY / TENCENTCLOUD_SESSIONTOKEN (temporary, at most 6 h).
    SDK: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (with TENCENTCLOUD_SESSION_TOKEN for temporary keys).
    """
    env = os.environ if environ is None else environ
    secret_id = env.get("TENCENTCLOUD_SECRETID") or env.get("TENCENTCLOUD_SECRET_ID")
    secret_key = env.get("TENCENTCLOUD_SECRETKEY") or env.get("TENCENTCLOUD_SECRET_KEY")
    token = env.get("TENCENTCLOUD_SESSIONTOKEN") or env.get("TENCENTCLOUD_SESSION_TOKEN") or None
    if not secret_id or not secret_key:
        return None
    return Credential(secret_id, secret_key, token)


#: Where a CVM's instance role hands out temporary keys (the SDK's CVMRoleCredential asks the same address).
CVM_ROLE_ENDPOINT = CVMRoleCredential._role_endpoint
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")  # CAM role names


class _InstanceRole(CVMRoleCredential):  # type: ignore[misc]
    """The SDK's CVM role credential (it fetches and renews the role's temporary keys itself, before each request
    once they are within 5 minutes of expiry), asking `endpoint` instead of the fixed metadata address."""

    def __init__(self, role_name: str, endpoint: str) -> None:
        super().__init__(role_name)
        self._role_endpoint = endpoint


class CredentialChain:
    """Finds Tencent Cloud keys the way the official SDK's DefaultCredentialProvider does, imagesync's own
    environment variables first; raises CredentialsNotFound naming every place it looked.

    In order: the environment (credentials_from_env), the SDK's profile file (~/.tencentcloud/credentials, else
    /etc/tencentcloud/credentials, section [default]: the SDK's own ProfileCredential reads it), tccli's credential
    file (~/.tccli/<TCCLI_PROFILE or default>.credential, what `tccli configure` writes), the CVM instance role (the
    metadata service). The SDK's chain ends in TKE's OIDC provider, which raises EnvironmentError("TKE_REGION not
    exist") outside TKE: not used here.

    Called per invocation (SCF rotates the role's keys): the environment and files are read each time; an instance
    role found once is kept (its credential renews itself).
    """

    def __init__(self, *, role_endpoint: str = CVM_ROLE_ENDPOINT, probe_timeout: float = 1.0) -> None:
        self.role_endpoint = role_endpoint
        self.probe_timeout = probe_timeout
        self._role: _InstanceRole | None = None

    def __call__(self) -> Any:
        found = credentials_from_env()
        if found is None:
            found = self._sdk_profile() or self._tccli_profile() or self._instance_role()
        if found is None:
            looked = [
                "environment: TENCENTCLOUD_SECRETID/SECRETKEY (SCF), TENCENTCLOUD_SECRET_ID/SECRET_KEY",
                *_sdk_profile_paths(),
                str(_tccli_path()),
                f"CVM instance role at {self.role_endpoint}",
            ]
            raise CredentialsNotFound(
                "no Tencent Cloud credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, run `tccli "
                "configure`, or run on a CVM with a role; looked in: " + "; ".join(looked),
                looked=looked,
            )
        return found

    @staticmethod
    def _sdk_profile() -> Credential | None:
        paths = [p for p in _sdk_profile_paths() if os.path.exists(p)]
        if not paths:
            return None
        try:
            return ProfileCredential().get_credential()
        except Exception as exc:  # the SDK raises AttributeError for a file without [default], configparser errors
            raise CredentialsInvalid(
                f"{paths[0]}: not a Tencent Cloud profile file ([default] with secret_id and secret_key): {exc}",
                path=paths[0],
            ) from exc

    def _tccli_profile(self) -> Any:
        path = _tccli_path()
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise CredentialsInvalid(f"{path}: not tccli's credential file: {exc}", path=str(path)) from exc
        if data.get("type") == "cvm-role":  # `tccli configure set use-cvm-role true`
            return self._instance_role()
        secret_id, secret_key = data.get("secretId"), data.get("secretKey")
        if not secret_id or not secret_key:
            return None
        return Credential(str(secret_id), str(secret_key), data.get("token") or None)

    def _instance_role(self) -> _InstanceRole | None:
        if self._role is not None:
            return self._role
        # The SDK asks the metadata service without a timeout and swallows every error: ask once, briefly, first.
        try:
            with urllib.request.urlopen(self.role_endpoint, timeout=self.probe_timeout) as resp:
                role_name = resp.read(256).decode("utf-8", "replace").strip()
        except (OSError, ValueError):  # no metadata service here (URLError, timeouts and refusals are OSErrors)
            return None
        if not _ROLE_NAME.match(role_name):
            return None  # no role bound to this instance (or not a metadata service that answered)
        role = _InstanceRole(role_name, self.role_endpoint)
        secret_id, secret_key, token = role.get_credential_info()
        if not (secret_id and secret_key and token):
            raise CredentialsInvalid(
                f"the CVM instance role {role_name} gave no temporary keys at {self.role_endpoint}{role_name}",
                role=role_name,
            )
        self._role = role
        return role


def _sdk_profile_paths() -> list[str]:
    """The SDK's profile files, in the order its ProfileCredential tries them (the first that exists is read)."""
    return [os.path.expanduser("~/.tencentcloud/credentials"), "/etc/tencentcloud/credentials"]


def _tccli_path() -> Path:
    profile = os.environ.get("TCCLI_PROFILE") or "default"
    return Path(os.path.expanduser("~")) / ".tccli" / f"{profile}.credential"


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
        key = (product, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = _CLIENT_FACTORIES[product](_InvocationCredential(self), region, self._profile(product))
                self._clients[key] = client
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
        return self._cloud.credential().get_credential_info()  # type: ignore[no-any-return]


def _invoke(client: Any, product: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The typed SDK call: request model from params, response model to a dict."""
    models = _MODELS[product]()
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    response = getattr(client, action)(request)
    answer: dict[str, Any] = json.loads(response.to_json_string())
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
}
_MODELS: dict[str, Callable[[], Any]] = {
    "cvm": _cvm_models,
    "region": _region_models,
    "tag": _tag_models,
    "scf": _scf_models,
    "eb": _eb_models,
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
        family=raw.get("ImageFamily") or None,
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

    def list_custom_images(
        self, region: str, *, tags: dict[str, str] | None = None, tag_key: str | None = None, limit: int = 10000
    ) -> list[SourceImage]:
        """PRIVATE_IMAGE images in `region`, paged by Offset/Limit 100 (docs/facts.md#F-IMG-1).

        Tag conditions become `tag:<key>` / `tag-key` filters (at most 10 filters in all: the rest is left to the
        caller's exact match). Pages are read until one comes back short or `limit` images are read.
        """
        filters: list[dict[str, Any]] = [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}]
        for key, value in list((tags or {}).items())[:8]:
            filters.append({"Name": f"tag:{key}", "Values": [value]})
        if tag_key:
            filters.append({"Name": "tag-key", "Values": [tag_key]})
        out: list[SourceImage] = []
        offset = 0
        while len(out) < limit:
            params = {"Filters": filters, "Offset": offset, "Limit": self.PAGE}
            resp = self.cloud.call("cvm", region, "DescribeImages", params, safe=True)
            page = resp.get("ImageSet") or []
            out.extend(_to_source_image(region, raw) for raw in page)
            offset += len(page)
            if len(page) < self.PAGE or offset >= int(resp.get("TotalCount") or 0):
                break
        return out[:limit]

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

    # -- added for encrypted copies and the quota check (issue 6) ---------------------------------------------

    def encrypt_image(self, region: str, image_id: str, *, kms_key_id: str, name: str | None) -> str:
        """A same-region SyncImages with Encrypt and KmsKeyId (the only way to encrypt a copy: an encrypted copy
        may only target its source's region); returns the encrypted copy's image id."""
        params: dict[str, Any] = {
            "ImageIds": [image_id],
            "DestinationRegions": [region],
            "ImageSetRequired": True,
            "Encrypt": True,
            "KmsKeyId": kms_key_id,
        }
        if name:
            params["ImageName"] = name
        # Not `safe`, like sync_image: a lost answer may have started the copy (the starter adopts it by name).
        resp = self.cloud.call("cvm", region, "SyncImages", params, safe=False)
        for item in resp.get("ImageSet") or []:
            if item.get("Region") == region:
                return str(item["ImageId"])
        raise CloudError("Copy.NoImageId", f"SyncImages returned no image id for {region}", retryable=True)

    def image_quota(self, region: str) -> tuple[int, int]:
        """(quota, used) in `region`: DescribeImageQuota's ImageNumQuota, and the TotalCount of the account's
        custom images there (DescribeImages with the image-type filter, Limit 1: one call, any number of images)."""
        quota = self.cloud.call("cvm", region, "DescribeImageQuota", {}, safe=True)
        listed = self.cloud.call(
            "cvm",
            region,
            "DescribeImages",
            {"Filters": [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}], "Limit": 1},
            safe=True,
        )
        return int(quota.get("ImageNumQuota") or 0), int(listed.get("TotalCount") or 0)


def image_resource(region: str, uin: str, image_id: str) -> str:
    """The tag service's six-segment name of a CVM image."""
    return f"qcs::cvm:{region}:uin/{uin}:image/{image_id}"


class TencentImageAdmin:
    """The ImageAdmin port (what hooks do to a finished copy) on CVM and the tag service.

    `uin` is the account's own uin (TENCENTCLOUD_UIN on SCF, or IMAGESYNC_UIN): the tag service names an image
    by it. Tagging without one raises CloudError("Tag.NoAccountUin").
    """

    TAGS_PER_CALL = 10  # TagResources: at most 10 tags per request
    DELETE_PER_CALL = 10  # DeleteImages: at most 10 images per request
    PAGE = 100  # DescribeInstances' Limit maximum

    def __init__(self, cloud: TencentCloud, *, uin: str = "", home_region: str = "ap-guangzhou") -> None:
        self.cloud = cloud
        self.uin = uin
        self.home_region = home_region

    def tag_image(self, region: str, image_id: str, tags: dict[str, str]) -> None:
        if not self.uin:
            raise CloudError(
                "Tag.NoAccountUin", "the account's uin is unknown: set IMAGESYNC_UIN (SCF sets TENCENTCLOUD_UIN)"
            )
        items = [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())]
        resource = image_resource(region, self.uin, image_id)
        for start in range(0, len(items), self.TAGS_PER_CALL):
            # Setting a tag to the value it has is a no-op: safe to repeat.
            self.cloud.call(
                "tag", self.home_region, "TagResources",
                {"ResourceList": [resource], "Tags": items[start : start + self.TAGS_PER_CALL]}, safe=True,
            )

    def share_image(self, region: str, image_id: str, account_ids: Sequence[str]) -> list[str]:
        # Sharing with an account already shared with is refused (FailedOperation.AccountAlreadyExists) for the
        # whole call, so ask first and share only the missing ones: repeated runs converge.
        resp = self.cloud.call("cvm", region, "DescribeImageSharePermission", {"ImageId": image_id}, safe=True)
        already = {str(p.get("AccountId")) for p in resp.get("SharePermissionSet") or []}
        missing = [a for a in dict.fromkeys(account_ids) if a not in already]
        if missing:
            try:
                self.cloud.call(
                    "cvm", region, "ModifyImageSharePermission",
                    {"ImageId": image_id, "AccountIds": missing, "Permission": "SHARE"}, safe=True,
                )
            except CloudError as exc:
                # Shared meanwhile: by this call itself when its answer was lost and the retry met the share, or
                # by a concurrent run of the same hook. The effect wanted is there; share what is still missing.
                if exc.cloud_code != "FailedOperation.AccountAlreadyExists":
                    raise
                resp = self.cloud.call(
                    "cvm", region, "DescribeImageSharePermission", {"ImageId": image_id}, safe=True
                )
                now_shared = {str(p.get("AccountId")) for p in resp.get("SharePermissionSet") or []}
                rest = [a for a in missing if a not in now_shared]
                if rest:
                    self.cloud.call(
                        "cvm", region, "ModifyImageSharePermission",
                        {"ImageId": image_id, "AccountIds": rest, "Permission": "SHARE"}, safe=True,
                    )
        return missing

    def run_instances(self, region: str, image_id: str, spec: dict[str, Any], *, client_token: str) -> list[str]:
        params = {**spec, "ImageId": image_id, "ClientToken": client_token}
        # `safe`: the ClientToken makes the cloud answer a repeat with the first call's instances.
        resp = self.cloud.call("cvm", region, "RunInstances", params, safe=True)
        return [str(i) for i in resp.get("InstanceIdSet") or []]

    def instances_using(self, region: str, image_id: str) -> list[str]:
        # DescribeInstances has no image-id filter (docs/facts.md#F-IMG-3: zone, instance-id, vpc-id, ... only),
        # so every instance of the region is listed, 100 per page, and compared here.
        found: list[str] = []
        offset = 0
        while True:
            resp = self.cloud.call(
                "cvm", region, "DescribeInstances", {"Offset": offset, "Limit": self.PAGE}, safe=True
            )
            page = resp.get("InstanceSet") or []
            found += [str(i["InstanceId"]) for i in page if i.get("ImageId") == image_id]
            offset += len(page)
            if not page or offset >= int(resp.get("TotalCount") or 0):
                return found

    def delete_images(self, region: str, image_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(image_ids))
        for start in range(0, len(ids), self.DELETE_PER_CALL):
            self.cloud.call(
                "cvm", region, "DeleteImages", {"ImageIds": ids[start : start + self.DELETE_PER_CALL]}, safe=False
            )

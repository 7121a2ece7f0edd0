"""The Accounts port on Tencent Cloud: share the source with another account, and act in that account through a
CAM role it lets imagesync assume (sts AssumeRole, docs/facts.md#F-ACCT-2).

The assumed keys are cached per (account, role) in the container, reused by warm invocations, and renewed when
they are within RENEW_BEFORE of their ExpiredTime: every SDK client of the account's cloud asks the credential
for its keys before each request, so a renewal reaches clients already made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..domain.accounts import role_arn
from ..ports import ImageService
from .cvm import TencentImageAdmin, TencentImages
from .tencent import TencentCloud

#: renew assumed keys this long before they expire (a SyncImages signed near the end must not be refused)
RENEW_BEFORE = 300.0
#: how long the assumed keys are asked for (sts AssumeRole's default, 2 h; at most 43200 s)
DURATION_SECONDS = 7200
SESSION_NAME = "imagesync"


class AssumedRoleCredential:
    """Temporary keys of `role` in `account`, from sts AssumeRole made with imagesync's own keys; renewed on use
    when they are about to expire. Thread-safe."""

    def __init__(
        self, base: TencentCloud, account: str, role: str, *, region: str, now: Callable[[], float] = time.time
    ) -> None:
        self.base = base
        self.arn = role_arn(account, role)
        self.region = region
        self._now = now
        self._keys: tuple[str, str, str] | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        #: how many times AssumeRole was called (tests: keys are cached)
        self.assumed = 0

    def get_credential_info(self) -> tuple[str, str, str]:
        with self._lock:
            if self._keys is None or self._now() >= self._expires - RENEW_BEFORE:
                resp = self.base.call(
                    "sts",
                    self.region,
                    "AssumeRole",
                    {"RoleArn": self.arn, "RoleSessionName": SESSION_NAME, "DurationSeconds": DURATION_SECONDS},
                    safe=True,
                )
                creds = resp["Credentials"]
                self._keys = (str(creds["TmpSecretId"]), str(creds["TmpSecretKey"]), str(creds["Token"]))
                expired = resp.get("ExpiredTime")
                self._expires = float(expired) if expired else self._now() + DURATION_SECONDS
                self.assumed += 1
            return self._keys


class _AssumedCloud(TencentCloud):
    """A TencentCloud signing with an assumed role's keys. The keys are fetched (or renewed) by credential(), which
    call() runs before the SDK's: an AssumeRole refusal surfaces as its own CloudError, not as a failure of the
    call that needed the keys (the SDK's clients wrap any exception of a credential in their own)."""

    def __init__(self, cred: AssumedRoleCredential, base: TencentCloud) -> None:
        super().__init__(
            endpoint=base.endpoint,
            credential_provider=lambda: cred,
            max_attempts=base.max_attempts,
            base_delay=base.base_delay,
            max_delay=base.max_delay,
            timeout=base.timeout,
        )
        self.assumed_credential = cred

    def credential(self) -> Any:
        self.assumed_credential.get_credential_info()
        return self.assumed_credential


class TencentAccounts:
    """Accounts on CVM: sharing through the own ImageAdmin, the other account's images through its assumed role."""

    def __init__(self, base: TencentCloud, admin: TencentImageAdmin, *, home_region: str) -> None:
        self.base = base
        self.admin = admin
        self.home_region = home_region
        self._images: dict[tuple[str, str], TencentImages] = {}
        self._lock = threading.Lock()

    def share(self, region: str, image_id: str, account: str) -> None:
        self.admin.share_image(region, image_id, [account])

    def credential(self, account: str, role: str) -> AssumedRoleCredential:
        return self._cloud(account, role)[1]

    def _cloud(self, account: str, role: str) -> tuple[TencentImages, AssumedRoleCredential]:
        key = (account, role)
        with self._lock:
            images = self._images.get(key)
            if images is None:
                cred = AssumedRoleCredential(self.base, account, role, region=self.home_region)
                images = TencentImages(_AssumedCloud(cred, self.base), home_region=self.home_region)
                self._images[key] = images
            cloud = images.cloud
            assert isinstance(cloud, _AssumedCloud)
            return images, cloud.assumed_credential

    def images(self, account: str, role: str) -> ImageService:
        return self._cloud(account, role)[0]

"""Where imagesync finds Tencent Cloud keys (CredentialChain), in the order the CLI's Credentials.NotFound lists:
the environment (SCF's role keys, or the SDK's own names), the SDK's profile files, tccli's profile, the CVM
instance role. Read by TencentCloud on the first call that needs keys, once per invocation."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tencentcloud.common.credential import Credential, CVMRoleCredential, ProfileCredential

from ..domain.errors import CredentialsInvalid, CredentialsNotFound


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

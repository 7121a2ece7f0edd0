"""Accounts and their credentials: long-term keys, and temporary keys that need their X-TC-Token."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

TEMP_KEY_LIFETIME_S = 6 * 3600  # real seconds; SCF role keys live at most 6 h


@dataclass
class Account:
    """One Tencent Cloud account (a root uin with one long-term API key)."""

    name: str
    uin: str
    app_id: int
    secret_id: str
    secret_key: str
    cross_border_approved: bool = False
    image_quota: int = 500  # custom images per region (every region without an override)
    region_image_quotas: dict[str, int] = field(default_factory=dict)  # region -> quota (admin.set_image_quota)

    def public(self) -> dict:
        return {
            "name": self.name,
            "uin": self.uin,
            "app_id": self.app_id,
            "secret_id": self.secret_id,
            "secret_key": self.secret_key,
        }


@dataclass(frozen=True)
class Credential:
    """What a SecretId resolves to. ``token`` is None for long-term keys."""

    account: Account
    secret_key: str
    token: str | None = None
    expires_at: float | None = None  # real epoch seconds
    role_name: str | None = None  # set on keys sts AssumeRole issued: the role assumed
    session_name: str | None = None


@dataclass
class CredentialStore:
    """SecretId -> Credential, thread-safe."""

    _by_id: dict[str, Credential] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_account(self, account: Account) -> None:
        with self._lock:
            self._by_id[account.secret_id] = Credential(account, account.secret_key)

    def lookup(self, secret_id: str) -> Credential | None:
        with self._lock:
            return self._by_id.get(secret_id)

    def issue_temporary(
        self,
        account: Account,
        lifetime_s: float = TEMP_KEY_LIFETIME_S,
        *,
        role_name: str | None = None,
        session_name: str | None = None,
    ) -> dict:
        """A new temporary key for ``account``: {"secret_id", "secret_key", "token", "expires_at"}. Calls signed
        with it act as ``account`` (and, when issued by AssumeRole, name ``role_name`` in CloudAudit)."""
        sid = "AKIDEMUTMP" + secrets.token_hex(13).upper()
        skey = "emulator-temp-key-not-real-" + secrets.token_hex(8)
        token = "emulator-token-" + secrets.token_hex(24)
        expires = time.time() + lifetime_s
        with self._lock:
            self._by_id[sid] = Credential(account, skey, token, expires, role_name, session_name)
        return {"secret_id": sid, "secret_key": skey, "token": token, "expires_at": expires}

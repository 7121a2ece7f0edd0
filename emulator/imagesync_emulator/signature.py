"""TC3-HMAC-SHA256, the Tencent Cloud API 3.0 signature: verify (server side) and sign (test/bench clients).

Pure functions, no I/O. The canonical request follows the official SDK (``common/abstract_client.py``):
method, URI, query, ``<header>:<value>\\n`` for every signed header (names and values lowercased and stripped, as
the signature docs say), the signed header list, and the hex SHA-256 of the body (or of ``UNSIGNED-PAYLOAD``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

ALGORITHM = "TC3-HMAC-SHA256"
_AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)


@dataclass(frozen=True)
class Authorization:
    """The parsed ``Authorization`` header."""

    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """Parse ``TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=..., Signature=...``.

    Returns None when the header is not in that form.
    """
    m = _AUTH_RE.match(value.strip())
    if not m:
        return None
    parts = m.group("cred").split("/")
    if len(parts) != 4 or parts[3] != "tc3_request" or not all(parts):
        return None
    signed = tuple(h.strip().lower() for h in m.group("signed").split(";") if h.strip())
    return Authorization(parts[0], parts[1], parts[2], signed, m.group("sig").lower())


def utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")


def canonical_request(
    method: str, uri: str, query: str, headers: dict[str, str], signed_headers: tuple[str, ...], payload: bytes
) -> str:
    """``headers`` maps lowercase names to values as received; ``payload`` is the raw body."""
    canon_headers = "".join(f"{h}:{headers.get(h, '').strip().lower()}\n" for h in signed_headers)
    if headers.get("x-tc-content-sha256", "").strip() == "UNSIGNED-PAYLOAD":
        payload = b"UNSIGNED-PAYLOAD"
    payload_hash = hashlib.sha256(payload).hexdigest()
    return "\n".join([method, uri, query, canon_headers, ";".join(signed_headers), payload_hash])


#: ``host:port`` (a name, an IPv4 address or a bracketed IPv6 address, then digits), and nothing else: a Host
#: carrying a scheme (tccli's ``http://HOST:PORT``) is only ever signed as received.
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]\s]+):(?P<port>[0-9]{1,5})")


def signed_host_forms(host: str) -> tuple[str, ...]:
    """The ``host`` values a client may have signed for this Host header: as received, and without its port.

    Tencent's API is always on port 443, where no client sends a port, so SDKs disagree on it unseen: the Python
    SDK signs its endpoint as given (port included), the Node.js SDK signs ``URL.hostname`` (no port) while it
    sends ``URL.host`` (with the port). An emulator on any other port must accept both; any other host fails.
    """
    m = _HOST_PORT.fullmatch(host.strip())
    return (host, m.group("host")) if m else (host,)


def verify(
    secret_key: str,
    auth: Authorization,
    timestamp: str,
    method: str,
    uri: str,
    query: str,
    headers: dict[str, str],
    payload: bytes,
) -> bool:
    """Whether ``auth.signature`` signs this request (``headers``: lowercase names, values as received), over the
    Host header as received or without its port (signed_host_forms)."""
    for host in signed_host_forms(headers.get("host", "")):
        canon = canonical_request(method, uri, query, {**headers, "host": host}, auth.signed_headers, payload)
        if hmac.compare_digest(signature(secret_key, auth.date, auth.service, timestamp, canon), auth.signature):
            return True
    return False


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signature(secret_key: str, date: str, service: str, timestamp: str, canonical: str) -> str:
    """The hex signature over ``canonical`` (a canonical request string)."""
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_request(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    action: str,
    version: str,
    host: str,
    params: dict | None = None,
    body: bytes | None = None,
    region: str | None = None,
    token: str | None = None,
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a signed POST, exactly as the official SDK builds them (for raw-protocol clients)."""
    if body is None:
        body = json.dumps(params or {}).encode("utf-8")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    date = utc_date(ts)
    headers = {
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(ts),
    }
    if region:
        headers["X-TC-Region"] = region
    if token:
        headers["X-TC-Token"] = token
    signed = ("content-type", "host")
    canon = canonical_request("POST", "/", "", {"content-type": content_type, "host": host}, signed, body)
    sig = signature(secret_key, date, service, str(ts), canon)
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={sig}"
    )
    return headers, body

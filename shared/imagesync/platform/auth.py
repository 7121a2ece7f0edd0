"""Who may call copy_request's HTTP API: a bearer token or an HMAC request signature, checked in constant time.

Contract:

- `Authorization: Bearer <token>` is accepted when it equals the configured token (IMAGESYNC_API_TOKEN).
- `Authorization: Basic <base64 user:password>` is accepted when the password equals that token, whatever the user
  name: what a browser sends for the status page after its login prompt.
- `X-Imagesync-Signature: sha256=<hex>` with `X-Imagesync-Timestamp: <unix seconds>` is accepted when the hex is
  HMAC-SHA256(IMAGESYNC_API_HMAC_SECRET, "<timestamp>\\n<METHOD>\\n<path>\\n" + body bytes) and the timestamp is
  within `MAX_SKEW_SECONDS` of now (either way). The query string is not signed (it only selects what a GET reads).
- With neither credential configured every request is refused, unless `mode` is "none" (opened on purpose):
  an unconfigured deployment is closed, not open.

Pure: no settings, clock or event is read here; the caller passes them in, so unit tests need nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from ..domain.errors import ImageSyncError

SIGNATURE_HEADER = "x-imagesync-signature"
TIMESTAMP_HEADER = "x-imagesync-timestamp"
#: how far a signed request's timestamp may be from the server's clock (replays older than this are refused)
MAX_SKEW_SECONDS = 300


class Unauthorized(ImageSyncError):
    """Missing or bad credentials (HTTP 401). Subclasses say which, with a stable code; none names the secret."""

    code = "Auth.Required"
    kind = "unauthorized"


class CredentialsInvalid(Unauthorized):
    code = "Auth.Invalid"


class SignatureExpired(Unauthorized):
    code = "Auth.SignatureExpired"


class AuthNotConfigured(Unauthorized):
    code = "Auth.NotConfigured"


@dataclass(frozen=True)
class AuthConfig:
    """What the API accepts; empty strings mean "this method is off"."""

    token: str = ""
    hmac_secret: str = ""
    mode: str = "required"  # "required" | "none"

    @property
    def open(self) -> bool:
        return self.mode == "none"


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The X-Imagesync-Signature value a client sends: "sha256=<hex>"."""
    message = f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def authenticate(
    config: AuthConfig, headers: Mapping[str, str], method: str, path: str, body: bytes, now: float
) -> str:
    """The principal ("bearer", "basic", "hmac" or "anonymous" when open) of a request, or raises an `Unauthorized`.

    `headers` must have lower-case names (the HTTP normaliser's output).
    """
    if config.open:
        return "anonymous"
    if not config.token and not config.hmac_secret:
        raise AuthNotConfigured(
            "the API has no credentials configured: set IMAGESYNC_API_TOKEN or IMAGESYNC_API_HMAC_SECRET"
        )
    authorization = headers.get("authorization", "").strip()
    signature = headers.get(SIGNATURE_HEADER, "").strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer":
        if not config.token:
            raise CredentialsInvalid("bearer tokens are not accepted by this deployment")
        # compare_digest on bytes: constant time whatever the inputs (str needs ASCII, a client may send anything)
        if not hmac.compare_digest(token.strip().encode(), config.token.encode()):
            raise CredentialsInvalid("the bearer token is not valid")
        return "bearer"
    if scheme.lower() == "basic":
        if not config.token:
            raise CredentialsInvalid("HTTP Basic (the API token as the password) is not accepted by this deployment")
        try:
            _, _, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            raise CredentialsInvalid("the Basic credentials are not base64 of user:password") from None
        if not hmac.compare_digest(password, config.token.encode()):
            raise CredentialsInvalid("the Basic password is not the API token")
        return "basic"
    if signature:
        if not config.hmac_secret:
            raise CredentialsInvalid("request signatures are not accepted by this deployment")
        timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise CredentialsInvalid(f"{TIMESTAMP_HEADER} must be the request time in unix seconds") from None
        if abs(now - sent_at) > MAX_SKEW_SECONDS:
            raise SignatureExpired(f"the request was signed more than {MAX_SKEW_SECONDS} s from the server's time")
        expected = sign(config.hmac_secret, timestamp, method, path, body)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise CredentialsInvalid("the request signature does not match")
        return "hmac"
    if authorization:
        raise CredentialsInvalid("the Authorization header is neither a bearer token nor HTTP Basic")
    raise Unauthorized("credentials required: Authorization: Bearer <token> or X-Imagesync-Signature")

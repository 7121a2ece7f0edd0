"""Webhook delivery: a JSON POST signed with HMAC-SHA256 over the exact body bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import requests

SIGNATURE_HEADER = "X-Imagesync-Signature"
EVENT_HEADER = "X-Imagesync-Event"


class WebhookError(Exception):
    """A delivery that did not get a 2xx answer in time; the queue's redelivery retries it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: "sha256=" + hex HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers: constant-time check of the signature header."""
    return hmac.compare_digest(sign(secret, body), header or "")


class WebhookSender:
    def __init__(self, url: str, secret: str, *, timeout: float = 5.0, session: requests.Session | None = None):
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, event: str, payload: dict[str, Any]) -> int:
        """POST `payload`; returns the HTTP status, raises WebhookError unless it is 2xx."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", EVENT_HEADER: event}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        try:
            response = self.session.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.Timeout as exc:
            raise WebhookError("Webhook.Timeout", f"no answer from the webhook within {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise WebhookError("Webhook.Unreachable", type(exc).__name__) from exc
        if not 200 <= response.status_code < 300:
            raise WebhookError("Webhook.BadStatus", f"the webhook answered HTTP {response.status_code}")
        return response.status_code

"""Webhook delivery: a JSON POST signed with HMAC-SHA256 over the exact body bytes, in imagesync's own JSON or
as a ready-made WeCom, DingTalk or Slack robot message.

Formats (bodies as the robots' public docs give them):

* ``json``: the completion payload itself; ``X-Imagesync-Signature: sha256=<hex>`` over the body.
* ``wecom``: WeCom group robot, ``{"msgtype": "markdown", "markdown": {"content": ...}}`` (content at most 4096
  bytes); the robot answers HTTP 200 with ``{"errcode": 0}`` on success, a non-zero errcode otherwise.
* ``dingtalk``: DingTalk custom robot, ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; with a secret,
  the robot's own signature ("加签") is added to the URL: ``timestamp`` (ms) and ``sign`` = urlencoded
  base64(HMAC-SHA256(secret, "<timestamp>\n<secret>")). Also answers ``{"errcode": 0}``.
* ``slack``: Slack incoming webhook, ``{"text": <fallback>, "blocks": [section with mrkdwn]}``; answers ``ok``.

Every format also carries the ``X-Imagesync-Signature`` header when a secret is set (robots ignore it), and
``X-Imagesync-Delivery``: an id stable across retries of the same delivery, for receivers to deduplicate on (a crash
after the POST and before its record re-sends it: delivery is at least once, the effect is once at a receiver that
keeps the ids it has seen).

Targets (no SSRF): a webhook URL must be https and its host must resolve only to public addresses -- not private
(10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local (169.254/16 with Tencent's metadata service at
169.254.0.23, fe80::/10), CGNAT (100.64/10), multicast, reserved or unspecified ones -- unless ``allow_private``
(IMAGESYNC_WEBHOOK_ALLOW_PRIVATE, for local receivers and tests) is set, which also allows plain http. The check runs
before each send (the name is resolved then) and again on the connected socket's peer address, so a name that
resolves to a public address for the check and to a private one for the connection (DNS rebinding) is refused too.
Redirects are not followed (a 3xx is a failed delivery): a public target cannot bounce the POST inward.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

FORMATS = ("json", "wecom", "dingtalk", "slack")
WECOM_MAX_BYTES = 4096

SIGNATURE_HEADER = "X-Imagesync-Signature"
EVENT_HEADER = "X-Imagesync-Event"
DELIVERY_HEADER = "X-Imagesync-Delivery"


class WebhookError(Exception):
    """A delivery that did not get a 2xx answer in time; the queue's redelivery retries it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class WebhookTargetRefused(WebhookError):
    """The target is not allowed (not https, or a private/loopback/link-local address): never sent."""

    def __init__(self, message: str) -> None:
        super().__init__("Webhook.TargetRefused", message)


Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def forbidden_address(address: str) -> str | None:
    """Why `address` (an IP literal, IPv6 scope allowed) may not be a webhook target, or None when it is public.
    An IPv4-mapped IPv6 address is judged as the IPv4 address it maps."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"{ip} is a {label} address"
    if not ip.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT), which is neither private nor global
        return f"{ip} is not a public address"
    return None


def check_target(url: str, *, allow_private: bool = False, resolve: Resolver = _resolve) -> None:
    """Refuse (WebhookTargetRefused) a webhook URL that is not https or whose host resolves to any non-public
    address; `allow_private` allows both. An unresolvable host raises WebhookError("Webhook.Unreachable")."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise WebhookTargetRefused(f"a webhook URL must be https, not {scheme or 'without a scheme'}")
    if scheme != "https" and not allow_private:
        raise WebhookTargetRefused("a webhook URL must be https (IMAGESYNC_WEBHOOK_ALLOW_PRIVATE allows http)")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a malformed port
        raise WebhookTargetRefused(f"a malformed webhook URL: {exc}") from None
    if not host:
        raise WebhookTargetRefused("a webhook URL needs a host")
    if allow_private:
        return
    try:
        addresses = resolve(host, port or (443 if scheme == "https" else 80))
    except OSError as exc:
        raise WebhookError("Webhook.Unreachable", f"the webhook host {host} does not resolve ({exc})") from None
    if not addresses:
        raise WebhookError("Webhook.Unreachable", f"the webhook host {host} does not resolve")
    for address in addresses:
        why = forbidden_address(address)
        if why:
            raise WebhookTargetRefused(
                f"the webhook host {host} resolves to {why} (IMAGESYNC_WEBHOOK_ALLOW_PRIVATE allows it)"
            )


def _check_peer(sock: socket.socket) -> None:
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return  # not connected: the request fails on its own
    why = forbidden_address(str(peer))
    if why:
        sock.close()
        raise WebhookTargetRefused(f"the webhook connection reached {why}")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every new connection checks the peer address it reached (DNS rebinding).
    Connections through a proxy are not covered (the peer is the proxy); check_target still vets the name."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: "sha256=" + hex HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers: constant-time check of the signature header."""
    return hmac.compare_digest(sign(secret, body), header or "")


def summary_lines(payload: dict[str, Any]) -> tuple[str, list[str]]:
    """(title, lines) of a replica end for the chat robots' messages."""
    state = str(payload.get("state") or "?")
    title = f"imagesync: {payload.get('source_image_id')} -> {payload.get('destination_region')} {state}"
    lines = [
        f"image: {payload.get('image_name')} ({payload.get('source_image_id')}, {payload.get('source_region')})",
        f"copy: {payload.get('destination_image_id') or '-'} in {payload.get('destination_region')}",
        f"state: {state}",
        f"replication: {payload.get('replication_id')} / replica {payload.get('replica_id')}",
    ]
    if payload.get("error_code"):
        lines.append(f"error: {payload.get('error_code')}: {payload.get('error_message') or ''}")
    if payload.get("started_at") and payload.get("ended_at"):
        lines.append(f"started {payload['started_at']}, ended {payload['ended_at']}")
    return title, lines


def render(fmt: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of `payload` in format `fmt` (see the module docstring). Raises ValueError on another fmt."""
    if fmt == "json":
        return payload
    title, lines = summary_lines(payload)
    if fmt == "wecom":
        color = "info" if payload.get("state") == "SUCCEEDED" else "warning"
        content = f"**{title}**\n" + "\n".join(f"> {line}" for line in lines[1:])
        state = payload.get("state")
        content = content.replace(f"state: {state}", f'state: <font color="{color}">{state}</font>')
        encoded = content.encode()
        if len(encoded) > WECOM_MAX_BYTES:  # the robot refuses longer markdown
            content = encoded[: WECOM_MAX_BYTES - 3].decode(errors="ignore") + "..."
        return {"msgtype": "markdown", "markdown": {"content": content}}
    if fmt == "dingtalk":
        text = f"#### {title}\n\n" + "\n".join(f"- {line}" for line in lines)
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    if fmt == "slack":
        text = f"*{title}*\n" + "\n".join(f"• {line}" for line in lines)
        return {"text": title, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    raise ValueError(f"unknown webhook format {fmt!r}: one of {', '.join(FORMATS)}")


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """`url` with DingTalk's robot signature ("加签"): timestamp and sign query parameters."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign_value = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={sign_value}"


class WebhookSender:
    """POSTs one message per call in `fmt` (json | wecom | dingtalk | slack); raises WebhookError on failure."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        fmt: str = "json",
        wall_clock: Callable[[], float] = time.time,
        allow_private: bool = False,
        resolve: Resolver = _resolve,
    ):
        if fmt not in FORMATS:
            raise ValueError(f"unknown webhook format {fmt!r}: one of {', '.join(FORMATS)}")
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.session = session or requests.Session()
        self.fmt = fmt
        self._wall_clock = wall_clock  # DingTalk checks the timestamp against real time (within an hour)
        #: IMAGESYNC_WEBHOOK_ALLOW_PRIVATE: plain http and private/loopback/link-local targets (local use, tests)
        self.allow_private = allow_private
        self._resolve = resolve
        if not allow_private:
            guard = GuardedAdapter()
            self.session.mount("https://", guard)
            self.session.mount("http://", guard)

    def send(self, event: str, payload: dict[str, Any], *, delivery_id: str | None = None) -> int:
        """POST `payload` in this sender's format; returns the HTTP status, raises WebhookError unless it is 2xx
        (and, for WeCom and DingTalk, unless the answer's errcode is 0). A target check_target refuses raises
        WebhookTargetRefused before anything is sent. `delivery_id` (stable across retries of one delivery) goes
        out as X-Imagesync-Delivery."""
        check_target(self.url, allow_private=self.allow_private, resolve=self._resolve)
        body = json.dumps(render(self.fmt, event, payload), separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", EVENT_HEADER: event}
        if delivery_id:
            headers[DELIVERY_HEADER] = delivery_id
        url = self.url
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
            if self.fmt == "dingtalk":
                url = dingtalk_signed_url(url, self.secret, int(self._wall_clock() * 1000))
        try:
            # no redirects: a public target must not bounce the POST to an address check_target would refuse
            response = self.session.post(url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout as exc:
            raise WebhookError("Webhook.Timeout", f"no answer from the webhook within {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise WebhookError("Webhook.Unreachable", type(exc).__name__) from exc
        if not 200 <= response.status_code < 300:
            raise WebhookError("Webhook.BadStatus", f"the webhook answered HTTP {response.status_code}")
        if self.fmt in ("wecom", "dingtalk"):
            # these robots answer HTTP 200 even when they refuse the message: the errcode says
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            errcode = answer.get("errcode", 0) if isinstance(answer, dict) else 0
            if errcode not in (0, "0"):
                raise WebhookError("Webhook.Refused", f"the robot answered errcode {errcode}: {answer.get('errmsg')}")
        return response.status_code


class HttpWebhooks:
    """The WebhookPoster port (imagesync.ports): one WebhookSender per message, with this deployment's timeout and
    target policy (IMAGESYNC_WEBHOOK_TIMEOUT_SECONDS, IMAGESYNC_WEBHOOK_ALLOW_PRIVATE)."""

    def __init__(self, *, timeout: float = 5.0, allow_private: bool = False) -> None:
        self.timeout = timeout
        self.allow_private = allow_private

    def post(self, url: str, event: str, payload: dict[str, Any], *, secret: str, fmt: str, delivery_id: str) -> int:
        sender = WebhookSender(url, secret, timeout=self.timeout, fmt=fmt, allow_private=self.allow_private)
        return sender.send(event, payload, delivery_id=delivery_id)

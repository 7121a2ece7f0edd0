"""Failpoints (crash injection for the chaos runs) and the webhook target check (no SSRF)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

import pytest

from imagesync.adapters.webhook import (
    WebhookError,
    WebhookSender,
    WebhookTargetRefused,
    check_target,
    forbidden_address,
)
from imagesync.runtime import failpoints


def test_failpoints_parse_and_refuse_what_would_inject_nothing() -> None:
    assert failpoints.parse("after_sync_images=0.05, inside_hook=1") == {"after_sync_images": 0.05, "inside_hook": 1.0}
    assert failpoints.parse("") == {}
    for bad in ("nowhere=0.1", "inside_hook", "inside_hook=x", "inside_hook=1.5"):
        with pytest.raises(ValueError):
            failpoints.parse(bad)


def test_a_disabled_failpoint_does_nothing() -> None:
    failpoints.configure("", seed=0)
    for _ in range(1000):
        failpoints.failpoint("inside_hook")
    failpoints.configure("after_sync_images=1", seed=0)
    failpoints.failpoint("inside_hook")  # another point: still nothing
    failpoints.configure("", seed=0)


def test_an_enabled_failpoint_ends_the_process_with_137_at_once() -> None:
    code = (
        "from imagesync.runtime.failpoints import failpoint\n"
        "import sys\n"
        "try:\n    failpoint('after_outbox_publish')\nfinally:\n    print('finally ran')\n"
    )
    env = {"IMAGESYNC_FAILPOINTS": "after_outbox_publish=1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 137
    assert "finally ran" not in done.stdout  # a crash: no cleanup runs
    assert "failpoint after_outbox_publish fired" in done.stderr


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.0.23",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_private_loopback_link_local_and_other_non_public_addresses_are_forbidden(address: str) -> None:
    assert forbidden_address(address)


def test_public_addresses_pass() -> None:
    assert forbidden_address("119.28.28.28") is None
    assert forbidden_address("2402:4e00::") is None


def test_check_target_needs_https_and_public_addresses_unless_allowed() -> None:
    public = lambda host, port: ["119.28.28.28"]  # noqa: E731
    check_target("https://hooks.example.com/x", resolve=public)
    with pytest.raises(WebhookTargetRefused, match="https"):
        check_target("http://hooks.example.com/x", resolve=public)
    with pytest.raises(WebhookTargetRefused, match="https"):
        check_target("ftp://hooks.example.com/x", resolve=public)
    # a name resolving to any private address (one of several) is refused
    with pytest.raises(WebhookTargetRefused, match="link-local"):
        check_target("https://metadata.example/x", resolve=lambda h, p: ["119.28.28.28", "169.254.0.23"])
    with pytest.raises(WebhookTargetRefused, match="loopback"):
        check_target("https://127.0.0.1:8443/x")
    with pytest.raises(WebhookTargetRefused, match="private"):
        check_target("https://[::ffff:10.0.0.1]/x")

    def unresolvable(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(WebhookError) as caught:
        check_target("https://nowhere.invalid/x", resolve=unresolvable)
    assert caught.value.code == "Webhook.Unreachable"
    check_target("http://127.0.0.1:8080/x", allow_private=True)


class _Receiver:
    def __init__(self) -> None:
        self.posts: list[dict[str, str]] = []
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                posts.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_sender_refuses_a_loopback_target_before_sending_and_sends_when_allowed() -> None:
    receiver = _Receiver()
    try:
        url = f"http://127.0.0.1:{receiver.port}/hook"
        with pytest.raises(WebhookTargetRefused):
            WebhookSender(url, "s").send("replica.ended", {"replica_id": "rpl-1"})
        assert receiver.posts == []
        status = WebhookSender(url, "s", allow_private=True).send(
            "replica.ended", {"replica_id": "rpl-1"}, delivery_id="whd-abc"
        )
        assert status == 204 and len(receiver.posts) == 1
        assert receiver.posts[0]["X-Imagesync-Delivery"] == "whd-abc"
    finally:
        receiver.server.shutdown()


def test_a_name_that_passes_the_check_but_connects_to_loopback_is_refused_on_connect() -> None:
    """DNS rebinding: the check saw a public address, the connection reached 127.0.0.1."""
    receiver = _Receiver()
    try:
        sender = WebhookSender(f"https://localhost:{receiver.port}/hook", "s", resolve=lambda h, p: ["119.28.28.28"])
        with pytest.raises(WebhookTargetRefused, match="connection reached"):
            sender.send("replica.ended", {"replica_id": "rpl-1"})
        assert receiver.posts == []
    finally:
        receiver.server.shutdown()

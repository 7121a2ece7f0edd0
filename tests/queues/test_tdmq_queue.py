"""TdmqCmqQueue without the emulator: request shape at the client seam, and the real SDK against canned HTTP answers.

The emulator tests (test_tdmq_emulator.py) cover sends, publishes and injected faults end to end; this file pins the
request shape, the error mapping for every code class, and what the emulator does not do: the SDK's Content-Type
trap, the exact JSON on the wire, a raw HTML 502 body, and a refused connection.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tdmq.v20200217 import models
from tencentcloud.tdmq.v20200217.tdmq_client import TdmqClient

from imagesync.adapters.queues.tdmq import EMPTY_RESPONSE_CODE, TdmqCmqQueue, is_retryable
from imagesync.domain.errors import CloudError
from imagesync.ports import Queue

ONE_MB = 1024 * 1024


def _response(model: type, **fields: Any) -> Any:
    response = model()
    response._deserialize({"RequestId": "req-1", **fields})
    return response


@pytest.fixture
def client(mocker: Any) -> Any:
    # Autospec of the real client: a call to a method TdmqClient does not have fails the test.
    fake = mocker.create_autospec(TdmqClient, instance=True)
    fake.SendCmqMsg.return_value = _response(models.SendCmqMsgResponse, Result=True, MsgId="msg-q-1")
    fake.PublishCmqMsg.return_value = _response(models.PublishCmqMsgResponse, Result=True, MsgId="msg-t-1")
    return fake


# -- request shape at the client seam ---------------------------------------------------------------------------------


def test_send_to_a_queue_calls_send_cmq_msg(client: Any) -> None:
    queue: Queue = TdmqCmqQueue(client, queue_name="imagesync-completions")

    assert queue.send('{"a": 1}', delay_seconds=30) == "msg-q-1"

    [request] = client.SendCmqMsg.call_args.args
    assert isinstance(request, models.SendCmqMsgRequest)
    assert request._serialize() == {"QueueName": "imagesync-completions", "MsgContent": '{"a": 1}', "DelaySeconds": 30}
    client.PublishCmqMsg.assert_not_called()


def test_delay_zero_is_sent_explicitly(client: Any) -> None:
    TdmqCmqQueue(client, queue_name="q").send("x")
    assert client.SendCmqMsg.call_args.args[0]._serialize()["DelaySeconds"] == 0


def test_send_to_a_topic_calls_publish_cmq_msg_with_tags(client: Any) -> None:
    queue = TdmqCmqQueue(client, topic_name="imagesync-events", tags=["completed", "ap-guangzhou"])

    assert queue.send("body") == "msg-t-1"

    [request] = client.PublishCmqMsg.call_args.args
    assert isinstance(request, models.PublishCmqMsgRequest)
    assert request._serialize() == {
        "TopicName": "imagesync-events",
        "MsgContent": "body",
        "MsgTag": ["completed", "ap-guangzhou"],
    }
    client.SendCmqMsg.assert_not_called()


def test_topic_without_tags_sends_no_msg_tag(client: Any) -> None:
    TdmqCmqQueue(client, topic_name="t").send("body")
    assert "MsgTag" not in client.PublishCmqMsg.call_args.args[0]._serialize()


def test_a_topic_publish_cannot_be_delayed(client: Any) -> None:
    with pytest.raises(ValueError, match="cannot be delayed"):
        TdmqCmqQueue(client, topic_name="t").send("body", delay_seconds=5)
    client.PublishCmqMsg.assert_not_called()


def test_body_over_one_megabyte_is_refused_before_any_call(client: Any) -> None:
    queue = TdmqCmqQueue(client, queue_name="q")
    queue.send("a" * ONE_MB)  # exactly 1 MB is fine
    client.SendCmqMsg.reset_mock()

    with pytest.raises(ValueError, match="1048577 bytes"):
        queue.send("a" * (ONE_MB + 1))
    with pytest.raises(ValueError, match="at most 1048576 bytes"):
        queue.send("é" * (ONE_MB // 2 + 1))  # 2 bytes each in UTF-8: characters are not bytes

    client.SendCmqMsg.assert_not_called()


@pytest.mark.parametrize("delay", [-1, 1.5, True])
def test_bad_delay_is_refused(client: Any, delay: Any) -> None:
    with pytest.raises(ValueError, match="delay_seconds"):
        TdmqCmqQueue(client, queue_name="q").send("x", delay_seconds=delay)
    client.SendCmqMsg.assert_not_called()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"queue_name": "q", "topic_name": "t"},
        {"queue_name": ""},
        {"topic_name": ""},
        {"queue_name": "q", "tags": ["x"]},
    ],
    ids=["neither", "both", "empty-queue", "empty-topic", "tags-on-queue"],
)
def test_invalid_construction_is_refused(client: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TdmqCmqQueue(client, **kwargs)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("RequestLimitExceeded", True),
        ("RequestLimitExceeded.UinLimitExceeded", True),
        ("RequestLimitExceeded.GlobalRegionUinLimitExceeded", True),
        ("InternalError", True),
        ("InternalError.DbOperationFailed", True),
        ("ClientNetworkError", True),
        ("ServerNetworkError", True),
        ("ResourceNotFound", False),
        ("AuthFailure.SignatureFailure", False),
        ("FailedOperation.MaxMessageSizeError", False),
        ("InvalidParameterValue", False),
        (None, False),
    ],
)
def test_sdk_errors_become_cloud_errors(client: Any, code: str | None, retryable: bool) -> None:
    sdk_error = TencentCloudSDKException(code, "it failed", "req-42")
    client.SendCmqMsg.side_effect = sdk_error

    with pytest.raises(CloudError) as caught:
        TdmqCmqQueue(client, queue_name="q").send("x")

    err = caught.value
    assert err.cloud_code == (code or "UnknownError")
    assert err.request_id == "req-42"
    assert err.retryable is retryable
    assert "it failed" in err.message and "SendCmqMsg" in err.message
    assert err.__cause__ is sdk_error
    assert is_retryable(code) is retryable


@pytest.mark.parametrize(
    "fields", [{"Result": True}, {"Result": False, "MsgId": "m"}, {}], ids=["no-msgid", "result-false", "empty"]
)
def test_an_answer_without_a_msg_id_is_an_error(client: Any, fields: dict[str, Any]) -> None:
    client.SendCmqMsg.return_value = _response(models.SendCmqMsgResponse, **fields)
    with pytest.raises(CloudError) as caught:
        TdmqCmqQueue(client, queue_name="q").send("x")
    assert (caught.value.cloud_code, caught.value.retryable) == (EMPTY_RESPONSE_CODE, False)


# -- the real SDK over HTTP, against canned answers -------------------------------------------------------------------


class _Canned(BaseHTTPRequestHandler):
    """Answers every POST with the server's current (status, content type, body) and records the request."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", 0))
        self.server.requests.append(  # type: ignore[attr-defined]
            {"action": self.headers.get("X-TC-Action"), "body": json.loads(self.rfile.read(length))}
        )
        status, content_type, body = self.server.answer  # type: ignore[attr-defined]
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    server.requests = []  # type: ignore[attr-defined]
    # A short poll interval: shutdown() waits up to one interval, 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _sdk_client(host_port: str) -> TdmqClient:
    http = HttpProfile(protocol="http", endpoint=host_port, reqTimeout=5)
    return TdmqClient(credential.Credential("AKIDtest", "secret"), "ap-guangzhou", ClientProfile(httpProfile=http))


def _error(code: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": f"{code} happened"}, "RequestId": "req-wire"}}


def test_real_sdk_success_and_wire_shape(canned: Any) -> None:
    canned.answer = (200, "application/json", {"Response": {"Result": True, "MsgId": "wire-1", "RequestId": "r"}})
    port = canned.server_address[1]

    msg_id = TdmqCmqQueue(_sdk_client(f"127.0.0.1:{port}"), queue_name="q").send("héllo", delay_seconds=3)

    assert msg_id == "wire-1"
    assert canned.requests == [
        {"action": "SendCmqMsg", "body": {"QueueName": "q", "MsgContent": "héllo", "DelaySeconds": 3}}
    ]


def test_real_sdk_content_type_trap_is_caught(canned: Any) -> None:
    # With "; charset=utf-8" the SDK does not look for the error envelope and returns an empty success.
    canned.answer = (200, "application/json; charset=utf-8", _error("ResourceNotFound"))
    queue = TdmqCmqQueue(_sdk_client(f"127.0.0.1:{canned.server_address[1]}"), queue_name="q")

    with pytest.raises(CloudError) as caught:
        queue.send("x")

    assert caught.value.cloud_code == EMPTY_RESPONSE_CODE


def test_real_sdk_http_failure_is_retryable(canned: Any) -> None:
    canned.answer = (502, "text/html", "<html>bad gateway</html>")
    queue = TdmqCmqQueue(_sdk_client(f"127.0.0.1:{canned.server_address[1]}"), queue_name="q")

    with pytest.raises(CloudError) as caught:
        queue.send("x")

    assert (caught.value.cloud_code, caught.value.retryable) == ("ServerNetworkError", True)
    assert "bad gateway" in caught.value.message and "b'" not in caught.value.message


def test_real_sdk_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(CloudError) as caught:
        TdmqCmqQueue(_sdk_client(f"127.0.0.1:{port}"), queue_name="q").send("x")

    assert (caught.value.cloud_code, caught.value.retryable) == ("ClientNetworkError", True)

"""TdmqCmqQueue through the real SDK against the project's Tencent Cloud emulator (signed HTTP, real envelopes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tdmq.v20200217 import models
from tencentcloud.tdmq.v20200217.tdmq_client import TdmqClient

from imagesync.adapters.queues.tdmq import TdmqCmqQueue
from imagesync.domain.errors import CloudError

try:
    from imagesync_emulator import Emulator
except ImportError:  # the emulator is being built alongside; these tests run as soon as it can be imported
    pytest.skip("imagesync_emulator.Emulator is not available yet", allow_module_level=True)

REGION = "ap-guangzhou"
ONE_MB = 1024 * 1024


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    with Emulator() as emulator:
        yield emulator


def _client(emu: Any, *, secret_key: str | None = None) -> TdmqClient:
    # The custom-endpoint recipe from the reference: host:port without a scheme, protocol http.
    http = HttpProfile(protocol="http", endpoint=emu.host_port, reqTimeout=10)
    cred = credential.Credential(emu.secret_id, secret_key or emu.secret_key)
    return TdmqClient(cred, REGION, ClientProfile(httpProfile=http, language="en-US"))


@pytest.fixture
def client(emu: Any) -> TdmqClient:
    return _client(emu)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create_queue(client: TdmqClient, name: str) -> None:
    request = models.CreateCmqQueueRequest()
    request.QueueName = name
    client.CreateCmqQueue(request)


def _create_topic(client: TdmqClient, name: str) -> None:
    request = models.CreateCmqTopicRequest()
    request.TopicName = name
    client.CreateCmqTopic(request)


def test_send_to_a_queue(emu: Any, client: TdmqClient) -> None:
    name = _name("completions")
    _create_queue(client, name)
    queue = TdmqCmqQueue(client, queue_name=name)

    first = queue.send('{"replica_id": "r-1", "state": "SUCCEEDED"}')
    second = queue.send("later", delay_seconds=30)

    drained = emu.admin.drain_messages(name)
    assert [(m["queue"], m["body"], m["delay_seconds"], m["msg_id"]) for m in drained] == [
        (name, '{"replica_id": "r-1", "state": "SUCCEEDED"}', 0, first),
        (name, "later", 30, second),
    ]
    assert first != second
    assert emu.admin.drain_messages(name) == []  # drained means gone


def test_publish_to_a_topic_with_tags(emu: Any, client: TdmqClient) -> None:
    name = _name("events")
    _create_topic(client, name)
    queue = TdmqCmqQueue(client, topic_name=name, tags=["completed", "ap-shanghai"])

    msg_id = queue.send("done")

    [message] = emu.admin.drain_messages(name)
    assert (message["topic"], message["body"], message["tags"], message["msg_id"]) == (
        name,
        "done",
        ["completed", "ap-shanghai"],
        msg_id,
    )


def test_unicode_and_a_full_megabyte_arrive_intact(emu: Any, client: TdmqClient) -> None:
    name = _name("big")
    _create_queue(client, name)
    queue = TdmqCmqQueue(client, queue_name=name)
    big = "镜" * (ONE_MB // 3) + "a" * (ONE_MB % 3)  # exactly 1,048,576 bytes of UTF-8

    queue.send("镜像 ünïcode 🚀")
    queue.send(big)

    assert [m["body"] for m in emu.admin.drain_messages(name)] == ["镜像 ünïcode 🚀", big]


def test_over_one_megabyte_never_reaches_the_cloud(emu: Any, client: TdmqClient) -> None:
    name = _name("big")
    _create_queue(client, name)

    with pytest.raises(ValueError, match="at most 1048576 bytes"):
        TdmqCmqQueue(client, queue_name=name).send("a" * (ONE_MB + 1))

    assert emu.admin.drain_messages(name) == []


def test_a_missing_topic_is_a_cloud_error(client: TdmqClient) -> None:
    with pytest.raises(CloudError) as caught:
        TdmqCmqQueue(client, topic_name=_name("missing")).send("x")

    err = caught.value
    assert err.cloud_code.startswith("ResourceNotFound")
    assert err.retryable is False
    assert err.request_id
    assert err.__cause__ is not None and getattr(err.__cause__, "code", None) == err.cloud_code


def test_a_bad_signature_is_a_cloud_error(emu: Any) -> None:
    queue = TdmqCmqQueue(_client(emu, secret_key="not-the-key"), queue_name=_name("q"))

    with pytest.raises(CloudError) as caught:
        queue.send("x")

    assert caught.value.cloud_code.startswith("AuthFailure")
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("kind", "code", "expected"),
    [
        ("error", "RequestLimitExceeded", "RequestLimitExceeded"),
        ("error", "RequestLimitExceeded.UinLimitExceeded", "RequestLimitExceeded.UinLimitExceeded"),
        ("error", "InternalError", "InternalError"),
        ("http5xx", "InternalError", "ServerNetworkError"),
        ("drop", "InternalError", "ClientNetworkError"),
    ],
    ids=["throttled", "uin-throttled", "internal", "http-502", "dropped-connection"],
)
def test_transient_failures_are_retryable_and_a_retry_goes_through(
    emu: Any, client: TdmqClient, kind: str, code: str, expected: str
) -> None:
    name = _name("completions")
    _create_queue(client, name)
    queue = TdmqCmqQueue(client, queue_name=name)
    emu.admin.script_fault("SendCmqMsg", 1, code=code, kind=kind)
    try:
        with pytest.raises(CloudError) as caught:
            queue.send("x")
    finally:
        emu.admin.clear_faults()

    assert (caught.value.cloud_code, caught.value.retryable) == (expected, True)
    msg_id = queue.send("x")  # the caller's retry
    assert [m["msg_id"] for m in emu.admin.drain_messages(name)] == [msg_id]

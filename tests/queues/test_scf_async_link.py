"""ScfAsyncLink: the request at the SDK client seam (a recording autospec of the real ScfClient), the packing into
128 KB events, the error mapping, and the real SDK over HTTP against canned answers (wire shape, throttling, a 502,
a refused connection). The sweep's retries over this link are in tests/queues/test_publish_faults.py."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.scf.v20180416 import models
from tencentcloud.scf.v20180416.scf_client import ScfClient

from imagesync.adapters.queues.errors import is_retryable
from imagesync.adapters.queues.limits import MAX_BODY_BYTES
from imagesync.adapters.queues.scf_async import MAX_EVENT_BYTES, ScfAsyncLink, event_text
from imagesync.domain.errors import CloudError
from imagesync.domain.models import CompletionMessage
from imagesync.platform.envelopes import QueueEnvelope
from imagesync.ports import BatchQueue
from tests.conftest import load_event
from tests.queues.canned import error, sdk_client

MESSAGES = load_event("queue/scf_async_two_messages.json")["messages"]
BODIES = [json.dumps(m) for m in MESSAGES]


def _response(**fields: Any) -> models.InvokeResponse:
    response = models.InvokeResponse()
    response._deserialize({"RequestId": "req-1", **fields})
    return response


@pytest.fixture
def client(mocker: Any) -> Any:
    # Autospec of the real client: a call to a method ScfClient does not have fails the test.
    fake = mocker.create_autospec(ScfClient, instance=True)
    fake.Invoke.return_value = _response(Result={"FunctionRequestId": "fn-req-1"})
    return fake


def test_one_async_invoke_carries_every_message_as_the_event(client: Any) -> None:
    link: BatchQueue = ScfAsyncLink(
        client, function_name="imagesync-completion_hook", namespace="prod", qualifier="$DEFAULT"
    )

    assert link.send_batch(BODIES) == "fn-req-1"

    [request] = client.Invoke.call_args.args
    assert isinstance(request, models.InvokeRequest)
    sent = request._serialize()
    assert {k: v for k, v in sent.items() if k != "ClientContext"} == {
        "FunctionName": "imagesync-completion_hook",
        "InvocationType": "Event",
        "Namespace": "prod",
        "Qualifier": "$DEFAULT",
    }
    # the event completion_hook gets IS ClientContext: its envelope reads every message back
    event = json.loads(sent["ClientContext"])
    assert event == {"source": "imagesync.outbox", "messages": MESSAGES}
    parsed = QueueEnvelope.parse(event, CompletionMessage)
    assert [p.value.replica_id for p in parsed if p.value] == ["rpl-demo00000001", "rpl-demo00000002"]


def test_without_a_qualifier_none_is_sent_and_send_is_one_message(client: Any) -> None:
    link = ScfAsyncLink(client, function_name="f")
    assert link.send(BODIES[0]) == "fn-req-1"
    sent = client.Invoke.call_args.args[0]._serialize()
    assert "Qualifier" not in sent and sent["Namespace"] == "default"
    assert json.loads(sent["ClientContext"])["messages"] == [MESSAGES[0]]
    with pytest.raises(ValueError, match="cannot be delayed"):
        link.send(BODIES[0], delay_seconds=5)


def test_the_api_request_id_stands_in_when_the_answer_has_no_function_request_id(client: Any) -> None:
    client.Invoke.return_value = _response()
    assert ScfAsyncLink(client, function_name="f").send_batch(BODIES) == "req-1"


def _body(i: int, size: int) -> str:
    text = json.dumps({"message_id": f"msg-{i:06d}", "pad": ""})
    return text.replace('"pad": ""', '"pad": "' + "x" * (size - len(text)) + '"')


def test_messages_are_packed_into_as_few_128_kb_events_as_fit() -> None:
    bodies = [_body(i, 1000 + (i * 37) % 900) for i in range(500)]  # ~700 KB of messages of uneven sizes
    groups = ScfAsyncLink(object(), function_name="f").batches(bodies)  # type: ignore[arg-type]
    assert [i for g in groups for i in g] == list(range(500))  # every message once, in order
    for n, group in enumerate(groups):
        size = len(event_text([bodies[i] for i in group]).encode())
        assert size <= MAX_EVENT_BYTES
        if n + 1 < len(groups):  # and no group could have taken the next message: as few invocations as fit
            bigger = len(event_text([bodies[i] for i in [*group, groups[n + 1][0]]]).encode())
            assert bigger > MAX_EVENT_BYTES
    assert len(groups) == 6


def test_at_most_max_messages_per_invocation_when_set() -> None:
    link = ScfAsyncLink(object(), function_name="f", max_messages=10)  # type: ignore[arg-type]
    assert link.batches([_body(i, 300) for i in range(23)]) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    with pytest.raises(ValueError):
        ScfAsyncLink(object(), function_name="f", max_messages=0)  # type: ignore[arg-type]


def test_the_largest_message_the_queues_accept_fits_alone() -> None:
    largest = _body(1, MAX_BODY_BYTES)
    link = ScfAsyncLink(object(), function_name="f")  # type: ignore[arg-type]
    assert link.batches([largest, BODIES[0]]) == [[0], [1]]
    assert len(event_text([largest]).encode()) <= MAX_EVENT_BYTES
    with pytest.raises(ValueError, match="at most 131072 bytes"):
        link.batches([_body(2, MAX_EVENT_BYTES)])


@pytest.mark.parametrize(
    "bodies",
    [["not json"], ["[1, 2]"], [_body(1, MAX_EVENT_BYTES)], []],
    ids=["not-json", "not-an-object", "too-large", "empty"],
)
def test_bad_bodies_are_refused_before_any_call(client: Any, bodies: list[str]) -> None:
    with pytest.raises(ValueError):
        ScfAsyncLink(client, function_name="f").send_batch(bodies)
    client.Invoke.assert_not_called()


@pytest.mark.parametrize("kwargs", [{"function_name": ""}, {"function_name": "f", "namespace": ""}])
def test_a_link_names_its_function(client: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ScfAsyncLink(client, **kwargs)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("RequestLimitExceeded", True),
        ("RequestLimitExceeded.UinLimitExceeded", True),
        ("InternalError", True),
        ("InternalError.SystemError", True),
        ("ClientNetworkError", True),
        ("ServerNetworkError", True),
        ("ResourceNotFound.Function", False),
        ("AuthFailure.SignatureFailure", False),
        ("UnauthorizedOperation.CAM", False),
        ("InvalidParameterValue.Param", False),
        (None, False),
    ],
)
def test_sdk_errors_become_cloud_errors(client: Any, code: str | None, retryable: bool) -> None:
    sdk_error = TencentCloudSDKException(code, "it failed", "req-42")
    client.Invoke.side_effect = sdk_error
    with pytest.raises(CloudError) as caught:
        ScfAsyncLink(client, function_name="f").send_batch(BODIES)
    err = caught.value
    assert (err.cloud_code, err.request_id, err.retryable) == (code or "UnknownError", "req-42", retryable)
    assert "it failed" in err.message and "Invoke" in err.message and err.__cause__ is sdk_error
    assert is_retryable(code) is retryable


# -- the real SDK over HTTP, against canned answers -------------------------------------------------------------------


def _link(server: Any) -> ScfAsyncLink:
    client = sdk_client(ScfClient, f"127.0.0.1:{server.server_address[1]}")
    return ScfAsyncLink(client, function_name="imagesync-completion_hook", namespace="default")


def test_real_sdk_wire_shape(canned: Any) -> None:
    canned.answers = [
        (200, "application/json", {"Response": {"Result": {"FunctionRequestId": "fn-wire"}, "RequestId": "req-wire"}})
    ]
    assert _link(canned).send_batch(BODIES) == "fn-wire"
    [request] = canned.requests
    assert request["action"] == "Invoke"
    assert request["body"]["InvocationType"] == "Event"
    assert request["body"]["FunctionName"] == "imagesync-completion_hook"
    assert json.loads(request["body"]["ClientContext"]) == {"source": "imagesync.outbox", "messages": MESSAGES}


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((200, "application/json", error("RequestLimitExceeded")), "RequestLimitExceeded"),
        ((200, "application/json", error("InternalError")), "InternalError"),
        ((502, "text/html", "<html>bad gateway</html>"), "ServerNetworkError"),
    ],
    ids=["throttled", "internal", "http-502"],
)
def test_real_sdk_transient_failures_are_retryable(canned: Any, answer: Any, code: str) -> None:
    canned.answers = [answer]
    with pytest.raises(CloudError) as caught:
        _link(canned).send_batch(BODIES)
    assert (caught.value.cloud_code, caught.value.retryable) == (code, True)
    assert "b'" not in caught.value.message


def test_real_sdk_permanent_failure_is_not_retryable(canned: Any) -> None:
    canned.answers = [(200, "application/json", error("ResourceNotFound.Function"))]
    with pytest.raises(CloudError) as caught:
        _link(canned).send_batch(BODIES)
    assert (caught.value.cloud_code, caught.value.retryable) == ("ResourceNotFound.Function", False)


def test_real_sdk_connection_refused_is_retryable() -> None:
    # a port held bound and never listened on, for the whole call: refused, and no other process on this shared
    # machine can start listening on it meanwhile (as it could on a port freed before the call)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        link = ScfAsyncLink(sdk_client(ScfClient, f"127.0.0.1:{port}"), function_name="f")
        with pytest.raises(CloudError) as caught:
            link.send_batch(BODIES)
    assert (caught.value.cloud_code, caught.value.retryable) == ("ClientNetworkError", True)

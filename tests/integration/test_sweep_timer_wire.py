"""status_sweep's timer adapter on the wire: ScfSweepTimer through the SDK's generic CommonClient (what
wiring.build_scheduler gives it) against canned HTTP answers. The requests are the UpdateTrigger calls
ScfClient.UpdateTrigger makes (same action, version, parameters, TC3 signature); an answer counts as done only
with a RequestId and no Error, whatever its Content-Type. (The emulated SCF runs the same calls in
test_sweep_schedule.py and tests/emulator/test_scf_sweep_schedule.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from imagesync.adapters.queues.errors import EMPTY_RESPONSE_CODE
from imagesync.adapters.sweep_timer import SCF_API_VERSION, ScfSweepTimer
from imagesync.domain.errors import CloudError
from imagesync.settings import Settings
from imagesync.wiring import build_services
from tests.queues.canned import error, serve_canned


@pytest.fixture
def canned() -> Iterator[Any]:
    yield from serve_canned()


class _Recorded(BaseException):
    """Stops a request inside the SDK once its headers are seen."""


def _timer(server: Any) -> ScfSweepTimer:
    http = HttpProfile(protocol="http", endpoint=f"127.0.0.1:{server.server_address[1]}", reqTimeout=5)
    client = CommonClient(
        "scf",
        SCF_API_VERSION,
        credential.Credential("AKIDtest", "secret"),
        "ap-guangzhou",
        ClientProfile(httpProfile=http),
    )
    return ScfSweepTimer(client, function_name="sweep-fn", next_trigger="next", safety_trigger="safety")


def test_arm_and_disarm_send_the_update_trigger_calls(canned: Any) -> None:
    timer = _timer(canned)

    timer.arm(datetime(2027, 1, 15, 8, 3, 7, tzinfo=timezone.utc))
    timer.disarm()

    assert [r["action"] for r in canned.requests] == ["UpdateTrigger"] * 4
    base = {"FunctionName": "sweep-fn", "Namespace": "default", "Type": "timer"}
    assert [r["body"] for r in canned.requests] == [
        {**base, "TriggerName": "next", "Enable": "OPEN", "TriggerDesc": "7 3 8 15 1 * 2027"},
        {**base, "TriggerName": "safety", "Enable": "OPEN"},
        {**base, "TriggerName": "next", "Enable": "CLOSE"},
        {**base, "TriggerName": "safety", "Enable": "CLOSE"},
    ]


def test_the_request_is_signed_for_scf_at_its_api_version(canned: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The headers the SDK's typed ScfClient would send: X-TC-Action, X-TC-Version, X-TC-Region and a TC3
    signature scoped to the scf service."""
    timer = _timer(canned)
    seen: dict[str, str] = {}
    session = timer._client.request.conn._session  # the SDK's requests.Session

    def record(*_args: Any, headers: dict[str, str], **_kwargs: Any) -> Any:
        seen.update(headers)
        raise _Recorded

    monkeypatch.setattr(session, "request", record)
    with pytest.raises(_Recorded):
        timer.disarm()

    assert seen["X-TC-Action"] == "UpdateTrigger" and seen["X-TC-Version"] == "2018-04-16"
    assert seen["X-TC-Region"] == "ap-guangzhou"
    assert seen["Authorization"].startswith("TC3-HMAC-SHA256 Credential=AKIDtest/")
    assert "/scf/tc3_request" in seen["Authorization"]


def test_an_error_answer_raises_its_code(canned: Any) -> None:
    canned.answers = [(200, "application/json", error("ResourceNotFound.Trigger"))]

    with pytest.raises(CloudError) as raised:
        _timer(canned).disarm()

    assert raised.value.cloud_code == "ResourceNotFound.Trigger" and raised.value.request_id == "req-wire"
    assert not raised.value.retryable
    assert len(canned.requests) == 1  # the safety trigger's call is not made after a failed first one


def test_a_throttled_answer_is_retryable(canned: Any) -> None:
    canned.answers = [(200, "application/json", error("RequestLimitExceeded"))]

    with pytest.raises(CloudError) as raised:
        _timer(canned).arm(datetime(2027, 1, 15, 8, 3, 7, tzinfo=timezone.utc))

    assert raised.value.cloud_code == "RequestLimitExceeded" and raised.value.retryable
    assert len(canned.requests) == 2  # arm makes both calls whatever the first one's fate


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        # the SDK lets an error envelope through as a success when the Content-Type is not application/json
        ((200, "text/html", error("InternalError")), "InternalError"),
        ((200, "application/json", {"Response": {}}), EMPTY_RESPONSE_CODE),
        ((200, "text/html", {"Response": {"Result": "no id"}}), EMPTY_RESPONSE_CODE),
        ((200, "text/html", {"nothing": "here"}), EMPTY_RESPONSE_CODE),
        # the SDK's own error check reads data["Response"] of a JSON answer
        ((200, "application/json", {"nothing": "here"}), "KeyError"),
    ],
)
def test_an_answer_that_is_not_a_success_is_not_taken_for_one(canned: Any, answer: Any, code: str) -> None:
    canned.answers = [answer]

    with pytest.raises(CloudError) as raised:
        _timer(canned).disarm()

    assert raised.value.cloud_code == code
    assert len(canned.requests) == 1


def test_a_body_that_is_not_json_is_a_cloud_error(canned: Any) -> None:
    canned.answers = [(200, "text/html", "<html>a proxy's page</html>")]

    with pytest.raises(CloudError) as raised:
        _timer(canned).disarm()

    assert raised.value.cloud_code == "JSONDecodeError"


def test_the_wired_scheduler_calls_through_the_common_client(
    canned: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_scheduler's ScfSweepTimer uses the cloud's CommonClient for scf; the SDK's scf product modules are
    not what makes the call."""
    settings = Settings(
        scheduler="scf-timer",
        sweep_function="sweep-fn",
        sweep_timer="next",
        sweep_safety_timer="safety",
        tencent_endpoint=f"http://127.0.0.1:{canned.server_address[1]}",
        region="ap-guangzhou",
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        queue_path=str(tmp_path / "queue.db"),
    )
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDtest")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "secret")
    services = build_services(settings)
    assert services.scheduler is not None

    services.scheduler.disarm()

    assert [(r["action"], r["body"]["TriggerName"]) for r in canned.requests] == [
        ("UpdateTrigger", "next"),
        ("UpdateTrigger", "safety"),
    ]
    assert isinstance(services.cloud.common_client("scf", SCF_API_VERSION, "ap-guangzhou"), CommonClient)

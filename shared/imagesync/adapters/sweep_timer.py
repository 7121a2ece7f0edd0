"""The Scheduler port on SCF: status_sweep's two timer triggers (docs/deploy.md, "The sweep's schedule").

- the *next* trigger is re-pointed, with `UpdateTrigger`, at one moment: a 7-field cron naming a full date with its
  year runs once (docs/facts.md#F-SCF-5), so `arm(at)` is one call that sets `TriggerDesc` and `Enable=OPEN`;
- the *safety* trigger runs every hour (its cron is deployed, never changed here) and is switched on with every arm
  and off with `disarm()`: while anything is in flight the sweep runs at least once an hour even if an arm failed
  or a one-shot was lost; at rest neither trigger fires.

`disarm()` switches both off. Every SDK failure raises `CloudError` (Tencent's code, `retryable`) from the SDK
exception; the caller (app.schedule) decides what a failure means. The role needs `scf:UpdateTrigger` on the
status_sweep function only (deploy/cam-policy.json).

The calls go through the official SDK's generic client (`CommonClient.call_json`, API version 2018-04-16): the
same signed UpdateTrigger request as `ScfClient.UpdateTrigger`, without importing the scf product's client and
models modules (about 0.02 of the cold-start floor, paid by the idle sweep that disarms: docs/benchmarks.md).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from ..domain.errors import CloudError
from .queues.errors import EMPTY_RESPONSE_CODE, is_retryable, to_cloud_error

#: the product and API version of the calls below, for the SDK's CommonClient (the version tencentcloud.scf.v20180416
#: is generated from); tests/deploy reads SERVICE to check the role's policy grants each action called here
SERVICE, SCF_API_VERSION = "scf", "2018-04-16"


class TriggerClient(Protocol):
    """The call of `tencentcloud.common.common_client.CommonClient` (SERVICE at SCF_API_VERSION) this adapter
    uses: the action's parameters as JSON in, the whole JSON answer (`{"Response": {...}}`) out."""

    def call_json(self, action: str, params: dict[str, Any]) -> Any: ...


def one_shot_cron(at: datetime) -> str:
    """The 7-field SCF cron (second minute hour day month week year) that fires once, at `at` (UTC)."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime: pass an aware one (UTC)")
    t = at.astimezone(timezone.utc)
    return f"{t.second} {t.minute} {t.hour} {t.day} {t.month} * {t.year}"


class ScfSweepTimer:
    def __init__(
        self,
        client: TriggerClient,
        *,
        function_name: str,
        next_trigger: str,
        safety_trigger: str,
        namespace: str = "default",
    ) -> None:
        for value, setting in (
            (function_name, "IMAGESYNC_SWEEP_FUNCTION"),
            (next_trigger, "IMAGESYNC_SWEEP_TIMER"),
            (safety_trigger, "IMAGESYNC_SWEEP_SAFETY_TIMER"),
            (namespace, "namespace"),
        ):
            if not value:
                raise ValueError(f"{setting} must not be empty")
        if next_trigger == safety_trigger:
            raise ValueError("IMAGESYNC_SWEEP_TIMER and IMAGESYNC_SWEEP_SAFETY_TIMER must be two triggers")
        self._client = client
        self.function_name = function_name
        self.next_trigger = next_trigger
        self.safety_trigger = safety_trigger
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"ScfSweepTimer(function_name={self.function_name!r}, next_trigger={self.next_trigger!r})"

    def arm(self, at: datetime) -> None:
        """Both calls are made whatever the first one's fate (the safety trigger is what tracks a copy whose
        one-shot could not be set); the first failure is raised after the second call."""
        failure: CloudError | None = None
        for trigger, desc in ((self.next_trigger, one_shot_cron(at)), (self.safety_trigger, None)):
            try:
                self._update(trigger, enable=True, desc=desc)
            except CloudError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def disarm(self) -> None:
        """The safety trigger last: a failure on the way leaves the sweep running hourly, not the copies unseen."""
        self._update(self.next_trigger, enable=False)
        self._update(self.safety_trigger, enable=False)

    def _update(self, trigger: str, *, enable: bool, desc: str | None = None) -> None:
        params: dict[str, Any] = {
            "FunctionName": self.function_name,
            "Namespace": self.namespace,
            "TriggerName": trigger,
            "Type": "timer",
            "Enable": "OPEN" if enable else "CLOSE",
        }
        if desc is not None:
            params["TriggerDesc"] = desc
        try:
            body = self._client.call_json("UpdateTrigger", params)
        except TencentCloudSDKException as exc:
            raise to_cloud_error(exc, "scf", "UpdateTrigger") from exc
        except Exception as exc:  # e.g. a body that is not JSON: what ScfClient.UpdateTrigger wraps in the SDK's error
            raise to_cloud_error(
                TencentCloudSDKException(type(exc).__name__, str(exc)), "scf", "UpdateTrigger"
            ) from exc
        _check(body)


def _check(body: Any) -> None:
    """An answer is a success only with a RequestId and no Error: the SDK lets an error envelope through as a
    success when the Content-Type is not exactly application/json (queues.errors.EMPTY_RESPONSE_CODE)."""
    answer = body.get("Response") if isinstance(body, dict) else None
    if not isinstance(answer, dict):
        raise CloudError(EMPTY_RESPONSE_CODE, "scf UpdateTrigger answered no Response object")
    error = answer.get("Error")
    if isinstance(error, dict):
        code = str(error.get("Code") or "UnknownError")
        raise CloudError(
            code,
            f"scf UpdateTrigger failed: {error.get('Message') or code}",
            request_id=answer.get("RequestId"),
            retryable=is_retryable(code),
        )
    if not answer.get("RequestId"):
        raise CloudError(EMPTY_RESPONSE_CODE, "scf UpdateTrigger answered without a RequestId")

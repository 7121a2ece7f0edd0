"""The Scheduler port on SCF: status_sweep's two timer triggers (docs/deploy.md, "The sweep's schedule").

- the *next* trigger is re-pointed, with `UpdateTrigger`, at one moment: a 7-field cron naming a full date with its
  year runs once (docs/facts.md#F-SCF-5), so `arm(at)` is one call that sets `TriggerDesc` and `Enable=OPEN`;
- the *safety* trigger runs every hour (its cron is deployed, never changed here) and is switched on with every arm
  and off with `disarm()`: while anything is in flight the sweep runs at least once an hour even if an arm failed
  or a one-shot was lost; at rest neither trigger fires.

`disarm()` switches both off. Every SDK failure raises `CloudError` (Tencent's code, `retryable`) from the SDK
exception; the caller (app.schedule) decides what a failure means. The role needs `scf:UpdateTrigger` on the
status_sweep function only (deploy/cam-policy.json).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.scf.v20180416 import models

from ..domain.errors import CloudError
from .queues.errors import to_cloud_error


class TriggerClient(Protocol):
    """The call of `tencentcloud.scf.v20180416.scf_client.ScfClient` this adapter uses."""

    def UpdateTrigger(self, request: models.UpdateTriggerRequest) -> Any: ...  # noqa: N802 (the SDK's name)


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
        request = models.UpdateTriggerRequest()
        request.FunctionName = self.function_name
        request.Namespace = self.namespace
        request.TriggerName = trigger
        request.Type = "timer"
        request.Enable = "OPEN" if enable else "CLOSE"
        if desc is not None:
            request.TriggerDesc = desc
        try:
            self._client.UpdateTrigger(request)
        except TencentCloudSDKException as exc:
            raise to_cloud_error(exc, "scf", "UpdateTrigger") from exc

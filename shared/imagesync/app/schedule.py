"""The sweep's schedule follows the work: status_sweep's timer is armed at the earliest due check of the copies in
flight (and sooner while a completion still waits in the outbox; and while an end's hooks are still open, when the
sweep's backstop must look at it), and disarmed when nothing is in flight.

Called by copy_request after it started copies (or recorded a copy that waits for its source) and by status_sweep at
the end of every sweep (which covers the rules' reconcile pass). Never raises: a failed arm is returned (the caller logs
it) as `{"error": {"code": "Schedule.ArmFailed", "cause", "message"}}`, and the copy is still tracked -- by the
hourly safety trigger when the *next* trigger alone failed or was already on, else by the next arm that succeeds
(the next request or sweep); see docs/deploy.md, "The sweep's schedule".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..ports import Clock, DueChecks, Scheduler


def ceil_second(at: datetime) -> datetime:
    """`at` rounded up to a whole second (a timer's resolution: never wake before a check is due)."""
    return at.replace(microsecond=0) + (timedelta(seconds=1) if at.microsecond else timedelta(0))


class FollowWork:
    def __init__(
        self,
        due: DueChecks,
        scheduler: Scheduler,
        clock: Clock,
        *,
        lead_seconds: float,
        outbox_retry_seconds: float,
        backstop_due: Callable[[datetime], datetime | None] | None = None,
    ) -> None:
        #: when the sweep's backstop (Hook.Undelivered) has an end to look at next, from now; None: none
        self.backstop_due = backstop_due
        #: never arm closer than this to now (the trigger change must land before the moment it names)
        self.lead = timedelta(seconds=lead_seconds)
        self.outbox_retry = timedelta(seconds=outbox_retry_seconds)
        self.due = due
        self.scheduler = scheduler
        self.clock = clock

    def next_run(self, now: datetime) -> datetime | None:
        """When the sweep has work next (None: nothing in flight, nothing to publish), at least `lead` ahead,
        rounded up to the second (a timer's resolution)."""
        earliest = self.due.earliest_check()
        if self.due.has_pending_outbox():
            retry = now + self.outbox_retry
            earliest = retry if earliest is None else min(earliest, retry)
        if self.backstop_due is not None:
            backstop = self.backstop_due(now)
            if backstop is not None:
                earliest = backstop if earliest is None else min(earliest, backstop)
        if earliest is None:
            return None
        return ceil_second(max(earliest, now + self.lead))

    def __call__(self) -> dict[str, Any]:
        try:
            at = self.next_run(self.clock.now())
            if at is None:
                self.scheduler.disarm()
                return {"armed": None}
            self.scheduler.arm(at)
            return {"armed": at.isoformat()}
        except Exception as exc:  # the caller's own work is done; the copy is tracked anyway (module docstring)
            code = getattr(exc, "cloud_code", None) or getattr(exc, "code", None) or type(exc).__name__
            return {"error": {"code": "Schedule.ArmFailed", "cause": str(code), "message": str(exc)[:500]}}

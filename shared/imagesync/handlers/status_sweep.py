"""status_sweep: advances every copy in flight, and runs the rules' reconcile pass. Trigger: timer.

The timer's Message (at most 4 KB) may carry options as a JSON object, e.g. `{"reconcile": "force"}`; an empty
Message means the defaults. Options that do not validate are logged and the sweep runs with the defaults: copies
in flight must keep being tracked whatever the trigger's configuration says. That holds for every event: a timer
event whose Message or fields cannot be read at all (deep nesting, NaN, lone surrogates...) is reported as
`options_error` (code Event.Invalid), and any other event (not a timer's) runs the sweep with the defaults.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..platform import coldstart
from ..platform.context import invocation
from ..platform.events import InvalidEvent, describe_error
from ..platform.logs import logger
from ..platform.timer import TimerEnvelope
from ..wiring import services


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No automatic garbage collection during one sweep; the collector runs again as usual after it.

    Why: a sweep builds a model per copy it claimed and keeps them all until its end, so a sweep of 10,000 copies
    used to run two or three full collections (each traversing every one of them, and whatever else the process
    holds) for almost no garbage: what it throws away is freed by reference counting as it goes. A cycle it does
    make waits for the first collection after the sweep (docs/benchmarks.md, "One sweep of 10,000 copies")."""
    if not gc.isenabled():  # already paused by the caller: not ours to turn back on
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class SweepOptions(BaseModel):
    """What a timer's Message may ask of one sweep."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    #: "auto": the rules' reconcile pass once per IMAGESYNC_RECONCILE_INTERVAL_SECONDS; "force": now; "skip": not
    reconcile: Literal["auto", "force", "skip"] = "auto"
    #: replicas claimed per round (default IMAGESYNC_SWEEP_BATCH)
    batch: int | None = Field(default=None, ge=1, le=10000)


def main_handler(event: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    with invocation(context, "status_sweep"), coldstart.first_answer():
        svc = services()
        svc.begin_invocation()
        options, problem = SweepOptions(), None
        try:
            if TimerEnvelope.matches(event):
                options = TimerEnvelope.parse(event, SweepOptions)
        except Exception as exc:  # parsing only: whatever the event holds, the sweep runs (with the defaults)
            if not isinstance(exc, InvalidEvent):
                logger.exception("timer event unreadable")
                exc = InvalidEvent(f"timer event unreadable: {describe_error(exc)}")
            problem = exc.to_dict()
            logger.error("timer options ignored", extra={"error": problem})
        sweep = svc.sweep(reconcile=options.reconcile, batch=options.batch)
        # a cold start: what it built (modules, store, engine) frozen before the sweep allocates its own, whose cycles
        # (if any) are then collected as usual; first_answer() above is the fallback when something raised before
        coldstart.resume()
        with _collector_paused():
            report = sweep().as_dict()
        if problem:
            report["options_error"] = problem
        logger.info("sweep done", extra=report)
        return report

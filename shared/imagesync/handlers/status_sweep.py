"""status_sweep: advances every copy in flight. Trigger: timer."""

from __future__ import annotations

from typing import Any

from ..platform.context import invocation
from ..platform.logs import logger
from ..platform.wiring import services


def main_handler(event: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    with invocation(context, "status_sweep"):
        svc = services()
        svc.begin_invocation()
        report = svc.sweep()().as_dict()
        logger.info("sweep done", extra=report)
        return report

"""copy_request: validates and starts copies. Triggers: HTTP (Function URL, legacy API Gateway)."""

from __future__ import annotations

from typing import Any

from ..platform.context import invocation
from ..platform.http import is_http_event, to_rest_event, to_scf_response
from ..platform.logs import logger
from ..platform.wiring import services


def main_handler(event: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    with invocation(context, "copy_request") as ctx:
        services().begin_invocation()
        if is_http_event(event):
            from .api import app

            return to_scf_response(app.resolve(to_rest_event(event), ctx))
        logger.warning("ignored an event copy_request does not handle", extra={"keys": sorted(event)[:10]})
        return {"ignored": True, "reason": "not an HTTP event"}

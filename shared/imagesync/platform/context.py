"""SCF's context is a plain dict; this adapts it for the code (and powertools) that expect Lambda's object."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..runtime.deadline import deadline_in
from .logs import logger


class ScfContext:
    """Lambda-context attributes over an SCF context dict; remaining time counts from construction."""

    def __init__(self, context: Mapping[str, Any] | None) -> None:
        ctx = dict(context or {})
        self.raw = ctx
        self.request_id: str = str(ctx.get("request_id") or ctx.get("aws_request_id") or "local")
        self.aws_request_id = self.request_id
        self.function_name: str = str(ctx.get("function_name") or "imagesync-local")
        self.function_version: str = str(ctx.get("function_version") or "$LATEST")
        self.memory_limit_in_mb: int = int(ctx.get("memory_limit_in_mb") or 128)
        limit = ctx.get("time_limit_in_ms")
        self.time_limit_in_ms: int | None = int(limit) if limit not in (None, "") else None
        self.invoked_function_arn = (
            f"qcs::scf:{ctx.get('tencentcloud_region', 'local')}:uin/{ctx.get('tencentcloud_uin', '0')}"
            f":namespace/{ctx.get('namespace', 'default')}/function/{self.function_name}"
        )
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        if self.time_limit_in_ms is None:
            return 2**31 - 1
        return max(0, int(self.time_limit_in_ms - (time.monotonic() - self._started) * 1000))


@contextmanager
def invocation(context: Mapping[str, Any] | None, function: str) -> Iterator[ScfContext]:
    """One invocation: its deadline for every layer, and its ids on every log line."""
    ctx = ScfContext(context)
    seconds = None if ctx.time_limit_in_ms is None else ctx.time_limit_in_ms / 1000
    logger.append_keys(request_id=ctx.request_id, function=function)
    try:
        with deadline_in(seconds):
            yield ctx
    finally:
        logger.remove_keys(["request_id", "function", "replication_id"])

"""Hook runners: what happens when a replica ends, one module per hook type.

A runner gets the hook's spec and the end's context and either returns an outcome (done or skipped, with a JSON
result to record) or raises: a HookError (stable code) or an adapter error (CloudError, WebhookError) whose code is
recorded. Each runner must be safe to run again for the same replica end: completion messages arrive at least
once, and a failed hook is retried by redelivery after the others ran (imagesync.app.complete).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ...domain.hooks import HookSpec
from ...domain.models import CompletionMessage, Replica, Replication

DONE = "done"
SKIPPED = "skipped"
PENDING = "pending"
FAILED = "failed"


@dataclass(frozen=True)
class HookContext:
    """One replica end: the message, the stored replica and replication (None when the store does not hold them),
    every hook that runs for this end (a runner may defer to another), and now."""

    message: CompletionMessage
    replica: Replica | None
    replication: Replication | None
    hooks: Sequence[HookSpec]
    now: datetime

    @property
    def image_id(self) -> str | None:
        return self.message.destination_image_id

    @property
    def region(self) -> str:
        return self.message.destination_region

    @property
    def rule(self) -> str | None:
        return self.replication.rule if self.replication is not None else None


@dataclass(frozen=True)
class HookOutcome:
    status: str  # done | skipped
    result: dict[str, Any] = field(default_factory=dict)


def done(**result: Any) -> HookOutcome:
    return HookOutcome(DONE, result)


def skipped(reason: str, **result: Any) -> HookOutcome:
    return HookOutcome(SKIPPED, {"reason": reason, **result})


class HookError(Exception):
    """A hook that could not do its job; `code` is stable (recorded and shown)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HookRunner(Protocol):
    def run(self, spec: Any, ctx: HookContext) -> HookOutcome:
        """Do the hook's job for this replica end (idempotently); raise on failure."""
        ...


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id shaped like ours (prefix + 12 base-36 chars) from `parts`: a redelivery derives the same one."""
    digest = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:16], "big")
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    chars = []
    for _ in range(12):
        digest, rem = divmod(digest, 36)
        chars.append(alphabet[rem])
    return f"{prefix}-{''.join(chars)}"


def error_code(exc: BaseException) -> str:
    """The stable code of a hook failure: Tencent's own code, our typed error's, or the exception's type."""
    for attr in ("cloud_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    return f"Hook.{type(exc).__name__}"

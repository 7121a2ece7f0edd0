"""Queue adapters and completion links: the `Queue` / `BatchQueue` / `ConsumableQueue` ports of imagesync.ports.

- `LocalQueue`: a durable SQLite-backed queue with visibility timeouts, receipts and dead letters (dev, demo, tests,
  and any single-machine deployment). Implements `ConsumableQueue`.
- `ScfAsyncLink`: the default cloud link, completion_hook invoked asynchronously (scf Invoke, InvocationType Event),
  messages packed into as few 128 KB events as fit. Implements `BatchQueue`.
- `EventBridgeLink`: an EventBridge custom bus (eb PutEvents, 10 events per call), a rule targeting completion_hook.
  Implements `BatchQueue`.

Each is imported lazily so that a function importing one does not pay for the others (SQLAlchemy vs the SDKs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .limits import MAX_BODY_BYTES, check_body_size

if TYPE_CHECKING:
    from .eventbridge import EventBridgeLink
    from .local import LocalQueue
    from .scf_async import ScfAsyncLink

__all__ = ["MAX_BODY_BYTES", "EventBridgeLink", "LocalQueue", "ScfAsyncLink", "check_body_size"]


def __getattr__(name: str) -> Any:
    # Lazy on purpose: SCF cold starts pay for every import (docs/facts.md#F-SCF-8).
    if name == "LocalQueue":
        from .local import LocalQueue

        return LocalQueue
    if name == "ScfAsyncLink":
        from .scf_async import ScfAsyncLink

        return ScfAsyncLink
    if name == "EventBridgeLink":
        from .eventbridge import EventBridgeLink

        return EventBridgeLink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

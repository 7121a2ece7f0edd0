"""Queue adapters: the `Queue` / `ConsumableQueue` ports of imagesync.ports.

- `LocalQueue`: a durable SQLite-backed queue with visibility timeouts, receipts and dead letters (dev, demo, tests,
  and any single-machine deployment). Implements `ConsumableQueue`.
- `TdmqCmqQueue`: a producer over TDMQ for CMQ via the official SDK (queue or topic). Implements `Queue`; in the
  cloud, the trigger delivers messages, so there is no consumer side here.

The two are imported lazily so that a function importing one does not pay for the other (SQLAlchemy vs the SDK).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .limits import MAX_BODY_BYTES, check_body_size

if TYPE_CHECKING:
    from .local import LocalQueue
    from .tdmq import TdmqCmqQueue

__all__ = ["MAX_BODY_BYTES", "LocalQueue", "TdmqCmqQueue", "check_body_size"]


def __getattr__(name: str) -> Any:
    # Lazy on purpose: SCF cold starts pay for every import (docs/facts.md#F-SCF-8).
    if name == "LocalQueue":
        from .local import LocalQueue

        return LocalQueue
    if name == "TdmqCmqQueue":
        from .tdmq import TdmqCmqQueue

        return TdmqCmqQueue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

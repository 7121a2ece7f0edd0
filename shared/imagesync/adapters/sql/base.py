"""What every SQL store shares: the engine, the clock, the schema check and the transaction helpers (engine.py).

Each store of this package (replicas, leases, outbox, idempotency, hook runs, audit) is a subclass of SqlStore
and can be built on its own; SqlStateStore (store.py) is all of them over one engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine

from ...ports import Clock
from .engine import run_read, run_tx
from .migrate import check_schema, upgrade

T = TypeVar("T")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SqlStore:
    """One store on `engine`. Construction checks the schema revision and raises domain.errors.SchemaOutOfDate
    when the database is behind (or empty); `auto_create=True` first upgrades it to head (the local embedded
    SQLite default and tests; never silently in production). All datetimes passed in must be timezone-aware; all
    returned are aware UTC.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        auto_create: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        if auto_create:
            upgrade(engine)
        self.revision = check_schema(engine)

    def _tx(self, fn: Callable[[Connection, int], T]) -> T:
        return run_tx(self.engine, fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return run_read(self.engine, fn)

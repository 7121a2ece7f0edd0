"""SqlDueChecks: the DueChecks port (when the sweep has work next; what status_sweep's timer is armed at)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from ...domain.states import ACTIVE
from .base import SqlStore
from .schema import outbox, replicas

_ACTIVE_VALUES = sorted(s.value for s in ACTIVE)


class SqlDueChecks(SqlStore):
    def earliest_check(self) -> datetime | None:
        """min(next_check_at) over the active replicas (index ix_replicas_state_next_check_at); None: none."""

        def read(conn: Connection) -> datetime | None:
            value: datetime | None = conn.execute(
                select(func.min(replicas.c.next_check_at)).where(replicas.c.state.in_(_ACTIVE_VALUES))
            ).scalar()
            return value

        return self._read(read)

    def has_pending_outbox(self) -> bool:
        def read(conn: Connection) -> bool:
            row = conn.execute(select(outbox.c.message_id).where(outbox.c.sent_at.is_(None)).limit(1)).first()
            return row is not None

        return self._read(read)

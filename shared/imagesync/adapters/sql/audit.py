"""SqlAuditLog: the AuditLog port (who asked for what, from where; each replica's end)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from .base import SqlStore
from .schema import audit


class SqlAuditLog(SqlStore):
    def record_audit(self, replication_id: str, event: str, *, actor: str, origin: str, detail: dict[str, Any]) -> None:
        """Append one audit record stamped with the store's clock; `detail` is stored as JSON (str() for the rest)."""
        row = {
            "replication_id": replication_id,
            "at": self.clock.now(),
            "event": event,
            "actor": actor,
            "origin": origin,
            "detail": json.dumps(detail, default=str, sort_keys=True),
        }

        def write(conn: Connection, _attempt: int) -> None:
            conn.execute(insert(audit), [row])

        self._tx(write)

    def audit_trail(self, replication_id: str) -> list[dict[str, Any]]:
        """The replication's audit records in the order written: dicts with at, event, actor, origin, detail."""

        def read(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                select(audit).where(audit.c.replication_id == replication_id).order_by(audit.c.id)
            ).mappings()
            return [
                {
                    "at": r["at"],
                    "event": r["event"],
                    "actor": r["actor"],
                    "origin": r["origin"],
                    "detail": json.loads(r["detail"]),
                }
                for r in rows
            ]

        return self._read(read)

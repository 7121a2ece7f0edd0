"""SqlLeaseStore: the LeaseStore port (sweepers lease due replicas with a conditional UPDATE; a crashed
sweeper's lease runs out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from ...domain.models import Replica
from ...domain.states import ACTIVE
from .base import SqlStore
from .rows import to_replica
from .schema import replicas

_ACTIVE_VALUES = sorted(s.value for s in ACTIVE)


class SqlLeaseStore(SqlStore):
    def _use_skip_locked(self, conn: Connection) -> bool:
        if self._skip_locked is not None:
            return self._skip_locked
        dialect = conn.dialect
        version = dialect.server_version_info or ()
        if dialect.name == "postgresql":
            return True
        if dialect.name in ("mysql", "mariadb"):
            if getattr(dialect, "is_mariadb", False):
                return tuple(version[:2]) >= (10, 6)
            return tuple(version[:3]) >= (8, 0, 1)
        return False  # SQLite: BEGIN IMMEDIATE already serialises writers

    def claim_due(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, lease_now: datetime | None = None
    ) -> list[Replica]:
        """Lease up to `limit` due active replicas to `owner` until lease_now + lease_seconds (see the port).

        Select candidate ids (SKIP LOCKED where available), then ``UPDATE ... WHERE id IN (:ids) AND`` (still
        active, still due, lease free or expired) -- the condition, not the select, is what makes two owners'
        leases exclusive, on every backend (MySQL forbids an UPDATE with a subquery on the same table, hence two
        statements). Then the rows now held by `owner` are read back. Use a fresh owner per sweep invocation: a
        re-run of this call (lost connection) then returns what the first try leased.
        """
        if limit <= 0:
            return []
        held_at = now if lease_now is None else lease_now
        expires = held_at + timedelta(seconds=lease_seconds)
        due = and_(
            replicas.c.state.in_(_ACTIVE_VALUES),
            replicas.c.next_check_at <= now,
            or_(replicas.c.lease_expires_at.is_(None), replicas.c.lease_expires_at <= held_at),
        )

        def write(conn: Connection, _attempt: int) -> list[Replica]:
            q = select(replicas.c.id).where(due).order_by(replicas.c.next_check_at, replicas.c.id).limit(limit)
            if self._use_skip_locked(conn):
                q = q.with_for_update(skip_locked=True)
            ids = list(conn.execute(q).scalars())
            owned = replicas.c.lease_owner == owner
            if ids:
                conn.execute(
                    update(replicas)
                    .where(replicas.c.id.in_(ids), due)
                    .values(lease_owner=owner, lease_expires_at=expires)
                )
            # the rows this call leased -- including those of a first try whose COMMIT succeeded but whose
            # connection dropped before the answer (a re-run computes the same owner and expiry)
            rows = conn.execute(
                select(replicas)
                .where(owned, replicas.c.lease_expires_at == expires, replicas.c.state.in_(_ACTIVE_VALUES))
                .order_by(replicas.c.next_check_at, replicas.c.id)
                .limit(limit)
            ).mappings()
            return [to_replica(row) for row in rows]

        return self._tx(write)

    def release(self, replica_ids: Sequence[str], owner: str) -> None:
        """Clear `owner`'s leases on these replicas; others' leases are untouched."""
        ids = list(replica_ids)
        if not ids:
            return

        def write(conn: Connection, _attempt: int) -> None:
            conn.execute(
                update(replicas)
                .where(replicas.c.id.in_(ids), replicas.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

        self._tx(write)

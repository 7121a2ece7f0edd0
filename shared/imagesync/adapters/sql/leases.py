"""SqlLeaseStore: the LeaseStore port (sweepers lease due replicas with a conditional UPDATE; a crashed
sweeper's lease runs out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from ...domain.models import InFlight, Replica
from ...domain.states import ACTIVE
from .base import SqlStore
from .rows import IN_FLIGHT_FIELDS, REPLICA_FIELDS, to_in_flight, to_replicas
from .schema import replicas

_ACTIVE_VALUES = sorted(s.value for s in ACTIVE)
#: the columns a Replica is built from (not the lease columns)
_REPLICA_COLUMNS = [replicas.c[name] for name in REPLICA_FIELDS]
#: the columns an InFlight is built from
_IN_FLIGHT_COLUMNS = [replicas.c[name] for name in IN_FLIGHT_FIELDS]
T = TypeVar("T", Replica, InFlight)


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

    def _use_returning(self, conn: Connection) -> bool:
        """UPDATE ... RETURNING: PostgreSQL, and SQLite from 3.35; MySQL/MariaDB have none (the portable path)."""
        dialect = conn.dialect
        if dialect.name == "postgresql":
            return True
        if dialect.name == "sqlite":
            return tuple(dialect.server_version_info or ()) >= (3, 35)
        return False

    def claim_due(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, lease_now: datetime | None = None
    ) -> list[Replica]:
        """Lease up to `limit` due active replicas to `owner` (see the port and _claim)."""
        return self._claim(owner, now, lease_seconds, limit, lease_now, _REPLICA_COLUMNS, to_replicas)

    def claim_in_flight(
        self, owner: str, now: datetime, lease_seconds: float, limit: int, *, lease_now: datetime | None = None
    ) -> list[InFlight]:
        """claim_due's leases, read back as InFlight views: fewer columns, and no Replica validated per row."""
        return self._claim(owner, now, lease_seconds, limit, lease_now, _IN_FLIGHT_COLUMNS, to_in_flight)

    def _claim(
        self,
        owner: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
        lease_now: datetime | None,
        columns: list[Any],
        build: Callable[[Sequence[Sequence[Any]]], list[T]],
    ) -> list[T]:
        """Lease up to `limit` due active replicas to `owner` until lease_now + lease_seconds (see the port).

        Where the backend has UPDATE ... RETURNING (PostgreSQL, SQLite >= 3.35): one statement, ``UPDATE ... WHERE
        id IN (due ids, oldest first, LIMIT; SKIP LOCKED on PostgreSQL) AND`` (still active, still due, lease free
        or expired) ``RETURNING`` the rows it leased. Elsewhere (MySQL/MariaDB, which also forbid an UPDATE with a
        subquery on the same table): select candidate ids (SKIP LOCKED where available), ``UPDATE ... WHERE id IN
        (:ids) AND`` the same condition, then read back the rows now held by `owner`. On both paths the condition,
        not the select, is what makes two owners' leases exclusive. Use a fresh owner per call: a re-run of this
        call after a lost connection (whose first try may have committed) takes the portable path, whose read-back
        by owner and expiry returns what the first try leased.
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
        oldest = (replicas.c.next_check_at, replicas.c.id)

        def write(conn: Connection, attempt: int) -> list[T]:
            q = select(replicas.c.id).where(due).order_by(*oldest).limit(limit)
            if self._use_skip_locked(conn):
                q = q.with_for_update(skip_locked=True)
            lease = update(replicas).values(lease_owner=owner, lease_expires_at=expires)
            if attempt == 1 and self._use_returning(conn):
                # one statement instead of three (select, update, read back); RETURNING hands back exactly the
                # rows this statement leased. The candidates sit in a materialised CTE: PostgreSQL may otherwise
                # run an IN (subquery ... LIMIT) again per row, and lease more than `limit`
                candidates = q.cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql")
                leased = conn.execute(
                    lease.where(replicas.c.id.in_(select(candidates.c.id)), due).returning(*columns)
                ).all()
                got = build(leased)
                got.sort(key=lambda r: (r.next_check_at, r.id))  # RETURNING's order is unspecified
                return got
            ids = list(conn.execute(q).scalars())
            if ids:
                conn.execute(lease.where(replicas.c.id.in_(ids), due))
            # the rows this call leased -- including those of a first try whose COMMIT succeeded but whose
            # connection dropped before the answer (a re-run computes the same owner and expiry)
            rows = conn.execute(
                select(*columns)
                .where(
                    replicas.c.lease_owner == owner,
                    replicas.c.lease_expires_at == expires,
                    replicas.c.state.in_(_ACTIVE_VALUES),
                )
                .order_by(*oldest)
                .limit(limit)
            ).all()
            return build(rows)

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

"""SqlLeaseStore: the LeaseStore port (one sweepers' lease, a row of `leases` taken with a conditional UPDATE; a
crashed sweeper's lease runs out) and the due copies the holder works, read without writing them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ...domain.models import InFlight
from ...domain.states import ACTIVE
from .base import SqlStore
from .rows import IN_FLIGHT_FIELDS, to_in_flight
from .schema import leases, replicas

_ACTIVE_VALUES = sorted(s.value for s in ACTIVE)
#: the columns an InFlight is built from
_IN_FLIGHT_COLUMNS = [replicas.c[name] for name in IN_FLIGHT_FIELDS]
#: the row of `leases` the sweepers take turns on
SWEEP = "sweep"


class SqlLeaseStore(SqlStore):
    def acquire(self, owner: str, now: datetime, lease_seconds: float) -> bool:
        """Hold the sweepers' lease for `owner` until now + lease_seconds, if it is free or expired (see the port).

        One conditional ``UPDATE leases ... WHERE name = 'sweep' AND (free OR expired OR already exactly ours)``:
        the condition, evaluated by the database on the one row, makes the lease exclusive. "Exactly ours" (this
        owner, this expiry) is how a re-run after a lost COMMIT acknowledgement recognises its first try's success.
        The row is inserted on first use (a racing insert loses on the primary key, and looks again)."""
        expires = now + timedelta(seconds=lease_seconds)
        row = leases.c
        takeable = or_(
            row.owner.is_(None),
            row.expires_at.is_(None),
            row.expires_at <= now,
            and_(row.owner == owner, row.expires_at == expires),
        )

        def write(conn: Connection, _attempt: int) -> bool:
            taken = conn.execute(
                update(leases).where(row.name == SWEEP, takeable).values(owner=owner, expires_at=expires)
            ).rowcount
            if taken == 1:
                return True
            held = conn.execute(select(row.owner, row.expires_at).where(row.name == SWEEP)).first()
            if held is None:  # first use on this database
                conn.execute(insert(leases).values(name=SWEEP, owner=owner, expires_at=expires))
                return True
            # (a server that counts rows changed, not matched, reports 0 for a re-run's identical write)
            return bool(held.owner == owner and held.expires_at == expires)

        for _ in range(3):
            try:
                return self._tx(write)
            except IntegrityError:
                continue  # another sweeper inserted the row first: look again
        raise RuntimeError("could not take the sweepers' lease: conflicting inserts kept racing")

    def release(self, owner: str) -> None:
        """Give the sweepers' lease up if `owner` holds it; another owner's is untouched."""

        def write(conn: Connection, _attempt: int) -> None:
            conn.execute(
                update(leases)
                .where(leases.c.name == SWEEP, leases.c.owner == owner)
                .values(owner=None, expires_at=None)
            )

        self._tx(write)

    def due_in_flight(self, now: datetime, limit: int) -> list[InFlight]:
        """Up to `limit` active replicas with next_check_at <= now, oldest (next_check_at, id) first, as InFlight
        views. One plain read (index (state, next_check_at)): nothing is written, the caller's lease keeps other
        sweepers away. Why one statement for the whole sweep and not keyset pages: each page sorted every due row
        left after its key again, twice the read's time for 10,000 copies on SQLite (docs/benchmarks.md)."""
        if limit <= 0:
            return []
        c = replicas.c
        q = (
            select(*_IN_FLIGHT_COLUMNS)
            .where(c.state.in_(_ACTIVE_VALUES), c.next_check_at <= now)
            .order_by(c.next_check_at, c.id)
            .limit(limit)
        )
        return self._read(lambda conn: to_in_flight(conn.execute(q).all()))

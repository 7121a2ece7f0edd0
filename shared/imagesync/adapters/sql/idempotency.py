"""SqlIdempotencyStore: the IdempotencyStore port, after powertools' idempotency persistence layer (one record
per key: INPROGRESS until the claiming invocation's deadline, then COMPLETED with its result until it expires)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ...ports import IdempotencyRecord
from .base import SqlStore
from .schema import idempotency

INPROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"


class SqlIdempotencyStore(SqlStore):
    def idempotency_claim(
        self, key: str, payload_hash: str, *, now: datetime, expires_at: datetime, in_progress_until: datetime
    ) -> IdempotencyRecord | None:
        """Claim `key` (see the port): conditional INSERT; on a duplicate key, a conditional UPDATE takes over a
        record that expired or whose invocation outlived its deadline; otherwise the record is returned."""
        fresh = {
            "status": INPROGRESS,
            "payload_hash": payload_hash,
            "result": None,
            "expires_at": expires_at,
            "in_progress_until": in_progress_until,
        }

        def insert_it(conn: Connection, _attempt: int) -> None:
            conn.execute(insert(idempotency), [{"key": key, **fresh}])

        def take_over(conn: Connection, _attempt: int) -> tuple[bool, IdempotencyRecord | None]:
            """(settled, the existing record): (True, None) taken over, (True, record) held by another claim,
            (False, None) deleted meanwhile (released or purged): insert again."""
            res = conn.execute(
                update(idempotency)
                .where(
                    idempotency.c.key == key,
                    or_(
                        idempotency.c.expires_at <= now,
                        and_(idempotency.c.status == INPROGRESS, idempotency.c.in_progress_until <= now),
                    ),
                )
                .values(**fresh)
            )
            if res.rowcount == 1:
                return True, None
            row = conn.execute(select(idempotency).where(idempotency.c.key == key)).mappings().first()
            if row is None:
                return False, None
            return True, IdempotencyRecord(
                key=row["key"],
                status=row["status"],
                payload_hash=row["payload_hash"],
                result=json.loads(row["result"]) if row["result"] is not None else None,
                expires_at=row["expires_at"],
                in_progress_until=row["in_progress_until"],
            )

        for _ in range(3):
            try:
                self._tx(insert_it)
                return None
            except IntegrityError:
                pass
            settled, existing = self._tx(take_over)
            if settled:
                return existing
        raise RuntimeError(f"idempotency key {key!r} kept changing under the claim")

    def idempotency_complete(
        self, key: str, result: dict[str, Any], *, expires_at: datetime, claimed_until: datetime | None = None
    ) -> None:
        """Mark the record COMPLETED with `result` (JSON) until `expires_at`; no-op if the record is gone.

        With `claimed_until` (the in_progress_until this caller claimed with), only while the record is still that
        claim: an invocation whose claim was taken over cannot complete the new owner's record.
        """
        payload = json.dumps(result, default=str, sort_keys=True)
        mine = (
            []
            if claimed_until is None
            else [idempotency.c.status == INPROGRESS, idempotency.c.in_progress_until == claimed_until]
        )

        def write(conn: Connection, _attempt: int) -> None:
            conn.execute(
                update(idempotency)
                .where(idempotency.c.key == key, *mine)
                .values(status=COMPLETED, result=payload, expires_at=expires_at, in_progress_until=None)
            )

        self._tx(write)

    def idempotency_release(self, key: str, *, claimed_until: datetime | None = None) -> None:
        """Delete the record if it is INPROGRESS (a COMPLETED one stays: its result is the answer to replay);
        with `claimed_until`, only while it is still this caller's claim."""
        mine = [] if claimed_until is None else [idempotency.c.in_progress_until == claimed_until]

        def write(conn: Connection, _attempt: int) -> None:
            conn.execute(delete(idempotency).where(idempotency.c.key == key, idempotency.c.status == INPROGRESS, *mine))

        self._tx(write)

    def purge_expired(self, now: datetime) -> int:
        """Delete idempotency records with expires_at <= now; returns how many."""

        def write(conn: Connection, _attempt: int) -> int:
            return int(conn.execute(delete(idempotency).where(idempotency.c.expires_at <= now)).rowcount)

        return self._tx(write)

"""SqlHookRunStore: the HookRunStore port (one record per hook per replica end: pending, done, failed, skipped).

"done" and "skipped" are final: no later write changes them. "failed" is final for a given-up end (give_up_hooks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ...ports import HookRun
from .base import SqlStore
from .rows import FINAL_HOOK_STATES, SETTLED_HOOK_STATES
from .schema import hook_runs


class SqlHookRunStore(SqlStore):
    def hook_runs(self, replica_ids: Sequence[str]) -> dict[str, list[HookRun]]:
        """The hook records of these replicas by replica id (every id given is a key), ordered by hook key."""
        ids = list(dict.fromkeys(replica_ids))
        out: dict[str, list[HookRun]] = {i: [] for i in ids}
        if not ids:
            return out

        def read(conn: Connection) -> None:
            rows = conn.execute(
                select(hook_runs).where(hook_runs.c.replica_id.in_(ids)).order_by(hook_runs.c.hook_key)
            ).mappings()
            for row in rows:
                out[row["replica_id"]].append(
                    HookRun(
                        replica_id=row["replica_id"],
                        hook_key=row["hook_key"],
                        replication_id=row["replication_id"],
                        hook_type=row["hook_type"],
                        status=row["status"],
                        attempts=int(row["attempts"]),
                        updated_at=row["updated_at"],
                        error_code=row["error_code"],
                        error_message=row["error_message"],
                        result=json.loads(row["result"]) if row["result"] is not None else None,
                    )
                )

        self._read(read)
        return out

    def save_hook_run(self, run: HookRun) -> None:
        """Insert or replace the record of (replica_id, hook_key): UPDATE, then INSERT when no row was there (a
        racing insert makes the transaction re-run as an UPDATE). A record already "done" or "skipped" is final:
        a slower concurrent run of the same end never turns it back into "pending" or "failed"."""
        values = {
            "replication_id": run.replication_id,
            "hook_type": run.hook_type,
            "status": run.status,
            "attempts": run.attempts,
            "error_code": run.error_code,
            "error_message": run.error_message,
            "result": json.dumps(run.result, default=str, sort_keys=True) if run.result is not None else None,
            "updated_at": run.updated_at,
        }
        where = and_(hook_runs.c.replica_id == run.replica_id, hook_runs.c.hook_key == run.hook_key)

        def write(conn: Connection, _attempt: int) -> None:
            open_ = hook_runs.c.status.not_in(FINAL_HOOK_STATES)
            if conn.execute(update(hook_runs).where(where, open_).values(**values)).rowcount == 1:
                return
            if conn.execute(select(hook_runs.c.status).where(where)).first() is not None:
                return  # final already: kept as it is
            conn.execute(insert(hook_runs), [{"replica_id": run.replica_id, "hook_key": run.hook_key, **values}])

        for _ in range(3):
            try:
                self._tx(write)
                return
            except IntegrityError:
                continue  # inserted meanwhile by a racing writer: the next try updates it
        raise RuntimeError(f"hook record {run.replica_id}/{run.hook_key} kept changing under the write")

    def give_up_hooks(
        self,
        replica_id: str,
        replication_id: str,
        hooks: Sequence[tuple[str, str]],
        *,
        error_code: str,
        error_message: str,
        at: datetime,
    ) -> list[str]:
        """Mark every given hook with no record or an open one ``failed`` with this error (see the port): per hook
        a conditional UPDATE (status not final nor failed), else an INSERT when there is no row; a racing insert
        re-runs the transaction, which then sees the row. Returns the keys written."""
        given = list(dict.fromkeys(hooks))
        if not given:
            return []
        settled = SETTLED_HOOK_STATES
        message = error_message[:2000]

        def write(conn: Connection, _attempt: int) -> list[str]:
            written: list[str] = []
            for key, hook_type in given:
                where = and_(hook_runs.c.replica_id == replica_id, hook_runs.c.hook_key == key)
                changed = conn.execute(
                    update(hook_runs)
                    .where(where, hook_runs.c.status.not_in(settled))
                    .values(status="failed", error_code=error_code, error_message=message, updated_at=at)
                ).rowcount
                if changed == 0 and conn.execute(select(hook_runs.c.status).where(where)).first() is None:
                    conn.execute(
                        insert(hook_runs),
                        [
                            {
                                "replica_id": replica_id,
                                "hook_key": key,
                                "replication_id": replication_id,
                                "hook_type": hook_type,
                                "status": "failed",
                                "attempts": 0,
                                "error_code": error_code,
                                "error_message": message,
                                "result": None,
                                "updated_at": at,
                            }
                        ],
                    )
                    changed = 1
                if changed:
                    written.append(key)
            return written

        for _ in range(3):
            try:
                return self._tx(write)
            except IntegrityError:
                continue  # a record inserted meanwhile by a racing writer: the next try sees it
        raise RuntimeError(f"hook records of {replica_id} kept changing under the write")

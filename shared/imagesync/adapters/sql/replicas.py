"""SqlReplicaStore: the ReplicaStore port on SQLAlchemy Core (the writes here, the reads in replica_queries.py).

How the promise (every copy finished, retried or visibly failed; none lost, none duplicated) is kept:

* Every replica write is a compare-and-set: ``UPDATE replicas ... WHERE id AND version AND state``; one row
  changed means the caller won, none means somebody else wrote first (the caller re-reads and decides again).
* At most one ACTIVE replica per copy: the UNIQUE ``inflight_key`` column (NULL once terminal) makes the database
  itself refuse a second in-flight copy, whatever two callers race.
* A terminal transition and its completion message commit together: the outbox row is written in the same
  transaction, and ``outbox.replica_id`` is UNIQUE, so there is exactly one message per finished replica.
* Transactions are short and re-run on a deadlock, a serialization failure or a lost connection (run_tx). A
  connection lost during COMMIT leaves the outcome unknown, so every write recognises its own earlier success
  when re-run (create by replication id, save by the row now holding exactly what it wrote).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    bindparam,
    case,
    column,
    func,
    insert,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Update

from ...domain.models import InFlight, Replica, Replication
from ...domain.states import ReplicaState, check_transition
from .replica_queries import SqlReplicaQueries
from .rows import in_flight, key_of, outbox_row, replica_row, to_replica, to_replica_like, with_end
from .schema import outbox, replicas, replications
from .types import UTCDateTime

#: Replica fields a save may change (identity and origin of a replica never change)
_MUTABLE = (
    "image_name",
    "state",
    "destination_image_id",
    "sync_percent",
    "error_code",
    "error_message",
    "attempts",
    "updated_at",
    "started_at",
    "ended_at",
    "next_check_at",
    "deadline_at",
    "looks",
    "first_look_at",
    "looks_over",
    "pace_changed",
)


#: save_progress: the compare-and-set of COPYING -> COPYING
_PROGRESS = (
    update(replicas)
    .where(
        replicas.c.id == bindparam("b_id"),
        replicas.c.version == bindparam("b_version"),
        # a constant in the SQL, not a parameter: the rows alone bind its SQLite text (_sqlite_progress)
        replicas.c.state == literal_column(f"'{ReplicaState.COPYING.value}'"),
    )
    .ordered_values(
        (replicas.c.version, bindparam("b_new_version")),
        (replicas.c.sync_percent, bindparam("b_sync_percent")),
        (replicas.c.next_check_at, bindparam("b_next_check_at", type_=UTCDateTime)),
        (replicas.c.updated_at, bindparam("b_updated_at", type_=UTCDateTime)),
        (replicas.c.looks, bindparam("b_looks")),
        (replicas.c.first_look_at, bindparam("b_first_look_at", type_=UTCDateTime)),
        (replicas.c.pace_changed, bindparam("b_pace_changed")),
    )
)


@functools.cache
def _sqlite_progress() -> str:
    """_PROGRESS as the SQL text SQLite runs, its parameters by name (``:b_id``, ...), rendered once.

    Why: save_progress on SQLite hands sqlite3 its rows itself (``exec_driver_sql``), their timestamps already the
    stored text (UTCDateTime's own SQLite converter): an executemany through SQLAlchemy builds and processes
    every row's parameters again, about half the write's time for a sweep's 10,000 rows (docs/benchmarks.md)."""
    from sqlalchemy.dialects import sqlite  # here: loaded by a SQLite engine already, never by the others

    return str(_PROGRESS.compile(dialect=sqlite.dialect(paramstyle="named")))


def _as_is(value: Any) -> Any:
    return value


def _stamps(dialect: Dialect) -> Callable[[datetime | None], str | None]:
    """The stored text of a timestamp (UTCDateTime's converter), once per distinct value: the rows of one progress
    write share their updated_at (the sweep's "now" for a page) and mostly their first_look_at."""
    convert = UTCDateTime().bind_processor(dialect)
    texts: dict[datetime | None, str | None] = {}

    def stamp(value: datetime | None) -> str | None:
        text = texts.get(value)
        if text is None:
            text = texts[value] = convert(value)
        return text

    return stamp


#: save_progress on PostgreSQL: every row in one statement, its columns bound as arrays and joined by id
#: (``UPDATE replicas ... FROM unnest(:ids, :versions, ...) AS v(...) WHERE id = v.id AND version = v.version AND
#: state = 'COPYING'``): the same compare-and-set as _PROGRESS, row by row.
_PG_PROGRESS_ROWS = (
    ("id", String, "b_id"),
    ("version", Integer, "b_version"),
    ("sync_percent", Integer, "b_sync_percent"),
    ("next_check_at", UTCDateTime, "b_next_check_at"),
    ("updated_at", UTCDateTime, "b_updated_at"),
    ("looks", Integer, "b_looks"),
    ("first_look_at", UTCDateTime, "b_first_look_at"),
    ("pace_changed", Integer, "b_pace_changed"),
)
_pg_rows = (
    func.unnest(*[bindparam(key, type_=ARRAY(type_)) for _, type_, key in _PG_PROGRESS_ROWS])
    .table_valued(*[column(name, type_) for name, type_, _ in _PG_PROGRESS_ROWS])
    .render_derived(name="v")
)
_PG_PROGRESS = (
    update(replicas)
    .where(
        replicas.c.id == _pg_rows.c.id,
        replicas.c.version == _pg_rows.c.version,
        replicas.c.state == ReplicaState.COPYING.value,
    )
    .values(
        version=replicas.c.version + 1,
        sync_percent=_pg_rows.c.sync_percent,
        next_check_at=_pg_rows.c.next_check_at,
        updated_at=_pg_rows.c.updated_at,
        looks=_pg_rows.c.looks,
        first_look_at=_pg_rows.c.first_look_at,
        pace_changed=_pg_rows.c.pace_changed,
    )
)

#: save_progress on MySQL/MariaDB: rows per UPDATE. Bounds each statement's CASE lists, which the server reads
#: in order for every row it updates (so a statement's work grows with the square of its rows)
PROGRESS_CHUNK = 100
#: the columns a progress write sets from its rows, with their row keys
_PROGRESS_VALUES = (
    ("sync_percent", "b_sync_percent"),
    ("next_check_at", "b_next_check_at"),
    ("updated_at", "b_updated_at"),
    ("looks", "b_looks"),
    ("first_look_at", "b_first_look_at"),
    ("pace_changed", "b_pace_changed"),
)


def _progress_in_one(rows: Sequence[Mapping[str, Any]]) -> Update:
    """The progress of `rows` (save_progress's parameter rows) as one UPDATE, for MySQL/MariaDB (no arrays).

    The same compare-and-set as _PROGRESS, row by row: ``WHERE id IN (ids) AND (id, version) IN ((id, expected),
    ...) AND state = 'COPYING'``, so a row changed meanwhile matches nothing and is not counted; ``version =
    version + 1`` is each row's expected version plus one. A column with one value across the rows is set to it,
    another by ``CASE id WHEN .. THEN ..``. Why: PyMySQL runs an executemany UPDATE as one round trip per row.
    """
    ids = [row["b_id"] for row in rows]
    values: list[tuple[Any, Any]] = [(replicas.c.version, replicas.c.version + 1)]
    for name, key in _PROGRESS_VALUES:
        column = replicas.c[name]
        first = rows[0][key]
        if all(row[key] == first for row in rows):
            values.append((column, literal(first, column.type)))
        else:
            whens = [(row["b_id"], literal(row[key], column.type)) for row in rows]
            values.append((column, case(*whens, value=replicas.c.id, else_=column)))
    return (
        update(replicas)
        .where(
            replicas.c.id.in_(ids),
            tuple_(replicas.c.id, replicas.c.version).in_([(row["b_id"], row["b_version"]) for row in rows]),
            replicas.c.state == ReplicaState.COPYING.value,
        )
        .ordered_values(*values)
    )


class SqlReplicaStore(SqlReplicaQueries):
    """Replications and their replicas: the queries (SqlReplicaQueries) and the compare-and-set writes."""

    def create_replication(self, replication: Replication) -> Replication:
        """Insert the replication and its replicas in one transaction (see the port).

        Idempotent by replication id: when a replication with this id is already stored (a re-run after a lost
        COMMIT, or an at-least-once redelivery), the stored one is returned and nothing is written.
        Raises AlreadyInFlight(replication_id=existing) when an active replica of another replication has the same
        copy; raises ValueError when the replication itself lists the same copy twice.
        """
        keys = [key_of(r) for r in replication.replicas if not r.state.terminal]
        if len(set(keys)) != len(keys):
            raise ValueError(f"replication {replication.id} lists the same copy twice")
        for r in replication.replicas:
            if r.replication_id != replication.id:
                raise ValueError(f"replica {r.id} belongs to {r.replication_id}, not {replication.id}")

        def conflict(conn: Connection) -> str | None:
            if not keys:
                return None
            found = conn.execute(
                select(replicas.c.replication_id)
                .where(replicas.c.inflight_key.in_(keys), replicas.c.replication_id != replication.id)
                .limit(1)
            ).scalar()
            return found

        def write(conn: Connection, _attempt: int) -> str | None:
            if conn.execute(select(replications.c.id).where(replications.c.id == replication.id)).first():
                return "exists"
            existing = conflict(conn)
            if existing is not None:
                return existing
            conn.execute(
                insert(replications),
                [
                    {
                        "id": replication.id,
                        "source_region": replication.source_region,
                        "image_ids": json.dumps(replication.image_ids),
                        "destination_regions": json.dumps(replication.destination_regions),
                        "name": replication.name,
                        "dry_run": replication.dry_run,
                        "origin": replication.origin.value,
                        "requested_by": replication.requested_by,
                        "created_at": replication.created_at,
                        "rule": replication.rule,
                        "hooks": _hooks_json(replication),
                        "accounts": (
                            json.dumps([a.model_dump(mode="json") for a in replication.accounts])
                            if replication.accounts
                            else None
                        ),
                        "requested_destinations": (
                            json.dumps(replication.requested_destinations)
                            if replication.requested_destinations is not None
                            else None
                        ),
                    }
                ],
            )
            if replication.replicas:
                conn.execute(insert(replicas), [replica_row(r) for r in replication.replicas])
            ended = [with_end(r) for r in replication.replicas if r.state.terminal]
            if ended:
                conn.execute(insert(outbox), [outbox_row(r) for r in ended])
            return None

        for _ in range(3):
            try:
                outcome = self._tx(write)
            except IntegrityError:
                # lost a race: another transaction inserted the same copy (or this id) first. Look again.
                existing = self._read(conflict)
                if existing is not None:
                    raise in_flight(existing) from None
                continue
            if outcome is None:
                return replication
            if outcome == "exists":
                stored = self.get_replication(replication.id)
                assert stored is not None
                return stored
            raise in_flight(outcome)
        raise RuntimeError(f"could not insert replication {replication.id}: conflicting writes kept racing")

    def save_replica(self, replica: Replica, *, expected_version: int, expected_state: ReplicaState) -> Replica | None:
        """Compare-and-set (see the port). A terminal replica without ended_at gets ended_at = updated_at.

        Raises IllegalTransition before touching the database. Returns None when the row is no longer at
        (expected_version, expected_state), or does not exist.
        """
        expected_state = ReplicaState(expected_state)
        check_transition(expected_state, replica.state)
        if replica.state.terminal:
            replica = with_end(replica)
        stored = replica.model_copy(update={"version": expected_version + 1})
        values: dict[str, Any] = {name: getattr(stored, name) for name in _MUTABLE}
        values["state"] = stored.state.value
        values["version"] = stored.version
        if stored.state.terminal:
            values["inflight_key"] = None

        def write(conn: Connection, attempt: int) -> bool:
            res = conn.execute(
                update(replicas)
                .where(
                    replicas.c.id == replica.id,
                    replicas.c.version == expected_version,
                    replicas.c.state == expected_state.value,
                )
                .values(**values)
            )
            if res.rowcount == 1:
                if stored.state.terminal:
                    conn.execute(insert(outbox), [outbox_row(stored)])
                return True
            if attempt > 1:
                # re-run after an error: our first try may have committed before the connection dropped. If the
                # row holds exactly what we wrote, it was us (a writer producing the identical row is harmless).
                row = conn.execute(select(replicas).where(replicas.c.id == replica.id)).mappings().first()
                return row is not None and to_replica(row) == to_replica_like(stored)
            return False

        return stored if self._tx(write) else None

    def save_progress(self, changes: Sequence[tuple[Replica | InFlight, int]]) -> int:
        """Progress of copies in flight, many in one transaction (see the port): each (replica, expected_version)
        is written COPYING -> COPYING by compare-and-set on (id, version, state); a row changed meanwhile is left.
        Returns how many rows it wrote (-1: the driver cannot tell).

        Why one transaction: the sweep records progress for every copy it checks, and a transaction (and a
        statement build) per copy was most of its time (docs/benchmarks.md). Within it: an executemany of
        _PROGRESS's SQLite text on SQLite (_sqlite_progress), one UPDATE joined to the rows as arrays on PostgreSQL
        (_PG_PROGRESS), one UPDATE per PROGRESS_CHUNK rows on MySQL/MariaDB (_progress_in_one), where an
        executemany is a round trip per row.
        """
        dialect = self.engine.dialect
        on_sqlite = dialect.name == "sqlite"
        # on SQLite the rows go to sqlite3 as they are, so their timestamps are the stored text already
        stamp: Callable[[Any], Any] = _stamps(dialect) if on_sqlite else _as_is
        rows = []
        for replica, expected_version in changes:
            if replica.state is not ReplicaState.COPYING:
                raise ValueError(f"save_progress writes COPYING replicas only, not {replica.state.value}")
            rows.append(
                {
                    "b_id": replica.id,
                    "b_version": expected_version,
                    "b_new_version": expected_version + 1,
                    "b_sync_percent": replica.sync_percent,
                    "b_next_check_at": stamp(replica.next_check_at),
                    "b_updated_at": stamp(replica.updated_at),
                    "b_looks": replica.looks,
                    "b_first_look_at": stamp(replica.first_look_at),
                    "b_pace_changed": replica.pace_changed,
                }
            )
        if not rows:
            return 0

        def write(conn: Connection, _attempt: int) -> int:
            # a re-run after a lost COMMIT finds its own rows at the new version: the CAS skips them, as it should
            # (and reports them unwritten)
            if conn.dialect.name == "postgresql":
                # one statement, not one per row; each row it matches changes (version + 1): its count is the
                # rows written
                return conn.execute(
                    _PG_PROGRESS, {key: [row[key] for row in rows] for _, _, key in _PG_PROGRESS_ROWS}
                ).rowcount
            if conn.dialect.name in ("mysql", "mariadb"):
                # a statement per PROGRESS_CHUNK rows, not a round trip per row; each row it matches changes
                # (version + 1), so the server's count (rows matched) is the rows written
                return sum(
                    conn.execute(_progress_in_one(rows[at : at + PROGRESS_CHUNK])).rowcount
                    for at in range(0, len(rows), PROGRESS_CHUNK)
                )
            # SQLite: in-process, no round trip to save: an executemany of one prepared statement, the rows bound
            # by sqlite3 itself (_sqlite_progress)
            written = conn.exec_driver_sql(_sqlite_progress(), rows).rowcount
            return written if conn.dialect.supports_sane_multi_rowcount else -1

        return self._tx(write)

    def add_replica(self, replica: Replica) -> Replica:
        """Insert one more replica into its existing replication (see the port); idempotent by replica id."""
        key = None if replica.state.terminal else key_of(replica)

        def write(conn: Connection, _attempt: int) -> Replica | str | None:
            row = conn.execute(select(replicas).where(replicas.c.id == replica.id)).mappings().first()
            if row is not None:
                return to_replica(row)
            if key is not None:
                holder = conn.execute(select(replicas.c.replication_id).where(replicas.c.inflight_key == key)).scalar()
                if holder is not None:
                    return str(holder)
            conn.execute(insert(replicas), [replica_row(replica)])
            return None

        for _ in range(3):
            try:
                outcome = self._tx(write)
            except IntegrityError:
                continue  # a racing insert of the same id or copy: look again
            if outcome is None:
                return replica
            if isinstance(outcome, Replica):
                return outcome
            raise in_flight(outcome)
        raise RuntimeError(f"could not insert replica {replica.id}: conflicting writes kept racing")


def _hooks_json(replication: Replication) -> str | None:
    if not replication.hooks:
        return None
    return json.dumps([h.model_dump(mode="json") for h in replication.hooks], sort_keys=True)

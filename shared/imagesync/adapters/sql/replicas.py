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
import operator
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, insert, select, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError

from ...domain.models import InFlight, Replica, Replication
from ...domain.states import ReplicaState, check_transition
from .replica_queries import SqlReplicaQueries
from .rows import in_flight, key_of, outbox_row, replica_row, to_replica, to_replica_like, with_end
from .schema import outbox, replicas, replications
from .types import UTCDateTime, utc_text

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


#: What a progress write (save_progress, COPYING -> COPYING) sets besides the version (version + 1): replicas'
#: columns, each from the InFlight (or Replica) field of the same name. Every backend's statement and rows are built
#: from this one list: a column the progress writes too is added here (and to InFlight), nowhere else.
PROGRESS_COLUMNS: tuple[str, ...] = (
    "sync_percent",
    "next_check_at",
    "updated_at",
    "looks",
    "first_look_at",
    "pace_changed",
)


def _kind(name: str) -> str:
    """How a progress column's values are sent: "timestamp" (as utc_text), "int" or "text"."""
    type_ = replicas.c[name].type
    if isinstance(type_, UTCDateTime):
        return "timestamp"
    if isinstance(type_, Integer):
        return "int"
    if isinstance(type_, String):
        return "text"
    raise TypeError(f"replicas.{name}: save_progress does not know how to send a {type_!r}")


_COPYING = ReplicaState.COPYING.value

#: a row of a progress write: (id, expected version, *PROGRESS_COLUMNS), and the kind of each of its values
_ROW_KINDS: tuple[str, ...] = ("text", "int", *(_kind(name) for name in PROGRESS_COLUMNS))

#: save_progress on MySQL/MariaDB: rows per UPDATE. Bounds each statement's CASE lists, which the server reads
#: in order for every row it updates (so a statement's work grows with the square of its rows)
PROGRESS_CHUNK = 100


def _progress_rows(changes: Sequence[tuple[Replica | InFlight, int]]) -> list[tuple[Any, ...]]:
    """The rows of a progress write: (id, expected version, *PROGRESS_COLUMNS values) per change, each timestamp
    as its UTC text (utc_text, once per distinct value: a sweep's rows share their updated_at and mostly their
    first_look_at). Raises ValueError on a change that is not COPYING."""
    fields = operator.attrgetter(*PROGRESS_COLUMNS)
    stamped = [kind == "timestamp" for kind in _ROW_KINDS[2:]]
    texts: dict[datetime, str] = {}

    def stamp(value: datetime | None) -> str | None:
        if value is None:
            return None
        text = texts.get(value)
        if text is None:
            text = texts[value] = utc_text(value)
        return text

    rows = []
    for replica, expected_version in changes:
        if replica.state is not ReplicaState.COPYING:
            raise ValueError(f"save_progress writes COPYING replicas only, not {replica.state.value}")
        values = fields(replica)
        rows.append(
            (
                replica.id,
                expected_version,
                *[stamp(value) if is_stamp else value for value, is_stamp in zip(values, stamped, strict=True)],
            )
        )
    return rows


@functools.cache
def _sqlite_progress() -> str:
    """The compare-and-set as SQLite runs it, a row's values bound by position (?1 id, ?2 expected version, then
    PROGRESS_COLUMNS): sqlite3 takes the rows themselves (_progress_rows), timestamps as the stored text.

    Why not through SQLAlchemy: an executemany there builds and processes every row's parameters again, about half
    the write's time for a sweep's 10,000 rows (docs/benchmarks.md)."""
    sets = "".join(f", {name} = ?{at}" for at, name in enumerate(PROGRESS_COLUMNS, start=3))
    return f"UPDATE replicas SET version = version + 1{sets} WHERE id = ?1 AND version = ?2 AND state = '{_COPYING}'"


@functools.cache
def _pg_progress(dialect: Dialect) -> str:
    """The compare-and-set of every row in one statement, for PostgreSQL: ``UPDATE replicas ... FROM unnest(ids,
    versions, ...) AS v(...) WHERE replicas.id = v.id AND replicas.version = v.version AND replicas.state =
    'COPYING'``, each column of the rows one parameter: an array's text (_pg_array), cast by the server.

    Why text: bound as lists, psycopg dumped every element in Python and SQLAlchemy processed every timestamp
    first: 0.17-0.29 s CPU for 10,000 rows, 0.07-0.09 s as texts (docs/benchmarks.md, the sixth pass)."""
    names = ("id", "version", *PROGRESS_COLUMNS)
    arrays = ", ".join(f"%s::{replicas.c[name].type.compile(dialect=dialect)}[]" for name in names)
    sets = "".join(f", {name} = v.{name}" for name in PROGRESS_COLUMNS)
    return (
        f"UPDATE replicas SET version = replicas.version + 1{sets} FROM unnest({arrays}) AS v({', '.join(names)}) "
        f"WHERE replicas.id = v.id AND replicas.version = v.version AND replicas.state = '{_COPYING}'"
    )


def _pg_array(values: Sequence[Any], kind: str) -> str:
    """`values` as the text of a PostgreSQL array ("{...}", NULL for None); strings and timestamps quoted."""
    if kind == "int":
        return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"
    if kind == "timestamp":  # utc_text: digits, "-", ":", "." and a space
        return "{" + ",".join("NULL" if v is None else f'"{v}"' for v in values) + "}"
    quoted = ("NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _mysql_progress(rows: Sequence[tuple[Any, ...]], quote: Callable[[str], str]) -> Iterator[str]:
    """The progress `rows` (_progress_rows) as UPDATEs of PROGRESS_CHUNK rows each, for MySQL/MariaDB (no arrays),
    their values written into the SQL: strings by `quote`, timestamps as their UTC text, integers as such.

    The same compare-and-set as on the other backends, row by row: ``WHERE id IN (ids) AND (id, version) IN ((id,
    expected), ...) AND state = 'COPYING'``, so a row changed meanwhile matches nothing and is not counted;
    ``version = version + 1`` is each row's expected version plus one. A column with one value across a statement's
    rows is set to it, another by ``CASE id WHEN .. THEN ..``. Why text: PyMySQL runs an executemany UPDATE as
    one round trip per row, and these statements built by SQLAlchemy (a literal object per value, compiled) took
    1.0-1.4 s CPU for 10,000 rows each with its own next check, 0.11-0.17 s as text (docs/benchmarks.md, the
    sixth pass)."""

    def literal(value: Any, kind: str) -> str:
        if value is None:
            return "NULL"
        if kind == "int":
            return str(int(value))
        return f"'{value}'" if kind == "timestamp" else quote(value)

    literals = [[literal(value, kind) for value, kind in zip(row, _ROW_KINDS, strict=True)] for row in rows]
    for at in range(0, len(literals), PROGRESS_CHUNK):
        part = literals[at : at + PROGRESS_CHUNK]
        sets = ["version = version + 1"]
        for i, name in enumerate(PROGRESS_COLUMNS, start=2):
            first = part[0][i]
            if all(row[i] == first for row in part):
                sets.append(f"{name} = {first}")
            else:
                whens = " ".join(f"WHEN {row[0]} THEN {row[i]}" for row in part)
                sets.append(f"{name} = CASE id {whens} ELSE {name} END")
        ids = ", ".join(row[0] for row in part)
        pairs = ", ".join(f"({row[0]}, {row[1]})" for row in part)
        yield (
            f"UPDATE replicas SET {', '.join(sets)} "
            f"WHERE id IN ({ids}) AND (id, version) IN ({pairs}) AND state = '{_COPYING}'"
        )


def _mysql_quote(dialect: Dialect) -> Callable[[str], str]:
    """A string as a MySQL literal, as SQLAlchemy's MySQL dialect writes one (render_literal_value, its ENUM DDL):
    quotes doubled; backslashes doubled unless the server's sql_mode has NO_BACKSLASH_ESCAPES (which the dialect
    reads on connect); "%" doubled where the driver %-formats the statement (PyMySQL does, parameters or none)."""
    backslashes = bool(getattr(dialect, "_backslash_escapes", True))
    percents = dialect.paramstyle in ("format", "pyformat")

    def quote(value: str) -> str:
        value = value.replace("'", "''")
        if backslashes:
            value = value.replace("\\", "\\\\")
        if percents:
            value = value.replace("%", "%%")
        return "'" + value + "'"

    return quote


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
        is written COPYING -> COPYING by compare-and-set on (id, version, state), its PROGRESS_COLUMNS and version
        + 1; a row changed meanwhile is left. Returns how many rows it wrote (-1: the driver cannot tell).

        Why one transaction: the sweep records progress for every copy it checks, and a transaction (and a
        statement build) per copy was most of its time (docs/benchmarks.md). Within it: an executemany of one
        prepared statement on SQLite (_sqlite_progress), one UPDATE joined to the rows as arrays on PostgreSQL
        (_pg_progress), one UPDATE per PROGRESS_CHUNK rows on MySQL/MariaDB (_mysql_progress), where an
        executemany is a round trip per row.
        """
        rows = _progress_rows(changes)
        if not rows:
            return 0

        def write(conn: Connection, _attempt: int) -> int:
            # a re-run after a lost COMMIT finds its own rows at the new version: the CAS skips them, as it should
            # (and reports them unwritten)
            name = conn.dialect.name
            if name == "postgresql":
                # one statement, not one per row; each row it matches changes (version + 1): its count is the
                # rows written
                columns = zip(*rows, strict=True)
                arrays = tuple(_pg_array(values, kind) for values, kind in zip(columns, _ROW_KINDS, strict=True))
                return conn.exec_driver_sql(_pg_progress(conn.dialect), arrays).rowcount
            if name in ("mysql", "mariadb"):
                # a statement per PROGRESS_CHUNK rows, not a round trip per row; each row it matches changes
                # (version + 1), so the server's count (rows matched) is the rows written
                statements = _mysql_progress(rows, _mysql_quote(conn.dialect))
                return sum(conn.exec_driver_sql(sql).rowcount for sql in statements)
            # SQLite: in-process, no round trip to save: an executemany of one prepared statement, the rows bound
            # by sqlite3 itself
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

"""SqlStateStore: the StateStore port on SQLAlchemy Core, for SQLite, MySQL/MariaDB and PostgreSQL.

How the promise (every copy finished, retried or visibly failed; none lost, none duplicated) is kept:

* Every replica write is a compare-and-set: ``UPDATE replicas ... WHERE id AND version AND state``; one row
  changed means the caller won, none means somebody else wrote first (the caller re-reads and decides again).
* At most one ACTIVE replica per copy: the UNIQUE ``inflight_key`` column (NULL once terminal) makes the database
  itself refuse a second in-flight copy, whatever two callers race.
* A terminal transition and its completion message commit together: the outbox row is written in the same
  transaction, and ``outbox.replica_id`` is UNIQUE, so there is exactly one message per finished replica.
* Sweepers lease replicas (owner, expiry) with a conditional UPDATE; a crashed sweeper's lease runs out.
* Transactions are short and re-run on a deadlock, a serialization failure or a lost connection (run_tx). A
  connection lost during COMMIT leaves the outcome unknown, so every write recognises its own earlier success
  when re-run (create by replication id, save by the row now holding exactly what it wrote, claims by owner).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from ...domain.errors import AlreadyInFlight
from ...domain.models import CompletionMessage, Replica, Replication
from ...domain.states import ACTIVE, ReplicaState, check_transition
from ...ports import Clock, HookRun, IdempotencyRecord
from .engine import run_read, run_tx
from .migrate import check_schema, upgrade
from .schema import TABLES, audit, hook_runs, idempotency, outbox, replicas, replications
from .types import UTCDateTime

T = TypeVar("T")

_ACTIVE_VALUES = sorted(s.value for s in ACTIVE)
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
)
_REPLICA_FIELDS = tuple(Replica.model_fields)
INPROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"
#: hook_runs statuses that no later write may change (see save_hook_run)
FINAL_HOOK_STATES = ("done", "skipped")


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def inflight_key(source_region: str, image_id: str, destination_region: str) -> str:
    """The in-flight marker of one copy: "<source_region>/<image>/<destination_region>"."""
    return f"{source_region}/{image_id}/{destination_region}"


def _key_of(r: Replica) -> str:
    return inflight_key(r.source_region, r.source_image_id, r.destination_region)


class SqlStateStore:
    """The state table (see the module docstring for the guarantees).

    Construction checks the schema revision and raises domain.errors.SchemaOutOfDate when the database is behind
    (or empty); `auto_create=True` first upgrades it to head (the local embedded SQLite default and tests; never
    silently in production). `skip_locked`: None picks SELECT ... FOR UPDATE SKIP LOCKED for claims where the
    server has it (PostgreSQL, MySQL 8, MariaDB 10.6+; concurrent sweepers then take disjoint batches instead of
    racing for the same rows); False forces the portable path (the conditional UPDATE alone guarantees exclusive
    leases either way). All datetimes passed in must be timezone-aware; all returned are aware UTC.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        auto_create: bool = False,
        clock: Clock | None = None,
        skip_locked: bool | None = None,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or _SystemClock()
        self._skip_locked = skip_locked
        if auto_create:
            upgrade(engine)
        self.revision = check_schema(engine)

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _tx(self, fn: Callable[[Connection, int], T]) -> T:
        return run_tx(self.engine, fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return run_read(self.engine, fn)

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

    @staticmethod
    def _replica_row(r: Replica) -> dict[str, Any]:
        row = {name: getattr(r, name) for name in _REPLICA_FIELDS}
        row["state"] = r.state.value
        row["inflight_key"] = None if r.state.terminal else _key_of(r)
        row["lease_owner"] = None
        row["lease_expires_at"] = None
        return row

    @staticmethod
    def _to_replica(row: RowMapping) -> Replica:
        return Replica.model_validate({name: row[name] for name in _REPLICA_FIELDS})

    @staticmethod
    def _outbox_row(r: Replica) -> dict[str, Any]:
        msg = CompletionMessage.for_replica(r)
        return {
            "message_id": msg.message_id,
            "replica_id": r.id,
            "payload": msg.model_dump_json(),
            "created_at": r.ended_at,
            "sent_at": None,
        }

    def _load_replications(self, conn: Connection, rows: Sequence[RowMapping]) -> list[Replication]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        by_parent: dict[str, list[Replica]] = {i: [] for i in ids}
        for row in conn.execute(select(replicas).where(replicas.c.replication_id.in_(ids))).mappings():
            by_parent[row["replication_id"]].append(self._to_replica(row))
        out = []
        for row in rows:
            images: list[str] = json.loads(row["image_ids"])
            dests: list[str] = json.loads(row["destination_regions"])

            def order(r: Replica, images: list[str] = images, dests: list[str] = dests) -> tuple[int, int, str]:
                # request order: image by image, region by region (the ids are random)
                i = images.index(r.source_image_id) if r.source_image_id in images else len(images)
                d = dests.index(r.destination_region) if r.destination_region in dests else len(dests)
                return (i, d, r.id)

            out.append(
                Replication(
                    id=row["id"],
                    source_region=row["source_region"],
                    image_ids=images,
                    destination_regions=dests,
                    name=row["name"],
                    dry_run=bool(row["dry_run"]),
                    origin=row["origin"],
                    requested_by=row["requested_by"],
                    rule=row["rule"],
                    hooks=json.loads(row["hooks"]) if row["hooks"] else [],
                    created_at=row["created_at"],
                    replicas=sorted(by_parent[row["id"]], key=order),
                )
            )
        return out

    # -- replications -----------------------------------------------------------------------------------------

    def create_replication(self, replication: Replication) -> Replication:
        """Insert the replication and its replicas in one transaction (see the port).

        Idempotent by replication id: when a replication with this id is already stored (a re-run after a lost
        COMMIT, or an at-least-once redelivery), the stored one is returned and nothing is written.
        Raises AlreadyInFlight(replication_id=existing) when an active replica of another replication has the same
        copy; raises ValueError when the replication itself lists the same copy twice.
        """
        keys = [_key_of(r) for r in replication.replicas if not r.state.terminal]
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
                    }
                ],
            )
            if replication.replicas:
                conn.execute(insert(replicas), [self._replica_row(r) for r in replication.replicas])
            ended = [self._with_end(r) for r in replication.replicas if r.state.terminal]
            if ended:
                conn.execute(insert(outbox), [self._outbox_row(r) for r in ended])
            return None

        for _ in range(3):
            try:
                outcome = self._tx(write)
            except IntegrityError:
                # lost a race: another transaction inserted the same copy (or this id) first. Look again.
                existing = self._read(conflict)
                if existing is not None:
                    raise self._in_flight(existing) from None
                continue
            if outcome is None:
                return replication
            if outcome == "exists":
                stored = self.get_replication(replication.id)
                assert stored is not None
                return stored
            raise self._in_flight(outcome)
        raise RuntimeError(f"could not insert replication {replication.id}: conflicting writes kept racing")

    @staticmethod
    def _in_flight(existing: str) -> AlreadyInFlight:
        return AlreadyInFlight(f"a copy of the same image into the same region is in flight in {existing}", existing)

    @staticmethod
    def _with_end(r: Replica) -> Replica:
        return r if r.ended_at is not None else r.model_copy(update={"ended_at": r.updated_at})

    def get_replication(self, replication_id: str) -> Replication | None:
        def read(conn: Connection) -> Replication | None:
            rows = conn.execute(select(replications).where(replications.c.id == replication_id)).mappings().all()
            found = self._load_replications(conn, rows)
            return found[0] if found else None

        return self._read(read)

    def list_replications(
        self,
        *,
        state: ReplicaState | None = None,
        image_id: str | None = None,
        region: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[Replication], str | None]:
        """Newest first (created_at, then id, descending); keyset pagination with an opaque cursor.

        A replication matches when ONE of its replicas matches every filter given: `state` its state, `image_id`
        its source image, `region` its destination region or the replication's source region.
        Raises ValueError on a malformed cursor.
        """
        q = select(replications)
        conds = []
        if state is not None:
            conds.append(replicas.c.state == ReplicaState(state).value)
        if image_id is not None:
            conds.append(replicas.c.source_image_id == image_id)
        if region is not None:
            conds.append(or_(replicas.c.destination_region == region, replicas.c.source_region == region))
        if conds:
            q = q.where(exists().where(replicas.c.replication_id == replications.c.id, *conds))
        if cursor:
            at, last_id = _decode_cursor(cursor)
            at_param = bindparam("cursor_at", at, type_=UTCDateTime())
            q = q.where(
                or_(
                    replications.c.created_at < at_param,
                    and_(replications.c.created_at == at_param, replications.c.id < last_id),
                )
            )
        q = q.order_by(replications.c.created_at.desc(), replications.c.id.desc()).limit(max(1, limit) + 1)

        def read(conn: Connection) -> tuple[list[Replication], str | None]:
            rows = conn.execute(q).mappings().all()
            more = len(rows) > max(1, limit)
            rows = rows[: max(1, limit)]
            page = self._load_replications(conn, rows)
            nxt = _encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
            return page, nxt

        return self._read(read)

    # -- replicas -----------------------------------------------------------------------------------------------

    def get_replica(self, replica_id: str) -> Replica | None:
        def read(conn: Connection) -> Replica | None:
            row = conn.execute(select(replicas).where(replicas.c.id == replica_id)).mappings().first()
            return self._to_replica(row) if row else None

        return self._read(read)

    def find_active(self, source_region: str, image_id: str, destination_region: str) -> Replica | None:
        """The active replica of this copy, if any (a lookup on the unique in-flight marker)."""
        key = inflight_key(source_region, image_id, destination_region)

        def read(conn: Connection) -> Replica | None:
            row = conn.execute(select(replicas).where(replicas.c.inflight_key == key)).mappings().first()
            return self._to_replica(row) if row else None

        return self._read(read)

    def replica_states(self, source_region: str, image_ids: Sequence[str]) -> dict[tuple[str, str], list[str]]:
        """(image, destination) -> states of its replicas; one indexed query (source_image_id) per 500 ids."""
        ids = list(dict.fromkeys(image_ids))

        def read(conn: Connection) -> dict[tuple[str, str], list[str]]:
            out: dict[tuple[str, str], list[str]] = {}
            for start in range(0, len(ids), 500):
                q = select(replicas.c.source_image_id, replicas.c.destination_region, replicas.c.state).where(
                    replicas.c.source_region == source_region,
                    replicas.c.source_image_id.in_(ids[start : start + 500]),
                )
                for image_id, destination, state in conn.execute(q):
                    out.setdefault((image_id, destination), []).append(state)
            return out

        return self._read(read) if ids else {}

    def destination_image_ids(self, region: str, image_ids: Sequence[str]) -> set[str]:
        """Those of `image_ids` that some replica made in `region` (indexed by destination_region)."""
        ids = list(dict.fromkeys(image_ids))

        def read(conn: Connection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(ids), 500):
                q = select(replicas.c.destination_image_id).where(
                    replicas.c.destination_region == region,
                    replicas.c.destination_image_id.in_(ids[start : start + 500]),
                )
                found.update(str(v) for (v,) in conn.execute(q))
            return found

        return self._read(read) if ids else set()

    def save_replica(
        self, replica: Replica, *, expected_version: int, expected_state: ReplicaState
    ) -> Replica | None:
        """Compare-and-set (see the port). A terminal replica without ended_at gets ended_at = updated_at.

        Raises IllegalTransition before touching the database. Returns None when the row is no longer at
        (expected_version, expected_state), or does not exist.
        """
        expected_state = ReplicaState(expected_state)
        check_transition(expected_state, replica.state)
        if replica.state.terminal:
            replica = self._with_end(replica)
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
                    conn.execute(insert(outbox), [self._outbox_row(stored)])
                return True
            if attempt > 1:
                # re-run after an error: our first try may have committed before the connection dropped. If the
                # row holds exactly what we wrote, it was us (a writer producing the identical row is harmless).
                row = conn.execute(select(replicas).where(replicas.c.id == replica.id)).mappings().first()
                return row is not None and self._to_replica(row) == self._to_replica_like(stored)
            return False

        return stored if self._tx(write) else None

    def save_progress(self, changes: Sequence[tuple[Replica, int]]) -> None:
        """Progress of copies in flight, many in one transaction (see the port): each (replica, expected_version)
        is written COPYING -> COPYING by compare-and-set on (id, version, state); a row changed meanwhile is left.

        Why one executemany: the sweep records progress for every copy it checks, and a transaction (and a
        statement build) per copy was most of its time (docs/benchmarks.md).
        """
        rows = []
        for replica, expected_version in changes:
            if replica.state is not ReplicaState.COPYING:
                raise ValueError(f"save_progress writes COPYING replicas only, not {replica.state.value}")
            rows.append({
                "b_id": replica.id, "b_version": expected_version, "b_new_version": expected_version + 1,
                "b_sync_percent": replica.sync_percent, "b_next_check_at": replica.next_check_at,
                "b_updated_at": replica.updated_at,
            })
        if not rows:
            return
        stmt = (
            update(replicas)
            .where(
                replicas.c.id == bindparam("b_id"),
                replicas.c.version == bindparam("b_version"),
                replicas.c.state == ReplicaState.COPYING.value,
            )
            .values(
                version=bindparam("b_new_version"),
                sync_percent=bindparam("b_sync_percent"),
                next_check_at=bindparam("b_next_check_at", type_=UTCDateTime),
                updated_at=bindparam("b_updated_at", type_=UTCDateTime),
            )
        )

        def write(conn: Connection, _attempt: int) -> None:
            # a re-run after a lost COMMIT finds its own rows at the new version: the CAS skips them, as it should
            conn.execute(stmt, rows)

        self._tx(write)

    @staticmethod
    def _to_replica_like(r: Replica) -> Replica:
        # what reading `r` back yields: datetimes normalised to UTC
        return Replica.model_validate(
            {
                k: (v.astimezone(timezone.utc) if isinstance(v, datetime) else v)
                for k, v in r.model_dump().items()
            }
        )

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
            return [self._to_replica(row) for row in rows]

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

    # -- outbox ---------------------------------------------------------------------------------------------------

    def pending_outbox(self, limit: int = 100) -> list[CompletionMessage]:
        """Messages with sent_at NULL, oldest first (created_at = the replica's ended_at, then message id).

        Several publishers may read the same messages: publishing is at least once, the consumer deduplicates by
        message_id (completion_hook's idempotency).
        """

        def read(conn: Connection) -> list[CompletionMessage]:
            rows = conn.execute(
                select(outbox.c.payload)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.created_at, outbox.c.message_id)
                .limit(limit)
            ).scalars()
            return [CompletionMessage.model_validate_json(p) for p in rows]

        return self._read(read)

    def mark_outbox_sent(self, message_ids: Sequence[str]) -> None:
        """Stamp sent_at on these messages (those already sent keep their first stamp)."""
        ids = list(message_ids)
        if not ids:
            return
        now = self.clock.now()

        def write(conn: Connection, _attempt: int) -> None:
            conn.execute(
                update(outbox).where(outbox.c.message_id.in_(ids), outbox.c.sent_at.is_(None)).values(sent_at=now)
            )

        self._tx(write)

    def count_by_state(self) -> dict[str, int]:
        """Replicas per state; every ReplicaState is a key (0 when none)."""

        def read(conn: Connection) -> dict[str, int]:
            counts = {s.value: 0 for s in ReplicaState}
            for state, n in conn.execute(select(replicas.c.state, func.count()).group_by(replicas.c.state)):
                counts[state] = int(n)
            return counts

        return self._read(read)

    # -- audit ----------------------------------------------------------------------------------------------------

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

    # -- idempotency ------------------------------------------------------------------------------------------

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

        def take_over(conn: Connection, _attempt: int) -> IdempotencyRecord | None | bool:
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
                return None
            row = conn.execute(select(idempotency).where(idempotency.c.key == key)).mappings().first()
            if row is None:
                return False  # deleted meanwhile (released or purged): insert again
            return IdempotencyRecord(
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
            outcome = self._tx(take_over)
            if outcome is not False:
                return outcome  # type: ignore[return-value]
        raise RuntimeError(f"idempotency key {key!r} kept changing under the claim")

    def idempotency_complete(
        self, key: str, result: dict[str, Any], *, expires_at: datetime, claimed_until: datetime | None = None
    ) -> None:
        """Mark the record COMPLETED with `result` (JSON) until `expires_at`; no-op if the record is gone.

        With `claimed_until` (the in_progress_until this caller claimed with), only while the record is still that
        claim: an invocation whose claim was taken over cannot complete the new owner's record.
        """
        payload = json.dumps(result, default=str, sort_keys=True)
        mine = [] if claimed_until is None else [
            idempotency.c.status == INPROGRESS, idempotency.c.in_progress_until == claimed_until
        ]

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
            conn.execute(
                delete(idempotency).where(idempotency.c.key == key, idempotency.c.status == INPROGRESS, *mine)
            )

        self._tx(write)

    def purge_expired(self, now: datetime) -> int:
        """Delete idempotency records with expires_at <= now; returns how many."""

        def write(conn: Connection, _attempt: int) -> int:
            return int(conn.execute(delete(idempotency).where(idempotency.c.expires_at <= now)).rowcount)

        return self._tx(write)

    # -- hooks (revision 0002) ------------------------------------------------------------------------------------

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
        settled = (*FINAL_HOOK_STATES, "failed")
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
                    conn.execute(insert(hook_runs), [{
                        "replica_id": replica_id, "hook_key": key, "replication_id": replication_id,
                        "hook_type": hook_type, "status": "failed", "attempts": 0, "error_code": error_code,
                        "error_message": message, "result": None, "updated_at": at,
                    }])
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

    def undelivered_ends(
        self, *, sent_before: datetime, sent_after: datetime, hooks_everywhere: bool, limit: int = 100
    ) -> list[CompletionMessage]:
        """Sent completion messages whose end's hooks are not all settled (see the port): a range on the outbox's
        (sent_at, created_at) index, each row checked by EXISTS on hook_runs' primary key."""
        settled = (*FINAL_HOOK_STATES, "failed")
        mine = hook_runs.c.replica_id == outbox.c.replica_id
        open_record = exists().where(mine, hook_runs.c.status.not_in(settled))
        no_record = ~exists().where(mine)
        has_hooks = replications.c.hooks.is_not(None) if not hooks_everywhere else None
        unsettled = or_(open_record, and_(no_record, has_hooks) if has_hooks is not None else no_record)
        q = (
            select(outbox.c.payload)
            .select_from(
                outbox.join(replicas, replicas.c.id == outbox.c.replica_id).join(
                    replications, replications.c.id == replicas.c.replication_id
                )
            )
            .where(outbox.c.sent_at > sent_after, outbox.c.sent_at <= sent_before, unsettled)
            .order_by(outbox.c.sent_at, outbox.c.message_id)
            .limit(max(1, limit))
        )

        def read(conn: Connection) -> list[CompletionMessage]:
            return [CompletionMessage.model_validate_json(p) for p in conn.execute(q).scalars()]

        return self._read(read)

    def add_replica(self, replica: Replica) -> Replica:
        """Insert one more replica into its existing replication (see the port); idempotent by replica id."""
        key = None if replica.state.terminal else _key_of(replica)

        def write(conn: Connection, _attempt: int) -> Replica | str | None:
            row = conn.execute(select(replicas).where(replicas.c.id == replica.id)).mappings().first()
            if row is not None:
                return self._to_replica(row)
            if key is not None:
                holder = conn.execute(
                    select(replicas.c.replication_id).where(replicas.c.inflight_key == key)
                ).scalar()
                if holder is not None:
                    return str(holder)
            conn.execute(insert(replicas), [self._replica_row(replica)])
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
            raise self._in_flight(outcome)
        raise RuntimeError(f"could not insert replica {replica.id}: conflicting writes kept racing")

    def finished_copies(self, destination_region: str, *, rule: str | None, image_name: str) -> list[Replica]:
        """SUCCEEDED replicas with an image in `destination_region` for `rule`, or (no rule) named `image_name`
        by replications without a rule; newest ended first."""
        cond = [
            replicas.c.destination_region == destination_region,
            replicas.c.state == ReplicaState.SUCCEEDED.value,
            replicas.c.destination_image_id.is_not(None),
        ]
        if rule is not None:
            cond.append(replications.c.rule == rule)
        else:
            cond += [replications.c.rule.is_(None), replicas.c.image_name == image_name]
        q = (
            select(replicas)
            .join(replications, replications.c.id == replicas.c.replication_id)
            .where(*cond)
            .order_by(replicas.c.ended_at.desc(), replicas.c.id.desc())
        )

        def read(conn: Connection) -> list[Replica]:
            return [self._to_replica(row) for row in conn.execute(q).mappings()]

        return self._read(read)

    # -- maintenance (tests, local tooling) ------------------------------------------------------------------

    def wipe(self) -> None:
        """Delete every row of every table (tests and local resets; the schema stays)."""

        def write(conn: Connection, _attempt: int) -> None:
            for table in TABLES:
                conn.execute(delete(table))

        self._tx(write)


def _hooks_json(replication: Replication) -> str | None:
    if not replication.hooks:
        return None
    return json.dumps([h.model_dump(mode="json") for h in replication.hooks], sort_keys=True)


def _encode_cursor(at: datetime, last_id: str) -> str:
    raw = f"{at.astimezone(timezone.utc).isoformat()}|{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, last_id = raw.split("|", 1)
        parsed = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed cursor {cursor!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"malformed cursor {cursor!r}")
    return parsed, last_id

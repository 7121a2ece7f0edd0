"""SqlReplicaQueries: the reads of the replications and replicas tables (the ReplicaStore port's queries).

Reads run in a read-only transaction (run_read: a deferred BEGIN on SQLite, never waiting for a writer) and are
re-run on a retryable error. The writes, with their guarantees, are in replicas.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import and_, bindparam, exists, func, or_, select
from sqlalchemy.engine import Connection, RowMapping

from ...domain.models import Replica, Replication
from ...domain.states import ReplicaState
from .base import SqlStore
from .rows import inflight_key, to_replica
from .schema import replicas, replications
from .types import UTCDateTime


class SqlReplicaQueries(SqlStore):
    def _load_replications(self, conn: Connection, rows: Sequence[RowMapping]) -> list[Replication]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        by_parent: dict[str, list[Replica]] = {i: [] for i in ids}
        for row in conn.execute(select(replicas).where(replicas.c.replication_id.in_(ids))).mappings():
            by_parent[row["replication_id"]].append(to_replica(row))
        out = []
        for row in rows:
            images: list[str] = json.loads(row["image_ids"])
            dests: list[str] = json.loads(row["destination_regions"])

            def order(
                r: Replica, images: list[str] = images, dests: list[str] = dests
            ) -> tuple[int, int, datetime, str]:
                # request order: image by image, region by region (the ids are random), attempts oldest first
                i = images.index(r.source_image_id) if r.source_image_id in images else len(images)
                d = dests.index(r.destination_region) if r.destination_region in dests else len(dests)
                return (i, d, r.created_at, r.id)

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
                    accounts=json.loads(row["accounts"]) if row["accounts"] else [],
                    requested_destinations=(
                        json.loads(row["requested_destinations"]) if row["requested_destinations"] else None
                    ),
                    created_at=row["created_at"],
                    replicas=sorted(by_parent[row["id"]], key=order),
                )
            )
        return out

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
            return to_replica(row) if row else None

        return self._read(read)

    def get_replicas(self, replica_ids: Sequence[str]) -> dict[str, Replica]:
        """These replicas by id, one SELECT per 500 ids (a sweep's ends and starts: a page's few, not one read per
        copy)."""
        ids = list(dict.fromkeys(replica_ids))

        def read(conn: Connection) -> dict[str, Replica]:
            found: dict[str, Replica] = {}
            for at in range(0, len(ids), 500):
                rows = conn.execute(select(replicas).where(replicas.c.id.in_(ids[at : at + 500]))).mappings()
                found.update((r.id, r) for r in map(to_replica, rows))
            return found

        return self._read(read) if ids else {}

    def find_active(
        self, source_region: str, image_id: str, destination_region: str, account: str | None = None
    ) -> Replica | None:
        """The active replica of this copy (into `account`, else the own one), if any (a lookup on the unique
        in-flight marker)."""
        key = inflight_key(source_region, image_id, destination_region, account)

        def read(conn: Connection) -> Replica | None:
            row = conn.execute(select(replicas).where(replicas.c.inflight_key == key)).mappings().first()
            return to_replica(row) if row else None

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

    def count_by_state(self) -> dict[str, int]:
        """Replicas per state; every ReplicaState is a key (0 when none)."""

        def read(conn: Connection) -> dict[str, int]:
            counts = {s.value: 0 for s in ReplicaState}
            for state, n in conn.execute(select(replicas.c.state, func.count()).group_by(replicas.c.state)):
                counts[state] = int(n)
            return counts

        return self._read(read)

    def recent_durations(self, since: datetime, limit: int) -> list[tuple[str, float]]:
        """(destination region, started_at -> ended_at in seconds) of the newest SUCCEEDED copies (see the port).

        Index ix_replicas_state_ended_at: a range of the index, newest first, `limit` rows. The difference is taken
        here, not in SQL: date arithmetic differs on each of the three engines.
        """
        if limit <= 0:
            return []
        q = (
            select(replicas.c.destination_region, replicas.c.started_at, replicas.c.ended_at)
            .where(
                replicas.c.state == ReplicaState.SUCCEEDED.value,
                replicas.c.ended_at >= since,
                replicas.c.started_at.is_not(None),
                replicas.c.kms_key_id.is_(None),
            )
            .order_by(replicas.c.ended_at.desc(), replicas.c.id)
            .limit(limit)
        )

        def read(conn: Connection) -> list[tuple[str, float]]:
            return [
                (region, (ended - started).total_seconds())
                for region, started, ended in conn.execute(q)
                if ended >= started
            ]

        return self._read(read)

    def recent_judged(self, since: datetime, limit: int) -> list[tuple[str, int | None, int | None]]:
        """(destination region, looks_over, pace_changed) of the newest judged SUCCEEDED copies (see the port). The
        same index range as recent_durations; the copies with neither verdict are skipped in it."""
        if limit <= 0:
            return []
        c = replicas.c
        q = (
            select(c.destination_region, c.looks_over, c.pace_changed)
            .where(
                c.state == ReplicaState.SUCCEEDED.value,
                c.ended_at >= since,
                or_(c.looks_over.is_not(None), c.pace_changed.is_not(None)),
            )
            .order_by(c.ended_at.desc(), c.id)
            .limit(limit)
        )

        def read(conn: Connection) -> list[tuple[str, int | None, int | None]]:
            return [
                (region, None if over is None else int(over), None if pace is None else int(pace))
                for region, over, pace in conn.execute(q)
            ]

        return self._read(read)

    def copies_of_source(self, source_region: str, image_ids: Sequence[str]) -> list[Replica]:
        """Every replica of these source images (see the port)."""
        ids = list(dict.fromkeys(image_ids))

        def read(conn: Connection) -> list[Replica]:
            if not ids:
                return []
            rows = conn.execute(
                select(replicas)
                .where(replicas.c.source_image_id.in_(ids), replicas.c.source_region == source_region)
                .order_by(replicas.c.created_at, replicas.c.id)
            ).mappings()
            return [to_replica(r) for r in rows]

        return self._read(read)

    def sources_copied(self, rules: Sequence[str]) -> list[tuple[str, str]]:
        """(source region, image) of SUCCEEDED replicas of these rules' replications (see the port)."""
        names = list(dict.fromkeys(rules))

        def read(conn: Connection) -> list[tuple[str, str]]:
            if not names:
                return []
            rows = conn.execute(
                select(replicas.c.source_region, replicas.c.source_image_id)
                .join(replications, replications.c.id == replicas.c.replication_id)
                .where(replications.c.rule.in_(names), replicas.c.state == ReplicaState.SUCCEEDED.value)
                .distinct()
                .order_by(replicas.c.source_region, replicas.c.source_image_id)
            )
            return [(str(r[0]), str(r[1])) for r in rows]

        return self._read(read)

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
            return [to_replica(row) for row in conn.execute(q).mappings()]

        return self._read(read)

    def copied_sources(self, *, limit: int = 500) -> list[tuple[str, str]]:
        """(source region, source image) of the images imagesync copied successfully, newest copy first."""
        last = func.max(replicas.c.ended_at)
        q = (
            select(replicas.c.source_region, replicas.c.source_image_id, last)
            .where(replicas.c.state == ReplicaState.SUCCEEDED.value, replicas.c.destination_image_id.is_not(None))
            .group_by(replicas.c.source_region, replicas.c.source_image_id)
            .order_by(last.desc(), replicas.c.source_image_id)
            .limit(limit)
        )

        def read(conn: Connection) -> list[tuple[str, str]]:
            return [(str(region), str(image)) for region, image, _ in conn.execute(q)]

        return self._read(read)

    def copies_of(self, source_region: str, image_ids: Sequence[str]) -> list[Replica]:
        """The SUCCEEDED replicas (with their copy) of these images from `source_region`."""
        ids = list(dict.fromkeys(image_ids))

        def read(conn: Connection) -> list[Replica]:
            out: list[Replica] = []
            for start in range(0, len(ids), 500):
                q = select(replicas).where(
                    replicas.c.source_region == source_region,
                    replicas.c.source_image_id.in_(ids[start : start + 500]),
                    replicas.c.state == ReplicaState.SUCCEEDED.value,
                    replicas.c.destination_image_id.is_not(None),
                )
                out.extend(to_replica(row) for row in conn.execute(q).mappings())
            return out

        return self._read(read) if ids else []


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

"""Helpers shared by the store tests: backend URLs, throwaway databases, session killing, seeding, sweepers.

Kept importable (not in conftest) so that worker processes can use them.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from imagesync.adapters.sql import SqlStateStore, make_engine
from imagesync.adapters.sql.engine import run_tx
from imagesync.adapters.sql.schema import TABLES
from imagesync.domain.models import InFlight, Replica, Replication
from imagesync.domain.states import ReplicaState

MYSQL_URL = os.environ.get("IMAGESYNC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
POSTGRES_URL = os.environ.get("IMAGESYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SERVER_URLS = {"mysql": MYSQL_URL, "postgres": POSTGRES_URL}


def wipe(engine: Engine) -> None:
    """Delete every row of every table (the schema stays): each test starts from empty tables."""

    def write(conn: Connection, _attempt: int) -> None:
        for table in TABLES:
            conn.execute(delete(table))

    run_tx(engine, write)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def admin_engine(url: str) -> Engine:
    """A plain autocommit engine without imagesync's connect retry (so an absent server fails fast)."""
    backend = make_url(url).get_backend_name()
    args = {"connect_timeout": 3} if backend != "sqlite" else {}
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=args)


def reachable(url: str) -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        with admin_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not usable here"
        return f"{make_url(url).render_as_string(hide_password=True)} unreachable: {exc.__class__.__name__}: {exc}"
    return None


def create_database(base_url: str, prefix: str = "imagesync_t") -> str:
    """Create a uniquely named database on the server of `base_url`; returns its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin_engine(base_url).connect() as conn:
        if make_url(base_url).get_backend_name() == "postgresql":
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, url: str) -> None:
    name = make_url(url).database
    with admin_engine(base_url).connect() as conn:
        if make_url(base_url).get_backend_name() == "postgresql":
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            kill_sessions(url)
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))


def kill_sessions(url: str) -> int:
    """Server-side kill of every session on the database of `url` except this one; returns how many.

    MariaDB/MySQL: KILL <id> for each PROCESSLIST entry of the database; PostgreSQL: pg_terminate_backend(pid).
    """
    db = make_url(url).database
    killed = 0
    with admin_engine(url).connect() as conn:
        if make_url(url).get_backend_name() == "postgresql":
            killed = len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": db},
                ).all()
            )
        else:
            ids = conn.execute(
                text("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :db AND ID <> CONNECTION_ID()"),
                {"db": db},
            ).scalars()
            for session_id in list(ids):
                try:
                    conn.execute(text(f"KILL {int(session_id)}"))
                    killed += 1
                except Exception:  # already gone
                    pass
    return killed


def make_replication(
    images: list[str],
    regions: list[str],
    *,
    source: str = "ap-guangzhou",
    created_at: datetime | None = None,
    next_check_at: datetime | None = None,
    state: ReplicaState = ReplicaState.PENDING,
) -> Replication:
    now = created_at or utcnow()
    rep = Replication(source_region=source, image_ids=images, destination_regions=regions, created_at=now)
    reps = [
        Replica(
            replication_id=rep.id,
            source_region=source,
            source_image_id=img,
            destination_region=dst,
            image_name=f"copy-of-{img}",
            state=state,
            created_at=now,
            updated_at=now,
            ended_at=now if state.terminal else None,
            next_check_at=next_check_at or now,
            deadline_at=now + timedelta(hours=2),
        )
        for img in images
        for dst in regions
    ]
    return rep.model_copy(update={"replicas": reps})


REGIONS = [f"ap-r{i}" for i in range(10)]


def seed(store: SqlStateStore, n_replicas: int, *, per_replication: int = 100, tag: str = "") -> list[str]:
    """Insert `n_replicas` PENDING replicas, due now, in replications of `per_replication` (10 regions each)."""
    ids: list[str] = []
    past = utcnow() - timedelta(seconds=5)
    per_image = len(REGIONS)
    n_images = n_replicas // per_image
    per_rep_images = max(1, per_replication // per_image)
    for start in range(0, n_images, per_rep_images):
        images = [f"img-{tag}{i:07d}" for i in range(start, min(n_images, start + per_rep_images))]
        rep = make_replication(images, REGIONS, next_check_at=past)
        store.create_replication(rep)
        ids.extend(r.id for r in rep.replicas)
    return ids


@dataclass
class SweepLog:
    """What one sweeper saw: claims (replica id, owner, held-from, held-until) and its CAS outcomes."""

    claims: list[tuple[str, str, float, float]] = field(default_factory=list)
    won: list[tuple[str, int]] = field(default_factory=list)  # (replica id, version it moved from)
    lost: list[tuple[str, int]] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def step(r: Replica, now: datetime) -> Replica:
    """The fake copy: PENDING -> COPYING (due again at once) -> SUCCEEDED."""
    if r.state is ReplicaState.PENDING:
        return r.moved(ReplicaState.COPYING, now, started_at=now, destination_image_id="img-" + r.id[-8:])
    return r.moved(ReplicaState.SUCCEEDED, now)


def publish(store: SqlStateStore, log: SweepLog, limit: int = 200) -> int:
    msgs = store.pending_outbox(limit)
    log.published.extend(m.message_id for m in msgs)
    store.mark_outbox_sent([m.message_id for m in msgs])
    return len(msgs)


def sweep(
    url: str,
    *,
    publisher: bool,
    lease_seconds: float = 60.0,
    batch: int = 25,
    time_limit: float = 60.0,
    tolerate_errors: bool = False,
    pause: float = 0.0,
    on_step: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
) -> SweepLog:
    """One sweeper: take the sweepers' lease, advance each due replica one step with CAS, give the lease up; until
    no work is left (while another sweeper holds the lease, it waits and tries again).

    `publisher`: also relays the outbox (the one publisher, so each message is published exactly once).
    `tolerate_errors`: an exception ends the current "invocation" (logged) and a new one starts, as SCF would
    retry; its lease is left to run out (a crash). `pause`: seconds of "cloud work" per replica step. `on_step`:
    called after each step this sweeper won (tests place faults by progress, not by time); `stop`: once set, the
    sweeper stops stepping, gives the lease up and ends (an invocation that ended there).
    """
    log = SweepLog()
    store = SqlStateStore(make_engine(url))
    deadline = time.monotonic() + time_limit
    idle = 0
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            got: list[InFlight] = []
            if store.acquire(owner, utcnow(), lease_seconds):
                held_from = time.time()
                got = store.due_in_flight(utcnow(), batch)
                for view in got:
                    if pause:
                        time.sleep(pause)
                    # the whole replica as it was read (a row changed since, after a lease ran out, loses its CAS)
                    (r,) = store.get_replicas([view.id]).values()
                    r = r.model_copy(update={"version": view.version, "state": view.state})
                    saved = store.save_replica(
                        step(r, utcnow()), expected_version=view.version, expected_state=view.state
                    )
                    (log.won if saved is not None else log.lost).append((r.id, view.version))
                    if saved is not None and on_step is not None:
                        on_step()
                    if stop is not None and stop.is_set():
                        break
                held_until = time.time()
                log.claims.extend((r.id, owner, held_from, held_until) for r in got)
                store.release(owner)
            sent = publish(store, log) if publisher else 0
            if got or sent:
                idle = 0
                continue
            counts = store.count_by_state()
            active = sum(counts[s.value] for s in ReplicaState if not s.terminal)
            if active == 0 and (not publisher or not store.pending_outbox(1)):
                break
            idle += 1
            time.sleep(min(0.01 * idle, 0.2))  # another holds the lease, or a crashed one's lease runs out
        except Exception as exc:
            if not tolerate_errors:
                raise
            log.errors.append(f"{exc.__class__.__name__}: {exc}"[:300])
            time.sleep(0.05)
    return log


def sweep_threads(url: str, n_threads: int, publisher: bool, **kwargs: object) -> SweepLog:
    """`n_threads` sweepers in this process (thread 0 publishes if `publisher`); their logs merged."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n_threads) as pool:
        futures = [
            pool.submit(sweep, url, publisher=publisher and i == 0, **kwargs)  # type: ignore[arg-type]
            for i in range(n_threads)
        ]
        logs = [f.result() for f in futures]
    merged = SweepLog()
    for lg in logs:
        merged.claims += lg.claims
        merged.won += lg.won
        merged.lost += lg.lost
        merged.published += lg.published
        merged.errors += lg.errors
    return merged

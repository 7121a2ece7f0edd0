"""Engines as SCF needs them, and the transaction retry policy.

One engine per database URL per process (per SCF container), reused across warm invocations: the pool keeps the
connection open between invocations, ``pool_pre_ping`` replaces a connection that died while the container was
frozen (or while a TDSQL-C Serverless database paused), and every new DBAPI connection is retried with backoff
for a bounded time, so a database resuming from pause (MySQL client errors 2003/2013, PostgreSQL "starting up")
is waited for instead of failing the invocation.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

log = logging.getLogger(__name__)

T = TypeVar("T")

#: total time a new connection is retried for (a TDSQL-C Serverless resume takes a few seconds, rarely ~25 s)
CONNECT_WAIT_SECONDS = 30.0
SQLITE_BUSY_TIMEOUT_MS = 30_000

# MySQL client/server errors that mean "not reachable yet / connection went away": 2003 can't connect,
# 2013 lost connection during query (a resuming proxy), 2006 gone away, 1040 too many connections,
# 1927 connection killed (MariaDB), 1053 server shutdown in progress, 2002 socket error.
_MYSQL_CONNECT_RETRY = frozenset({1040, 1053, 1927, 2002, 2003, 2006, 2013})
# MySQL: 1213 deadlock, 1205 lock wait timeout. PostgreSQL SQLSTATE: serialization failure, deadlock.
_MYSQL_TX_RETRY = frozenset({1213, 1205})
_PG_TX_RETRY = frozenset({"40001", "40P01"})

_engines: dict[tuple[int, str, float], Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str, *, connect_wait: float = CONNECT_WAIT_SECONDS) -> Engine:
    """The engine for `url`, created once per process and then returned from the cache.

    The cache key includes the process id: a forked child never reuses its parent's pooled sockets. Settings:
    SQLite gets WAL, busy_timeout, foreign keys and BEGIN IMMEDIATE transactions (a deferred transaction that
    upgrades to a write lock fails at once with "database is locked" instead of waiting); MySQL/MariaDB and
    PostgreSQL get READ COMMITTED (every write is a compare-and-set, so nothing stronger is needed), pre-ping,
    recycle, a connect timeout, and new connections retried for up to `connect_wait` seconds.
    """
    key = (os.getpid(), url, connect_wait)
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create(url, connect_wait)
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine of this process (tests; a container never needs it)."""
    with _engines_lock:
        for key, engine in list(_engines.items()):
            if key[0] == os.getpid():
                engine.dispose()
            del _engines[key]


def _create(url: str, connect_wait: float) -> Engine:
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite(url)
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if backend in ("mysql", "mariadb") and "charset" not in u.query:
        connect_args["charset"] = "utf8mb4"
    if u.get_driver_name() == "pymysql":
        connect_args["conv"] = _pymysql_conversions()
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,  # below any idle cut by a proxy; TDSQL-C's wait_timeout defaults to 8 h
        pool_size=5,
        max_overflow=5,
        pool_timeout=30,
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )
    _retry_connect(engine, connect_wait)
    return engine


def _pymysql_conversions() -> dict[Any, Any]:
    """PyMySQL's own conversions, with DATETIME and TIMESTAMP values read by datetime.fromisoformat.

    Why: PyMySQL parses each with a regular expression and int() per field, the larger part of reading a sweep's
    10,000 due copies (five timestamps each) on MariaDB (docs/benchmarks.md). Only the two shapes the server sends
    ("YYYY-MM-DD HH:MM:SS" and with ".ffffff") take the fast path; anything else (a zero date, an invalid day, a
    shorter fraction) goes to PyMySQL's converter as before, with the same result."""
    from datetime import datetime

    from pymysql.constants import FIELD_TYPE  # type: ignore[import-untyped]
    from pymysql.converters import conversions, convert_datetime  # type: ignore[import-untyped]

    parse = datetime.fromisoformat

    def read_datetime(text: str) -> Any:
        if len(text) in (19, 26):
            try:
                return parse(text)
            except ValueError:
                pass
        return convert_datetime(text)

    conv = dict(conversions)
    conv[FIELD_TYPE.DATETIME] = read_datetime
    conv[FIELD_TYPE.TIMESTAMP] = read_datetime
    return conv


def _create_sqlite(url: str) -> Engine:
    u = make_url(url)
    memory = u.database in (None, "", ":memory:") or "mode=memory" in str(u)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    if memory:
        # one connection (each new one would be another empty database), handed to one thread at a time
        kwargs.update(poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # let SQLAlchemy's "begin" event emit BEGIN IMMEDIATE instead of pysqlite's own deferred BEGIN
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # writers take the write lock up front (and wait busy_timeout for it); readers stay deferred, so in WAL
        # mode they neither wait for nor block a writer
        read_only = conn.get_execution_options().get("imagesync_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _mysql_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _connect_retryable(exc: BaseException) -> bool:
    code = _mysql_code(exc)
    if code is not None:
        return code in _MYSQL_CONNECT_RETRY
    # psycopg: OperationalError covers refused/reset/"the database system is starting up" (57P03) at connect;
    # authentication failures are also OperationalError but carry SQLSTATE 28xxx: those are never retried.
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is not None and str(sqlstate).startswith(("28", "3D")):
        return False
    return type(exc).__name__ == "OperationalError"


def _retry_connect(engine: Engine, connect_wait: float) -> None:
    @event.listens_for(engine, "do_connect")
    def _do_connect(dialect: Any, _rec: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        deadline = time.monotonic() + connect_wait
        delay = 0.25
        attempt = 0
        while True:
            attempt += 1
            try:
                return dialect.dbapi.connect(*cargs, **cparams)
            except Exception as exc:
                remaining = deadline - time.monotonic()
                if not _connect_retryable(exc) or remaining <= 0:
                    raise
                sleep = min(delay, remaining) * random.uniform(0.8, 1.2)
                log.warning("database not reachable (attempt %d, %s); retrying in %.2fs", attempt, exc, sleep)
                time.sleep(sleep)
                delay = min(delay * 2, 4.0)


def is_retryable(exc: DBAPIError) -> bool:
    """True for errors after which re-running the whole transaction is safe and likely to succeed.

    A lost connection (SQLAlchemy flags it ``connection_invalidated``; the pool then drops that connection), a
    deadlock or lock-wait timeout (MySQL 1213/1205), a serialization failure or deadlock (PostgreSQL 40001/40P01),
    SQLite "database is locked" after busy_timeout. The transaction was rolled back by the server in each case,
    except a connection lost during COMMIT: then it may have committed, which is why every store write is
    written to be re-runnable (see replicas.py).
    """
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = _mysql_code(orig) if orig is not None else None
    if code is not None and (code in _MYSQL_TX_RETRY or code in _MYSQL_CONNECT_RETRY):
        return True
    if getattr(orig, "sqlstate", None) in _PG_TX_RETRY:
        return True
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def run_tx(engine: Engine, fn: Callable[[Connection, int], T], *, attempts: int = 3) -> T:
    """Run `fn(conn, attempt)` in one transaction; re-run it on a retryable error, at most `attempts` times.

    `attempt` (1-based) lets a write recognise a re-run after a lost connection, where its first try may have
    committed. Transactions are kept short: no network calls other than the database inside `fn`.
    """
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return fn(conn, attempt)
        except DBAPIError as exc:
            if attempt >= attempts or not is_retryable(exc):
                raise
            log.warning("transaction failed (%s); re-running it (attempt %d)", exc.__class__.__name__, attempt + 1)
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")


def run_read(engine: Engine, fn: Callable[[Connection], T], *, attempts: int = 3) -> T:
    """Run the read-only `fn(conn)` (a deferred BEGIN on SQLite: it never waits for the write lock); re-run it
    on a retryable error (a read is always safe to repeat)."""
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect() as conn:
                conn.execution_options(imagesync_read_only=True)
                return fn(conn)
        except DBAPIError as exc:
            if attempt >= attempts or not is_retryable(exc):
                raise
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")

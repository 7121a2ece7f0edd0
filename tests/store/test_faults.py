"""Faults: sessions killed server-side mid-sweep and mid-transaction, a lost COMMIT acknowledgement, a database
that is unreachable for a while (paused TDSQL-C Serverless, or a restart), and a real server restart.

After each, the next call reconnects (pre-ping, connect retry) and finishes the work: nothing lost, nothing twice.
A real crash-restart is done on throwaway servers started here: a PostgreSQL cluster (initdb/pg_ctl, stopped with
`-m immediate`) and a MariaDB server (mariadb-install-db/mariadbd, stopped with SIGKILL); the shared servers on
loopback are never restarted.
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from store_helpers import (
    SweepLog,
    kill_sessions,
    make_replication,
    seed,
    step,
    sweep_threads,
    utcnow,
)

from imagesync.adapters.sql import SqlStateStore, make_engine, upgrade
from imagesync.adapters.sql.engine import CONNECT_WAIT_SECONDS
from imagesync.adapters.sql.schema import outbox
from imagesync.domain.states import ReplicaState

S = ReplicaState

pytestmark = pytest.mark.slow  # faults wait out timeouts, kill sessions and restart servers


def _outbox_count(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        total, distinct = conn.execute(select(func.count(), func.count(outbox.c.replica_id.distinct()))).one()
    return int(total), int(distinct)


def _check_finished(store: SqlStateStore, n: int, log: SweepLog) -> None:
    """Nothing lost (all SUCCEEDED, every message in the outbox once and published), nothing done twice (no
    transition won twice; a write after a lease ran out is refused, never applied)."""
    assert store.count_by_state()["SUCCEEDED"] == n
    assert _outbox_count(store.engine) == (n, n)
    assert store.pending_outbox(1) == []
    assert len(log.won) == len(set(log.won)) <= 2 * n
    # a sweeper stalled past its lease (waiting for the database) may find its replica moved on by another:
    # its compare-and-set is refused, so the step is not done twice -- every refused step was won by someone
    assert set(log.lost) <= set(log.won)
    assert len(set(log.published)) == n


# -- server-side KILL ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_finishes_while_its_sessions_are_killed(server_store_url: str) -> None:
    url = server_store_url
    store = SqlStateStore(make_engine(url))
    n = 400
    seed(store, n, tag="k")
    # Faults placed by progress, not by time (a busy machine must not change what is tested): every 40th step won,
    # every session on the database is killed -- the sweepers' own included, mid-sweep -- and the first round of
    # invocations ends once half of the 2 * n steps are done.
    stop = threading.Event()
    lock = threading.Lock()
    steps = [0]
    kills: list[int] = []

    def on_step() -> None:
        with lock:
            steps[0] += 1
            due = steps[0] % 40 == 0
            if steps[0] >= n:
                stop.set()
        if due:
            kills.append(kill_sessions(url))

    first = sweep_threads(
        url, 4, True, lease_seconds=2.0, tolerate_errors=True, time_limit=120.0, pause=0.002, on_step=on_step, stop=stop
    )
    assert sum(kills) > 0, "no session was killed under a sweeper"
    assert len(first.won) < 2 * n, "the work was done before the kills ended: not a mid-sweep test"
    # the next invocations: fresh sweepers on the same (cached) engine finish the rest
    rest = sweep_threads(url, 4, True, lease_seconds=2.0, time_limit=30)
    log = SweepLog(
        claims=first.claims + rest.claims,
        won=first.won + rest.won,
        lost=first.lost + rest.lost,
        published=first.published + rest.published,
    )
    print(f"killed {sum(kills)} sessions; {len(first.errors)} invocations failed; {len(first.won)} steps before")
    _check_finished(store, n, log)


def _own_session_id(dbapi_conn: Any, backend: str) -> int:
    cur = dbapi_conn.cursor()
    cur.execute("SELECT pg_backend_pid()" if backend == "postgresql" else "SELECT CONNECTION_ID()")
    (sid,) = cur.fetchone()
    cur.close()
    return int(sid)


def _kill(url: str, sid: int) -> None:
    from sqlalchemy import text
    from store_helpers import admin_engine

    with admin_engine(url).connect() as conn:
        if make_url(url).get_backend_name() == "postgresql":
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": sid})
            # wait until it is gone, so the next statement surely hits a dead session
            for _ in range(100):
                if not conn.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"), {"p": sid}).first():
                    break
                time.sleep(0.01)
        else:
            conn.execute(text(f"KILL {sid}"))


def test_session_killed_inside_a_terminal_save_is_rerun_once(server_store_url: str) -> None:
    url = server_store_url
    engine = make_engine(url)
    store = SqlStateStore(engine)
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    store.create_replication(rep)
    copying = store.save_replica(step(rep.replicas[0], utcnow()), expected_version=0, expected_state=S.PENDING)
    assert copying is not None
    killed: list[int] = []

    def kill_before_outbox_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # between the CAS UPDATE and the outbox INSERT of one transaction: the server rolls both back
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX") and not killed:
            sid = _own_session_id(conn.connection.dbapi_connection, engine.dialect.name)
            _kill(url, sid)
            killed.append(sid)

    event.listen(engine, "before_cursor_execute", kill_before_outbox_insert)
    try:
        done = store.save_replica(step(copying, utcnow()), expected_version=1, expected_state=S.COPYING)
    finally:
        event.remove(engine, "before_cursor_execute", kill_before_outbox_insert)
    assert killed, "the session was not killed"
    assert done is not None and done.state is S.SUCCEEDED and done.version == 2
    assert store.get_replica(done.id) == done
    assert _outbox_count(engine) == (1, 1)
    assert store.find_active("ap-guangzhou", "img-aaaaaaa1", "ap-shanghai") is None


# -- a COMMIT whose acknowledgement is lost ------------------------------------------------------------------------


def _drop_after_commit(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> list[int]:
    """The next COMMIT succeeds on the server, then the connection dies before the client hears back."""
    dialect = engine.dialect
    original = dialect.do_commit
    fired: list[int] = []

    def do_commit(dbapi_conn: Any) -> None:
        original(dbapi_conn)
        if fired:
            return
        fired.append(1)
        # SQLAlchemy hands over its pool proxy: close the driver connection under it, as a dead socket would
        if dialect.name != "mysql":  # (pymysql recognises the loss by its error code alone)
            getattr(dbapi_conn, "dbapi_connection", dbapi_conn).close()
        if dialect.name == "sqlite":
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        if dialect.name == "postgresql":
            import psycopg

            raise psycopg.OperationalError("server closed the connection unexpectedly")
        import pymysql

        raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")

    monkeypatch.setattr(dialect, "do_commit", do_commit)
    return fired


def test_lost_commit_ack_on_terminal_save_still_reports_the_win(
    store: SqlStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
    store.create_replication(rep)
    copying = store.save_replica(step(rep.replicas[0], utcnow()), expected_version=0, expected_state=S.PENDING)
    assert copying is not None
    fired = _drop_after_commit(monkeypatch, store.engine)
    done = store.save_replica(step(copying, utcnow()), expected_version=1, expected_state=S.COPYING)
    assert fired
    assert done is not None and done.version == 2 and store.get_replica(done.id) == done
    assert _outbox_count(store.engine) == (1, 1)


def test_lost_commit_ack_on_create_and_on_the_sweepers_lease(
    store: SqlStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    rep = make_replication(["img-aaaaaaa1", "img-aaaaaaa2"], ["ap-shanghai"], next_check_at=now)
    fired = _drop_after_commit(monkeypatch, store.engine)
    assert store.create_replication(rep) == rep
    assert fired and store.get_replication(rep.id) == rep

    # the first take of the lease (its row inserted), then a take of a free row: each committed, each answer lost;
    # the re-run recognises its own lease (this owner, this expiry) instead of reporting it held by another
    for owner in ("owner-1", "owner-2"):
        fired.clear()
        assert store.acquire(owner, now, 30)
        assert fired
        assert not store.acquire("other", now, 30)
        fired.clear()
        store.release(owner)  # its answer lost too: a re-run finds nothing of its own left, harmlessly
        assert fired
    assert store.acquire("other", now, 30)


def test_lost_commit_ack_on_a_progress_write(store: SqlStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = utcnow()
    rep = make_replication(["img-aaaaaaa1", "img-aaaaaaa2"], ["ap-shanghai"], next_check_at=now)
    store.create_replication(rep)
    for r in rep.replicas:
        saved = store.save_replica(step(r, now), expected_version=0, expected_state=S.PENDING)
        assert saved is not None and saved.state is S.COPYING
    due = store.due_in_flight(now, 10)
    assert len(due) == 2
    fired = _drop_after_commit(monkeypatch, store.engine)
    later = now + timedelta(seconds=1)
    written = store.save_progress(
        [
            (v._replace(updated_at=later, sync_percent=30, next_check_at=later + timedelta(minutes=1)), v.version)
            for v in due
        ]
    )
    assert fired
    # the re-run finds its rows already at the new version: written once (and reported unwritten)
    assert written == 0
    for v in due:
        row = store.get_replica(v.id)
        assert row is not None and (row.version, row.sync_percent) == (v.version + 1, 30)
    assert store.due_in_flight(later, 10) == []


# -- unreachable for a while: paused, restarting -------------------------------------------------------------------


def _free_port() -> int:
    """A port free now, for a server that listens on it later (a paused proxy; a restarted database). Drawn below
    the kernel's ephemeral range (ip_local_port_range, 32768 and up by default), where a bind to port 0 or an
    outgoing connection (thousands in these tests) would draw from: only a listener choosing this very port could
    take it in between."""
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


class _LateProxy:
    """A TCP forwarder to the real server that starts listening only after `delay` seconds (a paused database:
    connections are refused until it resumes), and can cut every connection (a dropped network or a restart)."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay, self.port = target, delay, _free_port()
        self.socks: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        time.sleep(self.delay)
        srv = socket.create_server(("127.0.0.1", self.port))
        srv.settimeout(0.1)
        self.socks.append(srv)
        while not self.stopped.is_set():
            try:
                client, _ = srv.accept()
            except OSError:
                continue
            upstream = socket.create_connection(self.target)
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for s in self.socks[1:]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()
        del self.socks[1:]

    def close(self) -> None:
        self.stopped.set()
        self.cut()
        with contextlib.suppress(OSError, IndexError):
            self.socks[0].close()


def test_a_paused_database_is_waited_for_then_a_cut_is_survived(server_store_url: str) -> None:
    u = make_url(server_store_url)
    proxy = _LateProxy((u.host or "127.0.0.1", int(u.port or 0)), delay=1.5)
    try:
        url = u.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        started = time.monotonic()
        store = SqlStateStore(make_engine(url))  # first connect: refused for 1.5 s, retried, then served
        waited = time.monotonic() - started
        assert 1.0 < waited < 15, waited
        rep = make_replication(["img-aaaaaaa1"], ["ap-shanghai"])
        store.create_replication(rep)
        proxy.cut()  # every pooled connection dies while idle (a frozen container, a paused database)
        assert store.get_replication(rep.id) == rep  # pre-ping notices, reconnects
        saved = store.save_replica(step(rep.replicas[0], utcnow()), expected_version=0, expected_state=S.PENDING)
        assert saved is not None and saved.version == 1
    finally:
        proxy.close()


@pytest.mark.parametrize("driver", ["mysql+pymysql", "postgresql+psycopg"])
def test_connect_retry_is_bounded(driver: str) -> None:
    # a port held bound and never listened on: refused throughout (a port freed first could get a listener)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"{driver}://nobody@127.0.0.1:{held.getsockname()[1]}/nothing"
        started = time.monotonic()
        with pytest.raises(OperationalError), make_engine(url, connect_wait=1.0).connect():
            pass
        elapsed = time.monotonic() - started
    # retried for the 1 s asked, and given up then: far below the 30 s default (CONNECT_WAIT_SECONDS), with room
    # for a busy machine (the bound was 6 s, which a first import of the driver under load can eat into)
    assert 0.9 < elapsed < CONNECT_WAIT_SECONDS / 2


# -- a real restart (throwaway PostgreSQL cluster) ---------------------------------------------------------------


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture
def pg_cluster() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A PostgreSQL cluster of our own in a temp dir (fsync off), with functions to crash-stop and start it."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb refuses root")
    data = tempfile.mkdtemp(prefix="imagesync-pg-")
    os.chmod(data, 0o777)
    pgdata = os.path.join(data, "data")
    port = _free_port()

    def pg_ctl(args: list[str]) -> None:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", pgdata, "-l", f"{data}/log", *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    try:
        subprocess.run(
            [*as_user, f"{bindir}/initdb", "-D", pgdata, "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl(["-o", opts, "-w", "start"])
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL cluster: {exc}")
    try:
        yield (
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
            lambda: pg_ctl(["-m", "immediate", "stop"]),  # a crash: sessions gone, in-flight transactions lost
            lambda: pg_ctl(["-o", opts, "-w", "start"]),
        )
    finally:
        with contextlib.suppress(Exception):
            pg_ctl(["-m", "immediate", "stop"])
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def mariadb_server() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A MariaDB server of our own in a temp dir, with functions to crash it (SIGKILL) and start it again."""
    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if install is None or not os.path.exists(server):
        if os.environ.get("CI"):
            pytest.fail("CI needs mariadb-install-db and mariadbd for the MariaDB restart test")
        pytest.skip("no MariaDB server binaries (mariadb-install-db, mariadbd)")
    data = tempfile.mkdtemp(prefix="imagesync-maria-")
    port = _free_port()
    user = ["--user=root"] if os.geteuid() == 0 else []
    argv = [
        server,
        "--no-defaults",
        f"--datadir={data}/data",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={data}/sock",
        f"--pid-file={data}/pid",
        f"--log-error={data}/err.log",
        *user,
        "--skip-grant-tables",
        "--innodb-flush-log-at-trx-commit=2",
    ]
    proc: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        proc[:] = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
            time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not listen on {port}: see {data}/err.log")

    def stop() -> None:  # a crash: no shutdown, sessions gone, in-flight transactions rolled back on recovery
        proc[0].kill()
        proc[0].wait(timeout=30)

    try:
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={data}/data",
                *user,
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        start()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        engine = make_engine(f"mysql+pymysql://root@127.0.0.1:{port}/mysql")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE DATABASE imagesync")
    except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
        with contextlib.suppress(Exception):
            stop()
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"could not start a throwaway MariaDB server: {exc}")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:{port}/imagesync", stop, start
    finally:
        with contextlib.suppress(Exception):
            stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["postgres", "mysql"])
def restartable(request: pytest.FixtureRequest) -> tuple[str, Callable[[], None], Callable[[], None]]:
    return request.getfixturevalue("pg_cluster" if request.param == "postgres" else "mariadb_server")


@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.slow
def test_server_restart_mid_sweep(restartable: tuple[str, Callable[[], None], Callable[[], None]]) -> None:
    url, stop, start = restartable
    upgrade(url)
    store = SqlStateStore(make_engine(url))
    n = 300
    seed(store, n, tag="r")
    logs: list[SweepLog] = []
    sweeper = threading.Thread(
        target=lambda: logs.append(
            sweep_threads(url, 3, True, lease_seconds=2.0, tolerate_errors=True, time_limit=40, pause=0.005)
        )
    )
    sweeper.start()
    time.sleep(0.4)
    before = store.count_by_state()["SUCCEEDED"]
    stop()
    time.sleep(1.0)  # down for a second: the sweepers' connects are refused and retried meanwhile
    start()
    sweeper.join(timeout=60)
    assert logs, "the sweepers did not finish"
    assert before < n, "the work was done before the restart: not a mid-sweep test"
    print(f"restart after {before}/{n} done; {len(logs[0].errors)} invocations failed across it")
    _check_finished(store, n, logs[0])

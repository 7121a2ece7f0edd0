"""Secrets and credentials never appear in logs.

A full run through the real handlers on the emulator, logging at DEBUG: HTTP requests with a bearer token and with
an HMAC request signature (and refused ones), copies started, sweeps, hooks (a webhook signed with its secret,
failing once so its error path logs too; tags; shares), the local completion queue; the state table on MariaDB
through a user WITH a password in its URL when the server is reachable (else SQLite, and that one value is
checked by the URL-rendering path only). Everything written to stdout/stderr (powertools' JSON lines, print) and
every logging record (message, arguments, extra fields, exception text) is searched for every secret value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from imagesync import wiring
from imagesync.domain.hooks import ShareHook, TagHook
from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.local import EmulatorClock, deliver
from imagesync.settings import Settings
from tests.conftest import load_event

API_TOKEN = "tok-7d1f0c2e9b8a4f3c-not-real"
HMAC_SECRET = "hmac-4c5d6e7f8a9b0c1d-not-real"
WEBHOOK_SECRET = "whk-0a1b2c3d4e5f6a7b-not-real"
DB_PASSWORD = "dbpw-9e8d7c6b5a4f3e2d"
BODY = {
    "source_region": "ap-guangzhou",
    "image_ids": ["img-5ddkx3gh"],
    "destination_regions": ["ap-shanghai", "ap-beijing"],
}


class _Capture(logging.Handler):
    """Every record, with everything a formatter could print: message, args, extras, exception text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = json.dumps({k: v for k, v in record.__dict__.items() if k != "exc_info"}, default=repr)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def capture() -> Iterator[_Capture]:
    from imagesync.platform.logs import logger

    handler = _Capture()
    # sqlalchemy is left at its level: its DEBUG echo of statements is not something a deployment turns on
    names = ["", "imagesync", "tencentcloud", "tencentcloud_sdk_common", "urllib3", "requests"]
    saved = {n: logging.getLogger(n).level for n in names}
    for name in names:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield handler
    finally:
        logger.setLevel(level)
        for name in names:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(saved[name])


def _database_url(tmp_path: Any) -> tuple[str, str | None]:
    """(URL, password in it or None): a MariaDB user with a password when the server answers, else SQLite."""
    try:
        import pymysql

        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=2)
    except Exception:
        return f"sqlite:///{tmp_path / 'state.db'}", None
    db, user = f"nosecrets_{uuid.uuid4().hex[:8]}", f"nosec_{uuid.uuid4().hex[:6]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{DB_PASSWORD}'")
        cur.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{DB_PASSWORD}'")
        cur.execute(f"GRANT ALL ON `{db}`.* TO '{user}'@'%'")
        cur.execute(f"GRANT ALL ON `{db}`.* TO '{user}'@'localhost'")
    admin.close()
    return f"mysql+pymysql://{user}:{DB_PASSWORD}@127.0.0.1:3306/{db}", DB_PASSWORD


def _drop_database(url: str) -> None:
    import pymysql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=2)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{parsed.database}`")
        cur.execute(f"DROP USER IF EXISTS '{parsed.username}'@'%'")
        cur.execute(f"DROP USER IF EXISTS '{parsed.username}'@'localhost'")
    admin.close()


class _Receiver:
    """A webhook receiver that fails the first POST (so the failure path logs) and accepts the rest."""

    def __init__(self) -> None:
        self.posts: list[dict[str, str]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                posts.append(dict(self.headers))
                self.send_response(500 if len(posts) == 1 else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _http(body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps(body)
    event["headers"] = {k: v for k, v in event["headers"].items() if k.lower() != "authorization"}
    event["headers"].update(headers)
    return copy_request.main_handler(event, {"request_id": f"req-{uuid.uuid4().hex[:8]}", "time_limit_in_ms": 30000})


def test_a_full_run_logs_no_secret(
    emulator: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    capture: _Capture,
) -> None:
    emulator.admin.set_time_scale(0)  # moved by advance() only: copies end when the test says, however busy the machine
    temp = emulator.admin.temporary_credentials()
    # what SCF injects from the function's role: a temporary key with its session token
    monkeypatch.setenv("TENCENTCLOUD_SECRETID", temp["secret_id"])
    monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", temp["secret_key"])
    monkeypatch.setenv("TENCENTCLOUD_SESSIONTOKEN", temp["token"])
    db_url, db_password = _database_url(tmp_path)
    if db_password:
        from imagesync.adapters.sql import upgrade

        upgrade(db_url)
    receiver = _Receiver()
    settings = Settings(
        tencent_endpoint=emulator.endpoint,
        database_url=db_url,
        queue_path=str(tmp_path / "queue.db"),
        api_token=SecretStr(API_TOKEN),
        api_hmac_secret=SecretStr(HMAC_SECRET),
        webhook_url=receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_allow_private=True,
        uin="100000000001",
        hooks=[TagHook(), ShareHook(account_ids=["100000000002"])],
        first_check_seconds=60,
        recheck_seconds=60,
        retry_seconds=60,
    )
    svc = wiring.build_services(settings, clock=EmulatorClock(emulator.admin.now))
    wiring.use(svc)
    emulator.admin.script_fault("SyncImages", 1, code="InternalError")  # an error path in the SDK call's logs
    try:
        # HTTP: bearer token; a wrong one; the HMAC signature; a stale signature
        created = _http(BODY, {"authorization": f"Bearer {API_TOKEN}"})
        assert created["statusCode"] == 202, created
        assert _http(BODY, {"authorization": f"Bearer {API_TOKEN}x"})["statusCode"] == 401
        body = {**BODY, "image_ids": ["img-8c2rq9tw"]}
        ts = str(int(time.time()))
        raw = json.dumps(body)
        sig = hmac.new(HMAC_SECRET.encode(), f"{ts}\nPOST\n/replications\n{raw}".encode(), hashlib.sha256)
        signed = _http(body, {"x-imagesync-timestamp": ts, "x-imagesync-signature": f"sha256={sig.hexdigest()}"})
        assert signed["statusCode"] == 202, signed
        stale = _http(body, {"x-imagesync-timestamp": "1", "x-imagesync-signature": f"sha256={sig.hexdigest()}"})
        assert stale["statusCode"] == 401
        # copies, sweeps (a retry after the scripted InternalError), ends, hooks through the queue
        timer = load_event("timer/every_minute.json")
        for _ in range(4):
            emulator.admin.advance(15 * 60)
            status_sweep.main_handler(timer, {"request_id": "sweep", "time_limit_in_ms": 30000})
        for _ in range(3):
            deliver(svc.queue, completion_hook.main_handler, retry_delay=0)
        ids = [json.loads(answer["body"])["id"] for answer in (created, signed)]
        replicas = [r for rid in ids for r in svc.store.get_replication(rid).replicas]
        # the side effects happened (so the run logged what a real one logs)
        assert [r.state.value for r in replicas] == ["SUCCEEDED"] * 4
        posts = receiver.posts
        assert len(posts) == 5, posts  # 4 ends + the one refused and redelivered
        assert all("X-Imagesync-Signature" in p for p in posts)
        runs = svc.store.hook_runs([r.id for r in replicas])
        assert {(r.hook_key, r.status) for rs in runs.values() for r in rs} == {
            ("webhook", "done"),
            ("tag", "done"),
            ("share", "done"),
        }
    finally:
        wiring.use(None)
        receiver.server.shutdown()
        if db_password:
            from imagesync.adapters.sql import dispose_engines

            dispose_engines()
            _drop_database(db_url)

    out, err = capfd.readouterr()
    text = "\n".join([out, err, *capture.lines])
    assert '"level":"' in out or capture.lines  # something was logged at all
    secrets = {
        "SecretKey": temp["secret_key"],
        "session token": temp["token"],
        "API token": API_TOKEN,
        "HMAC secret": HMAC_SECRET,
        "webhook secret": WEBHOOK_SECRET,
    }
    if db_password:
        secrets["database password"] = db_password
    leaked = {name: value for name, value in secrets.items() if value in text}
    where = [line[:300] for line in text.splitlines() if any(v in line for v in leaked.values())][:3]
    assert not leaked, f"secrets in the logs: {sorted(leaked)}, e.g. {where}"
    # the run did log: requests, the copies, and the webhook's failure
    assert "replica ended" in text and "webhook" in text.lower()

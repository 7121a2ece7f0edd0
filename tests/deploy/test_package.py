"""`make package` as SCF will use it: build dist/code.zip and dist/layer.zip, unpack them into empty folders, and run
each function's main_handler in a clean interpreter (python -I -S -B: only the standard library, the code folder and
the layer folder on sys.path, as SCF's PYTHONPATH=/var/user:/opt) against the emulator. A module missing from the
package fails here; so does one shipped but never used.

The layer holds the real manylinux2014 x86_64 cp310 wheels: this venv is CPython 3.10 on x86_64, so they load here.
The wheels are downloaded once into dist/wheels (gitignored) and reused.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_event

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("scf_runner.py")
FUNCTIONS = ("copy_request", "status_sweep", "completion_hook")
API_TOKEN = "package-test-token"
WEBHOOK_SECRET = "package-test-secret"

pytestmark = pytest.mark.slow


def _load_package_script() -> Any:
    spec = importlib.util.spec_from_file_location("imagesync_package_script", ROOT / "scripts" / "package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


package = _load_package_script()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The packages, built into a fresh folder (wheels from the shared cache: downloaded at most once)."""
    return package.build(tmp_path_factory.mktemp("dist"), ROOT / "dist" / "wheels")


@pytest.fixture
def unpacked(built: Any, tmp_path: Path) -> tuple[Path, Path]:
    """code.zip into var_user/, layer.zip into opt/: two empty folders, as SCF lays them out."""
    code, layer = tmp_path / "var_user", tmp_path / "opt"
    for archive, target in ((built.code_zip, code), (built.layer_zip, layer)):
        target.mkdir()
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
    return code, layer


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append({"headers": dict(self.headers), "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _run(
    code: Path,
    layer: Path,
    function: str,
    events: list[dict[str, Any]],
    env: dict[str, str],
    cwd: Path,
    *,
    probe_mysql: bool = False,
) -> dict[str, Any]:
    """One function in its own clean interpreter (as one SCF container), on the given events."""
    spec = {
        "code": str(code),
        "layer": str(layer),
        "function": function,
        "probe_mysql": probe_mysql,
        "events": [
            {
                "event": e,
                "context": {
                    "request_id": f"req-{function}-{i}",
                    "function_name": f"imagesync-{function}",
                    "time_limit_in_ms": 30000,
                    "tencentcloud_region": "ap-guangzhou",
                },
            }
            for i, e in enumerate(events)
        ],
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(RUNNER), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "import_error" not in out, out["import_error"]
    return out


def _http_event(name: str) -> dict[str, Any]:
    event = load_event(f"http/{name}")
    event["headers"] = {**event["headers"], "authorization": f"Bearer {API_TOKEN}"}
    return event


def test_code_zip_holds_the_entries_and_only_the_library_they_import(built: Any) -> None:
    names = set(zipfile.ZipFile(built.code_zip).namelist())
    assert {f"{f}.py" for f in FUNCTIONS} <= names
    for function in FUNCTIONS:  # each root entry is the function's own index.py
        entry = zipfile.ZipFile(built.code_zip).read(f"{function}.py")
        assert entry == (ROOT / "functions" / function / "index.py").read_bytes()
    assert "imagesync/handlers/copy_request.py" in names
    assert "imagesync/migrations/env.py" in names and "imagesync/migrations/script.py.mako" in names
    # the status page's templates: data, loaded by path
    assert {"imagesync/handlers/api/templates/status.html", "imagesync/handlers/api/templates/status.css"} <= names
    # never shipped: the emulator, the dev tooling, tests, docs, the CLI (typer/rich are not in the layer)
    for name in names:
        assert not name.startswith(
            ("imagesync_emulator/", "emulator/", "imagesync_dev/", "dev/", "tests/", "docs/", "functions/")
        ), name
    assert not names & {"imagesync/cli.py", "imagesync/demo.py", "imagesync/local.py"}
    assert not [n for n in names if n.startswith("imagesync/cli/")]  # the command line, a package
    # each module with its CPython 3.10 bytecode beside it (SCF's code folder is read-only: none is written there)
    sources = {n for n in names if n.endswith(".py")}
    compiled = {n for n in names if n.endswith(".pyc")}
    assert compiled == {_cached(n) for n in sources}
    for name in compiled:
        _assert_unchecked_310(zipfile.ZipFile(built.code_zip).read(name), name)


def test_layer_holds_pinned_cp310_manylinux_dependencies_and_nothing_unused(built: Any) -> None:
    dists = built.distributions
    for required in (
        "tencentcloud-sdk-python-cvm",
        "pydantic-core",
        "sqlalchemy",
        "aws-lambda-powertools",
        "pymysql",
        "tencentcloud-sdk-python-scf",
        "tencentcloud-sdk-python-eb",  # the two completion links
        "jinja2",
        "markupsafe",
    ):  # the status page
        assert required in dists
    for unwanted in (
        "boto3",
        "botocore",
        "typer",
        "rich",
        "pytest",
        "tccli",
        "psycopg",
        "psycopg-binary",
        "greenlet",
        "tencentcloud-sdk-python-tdmq",
        "tencentcloud-sdk-python",
    ):
        assert unwanted not in dists, unwanted
    pins = package.pins()
    assert all(pins[name] == version for name, version in dists.items())  # versions tested = versions shipped
    names = zipfile.ZipFile(built.layer_zip).namelist()
    assert not any(n.startswith("python/") for n in names)  # SCF's PYTHONPATH has /opt, not /opt/python
    native = [n for n in names if n.endswith(".so")]
    assert native and all("cpython-310-x86_64-linux-gnu" in n or "abi3" in n for n in native), native
    # bytecode only: each module as CPython 3.10 bytecode in place of its source (tracebacks keep file and line)
    assert not any("__pycache__" in n or n.endswith(".py") for n in names)
    with zipfile.ZipFile(built.layer_zip) as layer:
        compiled = [n for n in names if n.endswith(".pyc")]
        assert "sqlalchemy/__init__.pyc" in compiled and "pydantic/main.pyc" in compiled
        for name in compiled:
            _assert_unchecked_310(layer.read(name), name)


def _cached(source: str) -> str:
    folder, _, name = source.rpartition("/")
    return (f"{folder}/" if folder else "") + f"__pycache__/{name[:-3]}.cpython-310.pyc"


def _assert_unchecked_310(pyc: bytes, name: str) -> None:
    """CPython 3.10's magic number, and flags 0b01: hash-based, source never checked (PEP 552)."""
    assert pyc[:4] == (3439).to_bytes(2, "little") + b"\r\n", name
    assert int.from_bytes(pyc[4:8], "little") == 0b01, name


def test_packages_are_within_scf_limits_and_reproducible(built: Any, tmp_path: Path) -> None:
    s = built.sizes
    assert s["code_zip"] < package.MAX_ZIP_BYTES and s["layer_zip"] < package.MAX_ZIP_BYTES
    assert s["code_unzipped"] + s["layer_unzipped"] < package.MAX_UNZIPPED_BYTES
    assert package.check_limits({**s, "layer_zip": package.MAX_ZIP_BYTES + 1}) != []
    again = package.build(tmp_path / "again", ROOT / "dist" / "wheels")
    assert again.code_zip.read_bytes() == built.code_zip.read_bytes()
    assert again.layer_zip.read_bytes() == built.layer_zip.read_bytes()


def _elf_sections(path: Path) -> list[str]:
    """The section names of a little-endian ELF64 file (the header's section table and its string table)."""
    data = path.read_bytes()
    assert data[:5] == b"\x7fELF\x02", path
    shoff, shentsize, shnum, shstrndx = (
        int.from_bytes(data[0x28:0x30], "little"),
        *(int.from_bytes(data[o : o + 2], "little") for o in (0x3A, 0x3C, 0x3E)),
    )

    def header(i: int) -> tuple[int, int]:  # (sh_name, sh_offset)
        base = shoff + i * shentsize
        name, offset = data[base : base + 4], data[base + 0x18 : base + 0x20]
        return int.from_bytes(name, "little"), int.from_bytes(offset, "little")

    strings = header(shstrndx)[1]
    return [data[strings + name : data.index(b"\0", strings + name)].decode() for name, _ in map(header, range(shnum))]


def test_extension_modules_ship_stripped_and_still_load(unpacked: tuple[Path, Path], built: Any) -> None:
    """No debug sections in the layer's shared objects, and the compiled accelerators load from it in a clean
    interpreter (SQLAlchemy falls back to pure Python silently when its cyextension fails to load: check the flag)."""
    code, layer = unpacked
    objects = sorted(layer.rglob("*.so"))
    assert objects and not [p.name for p in objects if any(n.startswith(".debug") for n in _elf_sections(p))]
    probe = (
        "import sqlalchemy.util._has_cy as cy, yaml, markupsafe._speedups, pydantic_core._pydantic_core;"
        "print(cy.HAS_CYEXTENSION, yaml.__with_libyaml__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", f"import sys; sys.path[:0] = {[str(code), str(layer)]!r}; {probe}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["True", "True"]


def test_each_function_runs_from_the_unpacked_package_against_the_emulator(
    unpacked: tuple[Path, Path],
    built: Any,
    emulator: Any,
    webhook: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    code, layer = unpacked
    url, received = webhook
    work = tmp_path / "cwd"
    work.mkdir()
    state = tmp_path / "state.db"
    env = {
        "PATH": "/usr/bin:/bin",
        # what SCF injects from the function's role (not the SDK's own variable names)
        "TENCENTCLOUD_SECRETID": emulator.secret_id,
        "TENCENTCLOUD_SECRETKEY": emulator.secret_key,
        "TENCENTCLOUD_SESSIONTOKEN": "",
        "TENCENTCLOUD_REGION": "ap-guangzhou",
        "TENCENTCLOUD_RUNENV": "SCF",
        "IMAGESYNC_TENCENT_ENDPOINT": emulator.endpoint,
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{state}",
        "IMAGESYNC_QUEUE": "local",
        "IMAGESYNC_QUEUE_PATH": str(tmp_path / "queue.db"),
        "IMAGESYNC_FIRST_CHECK_SECONDS": "1",
        "IMAGESYNC_RECHECK_SECONDS": "1",
        "IMAGESYNC_API_TOKEN": API_TOKEN,
        "IMAGESYNC_WEBHOOK_URL": url,
        "IMAGESYNC_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "IMAGESYNC_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1 over http
    }

    page_event = _http_event("function_url_health.json")
    page_event["path"] = "/"
    page_event["headers"] = {**page_event["headers"], "accept": "text/html"}
    copy = _run(
        code,
        layer,
        "copy_request",
        [
            _http_event("function_url_health.json"),
            _http_event("function_url_create_replication.json"),
            page_event,
        ],
        env,
        work,
    )
    health, created, page = (r.get("ok") or r for r in copy["results"])
    assert health["statusCode"] == 200, health
    assert created["statusCode"] == 202, created
    # the status page renders from the package alone (jinja2 from the layer, the templates from the code)
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html"), page
    assert page["body"].count('class="replica"') == 4
    replication = json.loads(created["body"])
    assert len(replication["replicas"]) == 4
    assert len(emulator.admin.calls(action="SyncImages")) == 2
    with sqlite3.connect(state) as db:  # the state table the function wrote
        assert db.execute("SELECT count(*) FROM replicas WHERE state = 'COPYING'").fetchone() == (4,)

    time.sleep(1.2)  # past IMAGESYNC_FIRST_CHECK_SECONDS, so the sweep checks the copies
    describes_before = len(emulator.admin.calls(action="DescribeImages"))
    sweep = _run(code, layer, "status_sweep", [load_event("timer/every_minute.json")], env, work)
    assert "ok" in sweep["results"][0], sweep["results"]
    assert len(emulator.admin.calls(action="DescribeImages")) > describes_before

    one = load_event("queue/scf_async_two_messages.json")  # the event status_sweep's async Invoke gives it
    one["messages"] = one["messages"][:1]
    hook = _run(code, layer, "completion_hook", [one], env, work, probe_mysql=True)
    assert hook["results"][0].get("ok", {}).get("processed") == 1, hook["results"]
    assert len(received) == 1  # the webhook went out through requests, from the layer, signed
    signature = {k.lower(): v for k, v in received[0]["headers"].items()}["x-imagesync-signature"]
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), received[0]["body"], hashlib.sha256).hexdigest()
    assert signature == expected

    # Every module came from the standard library, the code folder or the layer folder -- nothing else.
    runs = (copy, sweep, hook)
    loaded = {name: path for run in runs for name, path in run["modules"].items()}
    for name, path in loaded.items():
        if path and "site-packages" in path:
            pytest.fail(f"{name} was loaded from {path}, outside the package")
    assert loaded["imagesync"].startswith(str(code)) and loaded["pydantic"].startswith(str(layer))
    # Nothing unused: every distribution in the layer was imported by some function, except those imagesync's own
    # code imports lazily on a path these events do not take (e.g. yaml for a rules file): the static closure
    # vouches for those, and a dependency only some other package needs has no such excuse.
    imported = {name.split(".")[0] for name in loaded}
    never = {dist for dist, tops in _layer_tops(layer).items() if not tops & imported}
    _modules, external = package.code_closure()
    lazily_imported = {package._distribution_of(module) for module in external}
    assert never <= lazily_imported, f"shipped but never imported: {sorted(never - lazily_imported)}"


def _layer_tops(layer: Path) -> dict[str, set[str]]:
    """Distribution (canonical name) -> the top-level names its files provide in the unpacked layer."""
    out: dict[str, set[str]] = {}
    for info in layer.glob("*.dist-info"):
        name = package.canonicalize_name(
            next(line for line in (info / "METADATA").read_text().splitlines() if line.startswith("Name:"))[5:].strip()
        )
        tops = set()
        for line in (info / "RECORD").read_text().splitlines():
            first = line.split(",", 1)[0].split("/", 1)
            if len(first) == 1:
                tops.add(first[0].removesuffix(".py"))
            elif not first[0].endswith((".dist-info", ".data")) and first[0] != "__pycache__":
                tops.add(first[0])
        out[name] = {t for t in tops if t and not t.endswith(".pth")}
    return out

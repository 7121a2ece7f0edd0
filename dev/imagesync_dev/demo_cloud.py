"""`make demo-cloud`: the deploy package (`make package`: dist/code, dist/layer.zip) deployed from the project's own
serverless.yml onto the emulator's emulated SCF, the state table on MariaDB, and driven only as the cloud drives it:
HTTP requests to the Function URL with the API token, a CreateImage that CloudAudit -> EventBridge -> copy_request
turns into copies, status_sweep on its timer (emulated clock), completions by scf async Invoke to completion_hook,
hooks run once (a signed webhook to a local receiver, tags and sharing on each copy). Nothing calls a handler.

`deploy_stack` is the deployment alone (the tests of the deployed path use it with a SQLite file): serverless.yml as
`scf deploy` would read it, `imagesync deploy-steps` against the emulator (async retries, completion_hook's dead
letter, the CreateImage rule), then the emulator-only settings through scf UpdateFunctionConfiguration, as an
operator would change a deployed function (LOCAL_SETTINGS says which and why).

Development tooling: it imports the emulator, which the functions never do. Exits non-zero on any other outcome.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from .demo import API_TOKEN, PARTNER_UIN, REQUESTS, SOURCE, WEBHOOK_SECRET
from .webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from imagesync_emulator import Emulator
    from imagesync_emulator.scf import Deployment

ROOT = Path(__file__).resolve().parents[2]
SERVERLESS_YML = ROOT / "serverless.yml"
DEFAULT_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/imagesync_demo_cloud"
FUNCTIONS = ("copy_request", "status_sweep", "completion_hook")
DEAD_LETTER_QUEUE = "imagesync-completions-dead"  # deploy/completion-hook-dead-letter.json
#: 1 real second = 4 emulated minutes: copies of 10-30 emulated minutes take 2.5-7.5 s, the per-minute timer fires
#: every 0.25 s; the whole demo runs in about half a minute on 2 busy cores.
TIME_SCALE = 240.0
#: the image the demo creates; the rule below selects it
RULE_IMAGE_NAME = "golden-web-2026"
RULES: dict[str, Any] = {
    "rules": [
        {
            "name": "golden-images",
            "selector": {"source_regions": [SOURCE], "name_glob": "golden-*"},
            "destinations": ["ap-shanghai", "ap-beijing"],
        }
    ]
}
#: global hooks beside the webhook (IMAGESYNC_HOOKS): provenance tags and sharing with the partner account
HOOKS: list[dict[str, Any]] = [{"type": "tag"}, {"type": "share", "account_ids": [PARTNER_UIN]}]
#: Settings only the emulator needs, set on the deployed functions with UpdateFunctionConfiguration (never in
#: serverless.yml): the functions run on the REAL clock while the emulator's copies run on its compressed one, so
#: the sweep's first look, re-check and retry (default 60/60/30 real s) come after 1 real second instead, and the
#: look budget's slots (a world's first copies look only at them) every 5 real s, not 600; and the webhook receiver
#: is http on 127.0.0.1, which a deployed function refuses unless allowed.
LOCAL_SETTINGS: dict[str, dict[str, str]] = {
    "copy_request": {
        "IMAGESYNC_FIRST_CHECK_SECONDS": "1",
        "IMAGESYNC_MAX_CHECK_SECONDS": "5",
        "IMAGESYNC_RETRY_SECONDS": "1",
    },
    "status_sweep": {
        "IMAGESYNC_FIRST_CHECK_SECONDS": "1",
        "IMAGESYNC_MAX_CHECK_SECONDS": "5",
        "IMAGESYNC_RECHECK_SECONDS": "1",
        "IMAGESYNC_RETRY_SECONDS": "1",
    },
    "completion_hook": {"IMAGESYNC_WEBHOOK_ALLOW_PRIVATE": "true"},
}


#: the API versions of the SDK clients the demo uses
_VERSIONS = {"cvm": "v20170312", "scf": "v20180416", "tdmq": "v20200217"}


class DemoError(Exception):
    """The demo cannot run as asked (no package, no database, a deploy step failed): said in one line."""


def sdk(emu: Emulator, product: str, region: str | None = SOURCE) -> Any:
    """An official SDK client of `product` (cvm, scf, tdmq) on the emulator, with the default account's key."""
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    module = importlib.import_module(f"tencentcloud.{product}.{_VERSIONS[product]}.{product}_client")
    cls = getattr(module, f"{product.capitalize()}Client")
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=emu.host_port), language="en-US")
    return cls(credential.Credential(emu.secret_id, emu.secret_key), region, profile)


def _call(client: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.call_json(action, params)["Response"]
    return answer


@dataclass
class Stack:
    """The deployed functions on one emulator, and the ways the cloud reaches them."""

    emu: Emulator
    deployment: Deployment
    token: str
    steps: dict[str, Any] = field(default_factory=dict)  # what `imagesync deploy-steps` printed

    @property
    def url(self) -> str:
        """copy_request's Function URL."""
        return self.deployment.urls["copy_request"]

    def name(self, key: str) -> str:
        return self.deployment.functions[key]

    def http(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, timeout: float = 120.0
    ) -> tuple[int, dict[str, Any]]:
        """One request to the Function URL (Bearer token unless `token` is ""); (status, JSON body)."""
        token = self.token if token is None else token
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def configure(self, key: str, *, env: Mapping[str, str] | None = None, timeout: int | None = None) -> None:
        """scf UpdateFunctionConfiguration: `env` added to (or replacing) the function's variables, `timeout`."""
        scf = sdk(self.emu, "scf")
        params: dict[str, Any] = {"FunctionName": self.name(key)}
        if env:
            current = _call(scf, "GetFunction", {"FunctionName": self.name(key)})["Environment"]["Variables"]
            merged = {v["Key"]: v["Value"] for v in current} | dict(env)
            params["Environment"] = {"Variables": [{"Key": k, "Value": v} for k, v in merged.items()]}
        if timeout is not None:
            params["Timeout"] = timeout
        _call(scf, "UpdateFunctionConfiguration", params)

    def attempts(self, key: str) -> list[dict[str, Any]]:
        """Every finished invocation attempt of the function (admin scf_invocations)."""
        return [r for r in self.emu.admin.scf_invocations(self.name(key)) if r["outcome"] != "running"]


def serverless_env(values: Mapping[str, str], path: Path = SERVERLESS_YML) -> dict[str, str]:
    """A value for every ${env:NAME} serverless.yml names, from `values`; a name without one is an error (the
    emulated deploy refuses unset names, and a made-up value would deploy something nobody chose)."""
    names = set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text()))
    missing = sorted(names - set(values))
    if missing:
        raise DemoError(f"{path.name} names ${{env:...}} variables the demo gives no value: {', '.join(missing)}")
    return {n: values[n] for n in names}


def deploy_stack(
    emu: Emulator,
    *,
    database_url: str,
    code_dir: Path,
    layer_zip: Path,
    webhook_url: str = "",
    webhook_secret: str = "",
    rules: Mapping[str, Any] | None = None,
    hooks: list[dict[str, Any]] | None = None,
    token: str = API_TOKEN,
    local_settings: Mapping[str, Mapping[str, str]] = LOCAL_SETTINGS,
    serverless_yml: Path = SERVERLESS_YML,
) -> Stack:
    """serverless.yml deployed onto `emu`'s SCF, `imagesync deploy-steps --dead-letter` run against it (its queue
    created first, as docs/deploy.md says), then `local_settings` applied. The schema must exist already
    (serverless.yml sets IMAGESYNC_AUTO_MIGRATE=false: see `migrate`)."""
    env = serverless_env(
        {
            "STAGE": "demo",
            "REGION": SOURCE,
            "VPC_ID": "vpc-demo0000",
            "SUBNET_ID": "subnet-demo0000",
            "LAYER_VERSION": "1",
            "IMAGESYNC_DATABASE_URL": database_url,
            "IMAGESYNC_API_TOKEN": token,
            "IMAGESYNC_WEBHOOK_URL": webhook_url,
            "IMAGESYNC_WEBHOOK_SECRET": webhook_secret,
            "IMAGESYNC_RULES_JSON": json.dumps(rules) if rules else "",
            "IMAGESYNC_HOOKS": json.dumps(hooks or []),
        },
        serverless_yml,
    )
    deployment = emu.deploy(serverless_yml, env=env, layers=layer_zip, code_dir=code_dir)
    _call(sdk(emu, "tdmq"), "CreateCmqQueue", {"QueueName": DEAD_LETTER_QUEUE})
    stack = Stack(emu, deployment, token, deploy_steps(emu, "--dead-letter"))
    for key, values in local_settings.items():
        if values:
            stack.configure(key, env=values)
    return stack


def deploy_steps(emu: Emulator, *args: str) -> dict[str, Any]:
    """`imagesync deploy-steps --region ap-guangzhou --uin <the default account> ARGS` against the emulator, as a
    deployer runs it; what it printed."""
    uin = next(a["uin"] for a in emu.admin.accounts() if a["name"] == "default")
    done = _imagesync(
        ["deploy-steps", "--region", SOURCE, "--uin", uin, *args],
        {
            "IMAGESYNC_TENCENT_ENDPOINT": emu.endpoint,
            "TENCENTCLOUD_SECRET_ID": emu.secret_id,
            "TENCENTCLOUD_SECRET_KEY": emu.secret_key,
        },
    )
    printed: dict[str, Any] = json.loads(done.stdout)
    return printed


def _imagesync(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`imagesync ARGS` in its own process (as a deployer runs it), with only `env` beside PATH and HOME."""
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    done = subprocess.run(
        [sys.executable, "-c", "from imagesync.cli import app; app()", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise DemoError(f"imagesync {args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    return done


def migrate(database_url: str) -> None:
    """`imagesync db upgrade` (the functions never migrate)."""
    _imagesync(["db", "upgrade"], {"IMAGESYNC_DATABASE_URL": database_url})


def fresh_database(database_url: str) -> None:
    """A MySQL/MariaDB URL's database dropped and created empty; a clear DemoError if the server is unreachable.
    SQLite needs nothing (the file is made by `db upgrade`)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return
    if url.get_backend_name() != "mysql" or not url.database or not re.fullmatch(r"\w+", url.database):
        raise DemoError(f"the demo's state table is MySQL/MariaDB (mysql+pymysql://...) or SQLite, got {url!r}")
    engine = create_engine(url.set(database=""), connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
            conn.execute(text(f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4"))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise DemoError(
            f"MariaDB is not reachable at {url.host}:{url.port or 3306} as {url.username} "
            f"({type(cause).__name__}: {cause}); start it, or give another --database-url"
        ) from exc
    finally:
        engine.dispose()


def wait(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll until `predicate` is truthy (a generous bound, not a speed assumption); DemoError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _settled(replication: dict[str, Any], hook_keys: set[str]) -> bool:
    """Every replica ended and each of its hooks has a final outcome (done, skipped, failed)."""
    for r in replication["replicas"]:
        if r["state"] not in ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"):
            return False
        outcome = {h["hook"]: h["status"] for h in r.get("hooks") or []}
        if set(outcome) != hook_keys or any(s not in ("done", "skipped", "failed") for s in outcome.values()):
            return False
    return True


@dataclass
class Outcome:
    rows: list[dict[str, Any]]
    functions: dict[str, dict[str, int]]
    requests: list[tuple[str, int, str]]
    problems: list[str]
    elapsed: float


def scenario(stack: Stack, receiver: WebhookReceiver, *, console: Console, deadline_seconds: float) -> Outcome:
    """The demo's requests, a CreateImage, and everything the deployed functions then do until each replica has
    ended and its hooks ran; what happened, and what differs from the expected outcome."""
    emu = stack.emu
    problems: list[str] = []
    requests: list[tuple[str, int, str]] = []
    replication_ids: list[str] = []
    # the demo's delivery into another account is shown by `imagesync-dev demo` (and tests/integration)
    plain = [c for c in REQUESTS if all(isinstance(d, str) for d in c[1].get("destination_regions", []))]
    cases = [*plain, ("without the API token", REQUESTS[0][1], 401, "Auth.Required")]
    started = time.monotonic()
    for label, body, want_status, want_code in cases:
        status, answer = stack.http("POST", "/replications", body, token="" if want_status == 401 else None)
        code = (answer.get("error") or {}).get("code")
        requests.append((label, status, code or answer.get("id", "")))
        ok = (status, code) == (want_status, want_code)
        console.print(
            f"  POST {stack.url}/replications {label}: {status} {code or answer.get('id')} "
            + ("[green]ok[/green]" if ok else "[red]??[/red]")
        )
        if not ok:
            problems.append(f"{label}: got {status} {code}, expected {want_status} {want_code}")
        if status == 202:
            replication_ids.append(answer["id"])

    # A new custom image: CloudAudit -> the EventBridge rule deploy-steps made -> copy_request -> the rule's copies.
    image_id = _call(sdk(emu, "cvm"), "CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": RULE_IMAGE_NAME})[
        "ImageId"
    ]
    routed = wait(
        lambda: [r for r in stack.attempts("copy_request") if r["source"] == "eventbridge" and r["outcome"] == "ok"],
        timeout=deadline_seconds,
        what="the CreateImage event handled by copy_request",
    )
    console.print(
        f"  cvm CreateImage {RULE_IMAGE_NAME} -> {image_id} -> EventBridge -> copy_request: {routed[0]['outcome']}"
    )
    status, listed = stack.http("GET", f"/replications?image_id={image_id}")
    by_rule = [item["id"] for item in listed.get("items") or [] if item.get("origin") == "event"]
    if status != 200 or len(by_rule) != 1:
        problems.append(f"the CreateImage event made {by_rule or 'no'} replication (GET answered {status})")
    replication_ids += by_rule

    hook_keys = {"webhook", "tag", "share"}
    views: dict[str, dict[str, Any]] = {}

    def settled() -> bool:
        for rid in replication_ids:
            status, views[rid] = stack.http("GET", f"/replications/{rid}")
            if status != 200 or not _settled(views[rid], hook_keys):
                return False
        return not emu.admin.scf_pending()

    try:
        wait(settled, timeout=deadline_seconds, what="every replica's end and hooks", every=1.0)
    except DemoError as exc:
        problems.append(str(exc))
    elapsed = time.monotonic() - started

    copies = {h["image_id"]: h for h in emu.admin.dump()["history"] if h.get("event") == "copy_started"}
    delivered = Counter(d["payload"].get("replica_id") for d in receiver.received if d["valid"])
    if any(not d["valid"] for d in receiver.received):
        problems.append("a webhook arrived with a bad signature")
    rows = []
    for rid in replication_ids:
        for r in views.get(rid, {}).get("replicas", []):
            copy = copies.get(r["destination_image_id"] or "")
            image = (emu.admin.image(r["destination_image_id"]) if r["destination_image_id"] else None) or {}
            tags = {t["Key"]: t["Value"] for t in image.get("Tags") or []}
            hooks = {h["hook"]: h["status"] for h in r.get("hooks") or []}
            rows.append(
                {
                    "image": r["source_image_id"],
                    "region": r["destination_region"],
                    "destination": r["destination_image_id"],
                    "state": r["state"],
                    "minutes": (copy["ready_at"] - copy["at"]) / 60 if copy else None,
                    "webhooks": delivered[r["id"]],
                    "hooks": hooks,
                    "tagged": tags.get("imagesync:source-image") == r["source_image_id"],
                    "shared": PARTNER_UIN in image.get("SharedWith", []),
                }
            )
            where = f"{r['source_image_id']} -> {r['destination_region']}"
            if r["state"] != "SUCCEEDED":
                problems.append(f"{where} ended {r['state']}")
            if hooks != {k: "done" for k in hook_keys}:
                problems.append(f"{where}: hooks {hooks}, expected webhook, tag and share done")
            if delivered[r["id"]] != 1:
                problems.append(f"{where}: webhook delivered {delivered[r['id']]} times, expected once")
            if not (rows[-1]["tagged"] and rows[-1]["shared"]):
                problems.append(f"{where}: the copy is not tagged and shared")
    if len(rows) != 7:  # 2 images x 2 regions, the CREATING image, the new image x 2 regions
        problems.append(f"{len(rows)} replicas, expected 7")

    functions = {}
    for key in FUNCTIONS:
        runs = stack.attempts(key)
        functions[key] = {
            "invocations": len(runs),
            "cold": sum(r["cold"] for r in runs),
            "warm": sum(not r["cold"] for r in runs),
            "errors": sum(r["outcome"] != "ok" for r in runs),
            "retries": sum(r["attempt"] > 1 for r in runs),
        }
        if functions[key]["errors"]:
            failed = next(r for r in runs if r["outcome"] != "ok")
            error = failed["error"] or {}
            problems.append(
                f"{key}: {functions[key]['errors']} invocation(s) not ok, first: {failed['outcome']} "
                f"{str(error.get('errorMessage', ''))[:200]}"
            )
    if not any(r["invocation_type"] == "Event" and r["source"] == "api" for r in stack.attempts("completion_hook")):
        problems.append("completion_hook was never invoked asynchronously by status_sweep")
    if emu.admin.scf_dead_letters():
        problems.append(f"dead letters: {emu.admin.scf_dead_letters()}")
    return Outcome(rows, functions, requests, problems, elapsed)


def run(
    database_url: str = DEFAULT_DATABASE_URL,
    *,
    dist: Path = ROOT / "dist",
    console: Console | None = None,
    deadline_seconds: float = 120.0,
) -> int:
    """The demo; 0 when the outcome is the expected one, 1 otherwise, 2 when it cannot run."""
    from imagesync_emulator import Emulator

    console = console or Console(width=max(150, Console().width))
    code_dir, layer_zip = dist / "code", dist / "layer.zip"
    receiver = None
    try:
        if not (code_dir / "copy_request.py").is_file() or not layer_zip.is_file():
            raise DemoError(f"no deploy package in {dist}: run `make package` first (`make demo-cloud` does)")
        fresh_database(database_url)
        migrate(database_url)
        receiver = WebhookReceiver(WEBHOOK_SECRET)
        with Emulator(time_scale=0.0, seed=7) as emu:  # frozen while deploying; runs once everything is set
            stack = deploy_stack(
                emu,
                database_url=database_url,
                code_dir=code_dir,
                layer_zip=layer_zip,
                webhook_url=receiver.url,
                webhook_secret=WEBHOOK_SECRET,
                rules=RULES,
                hooks=HOOKS,
            )
            from sqlalchemy.engine import make_url

            console.print(
                f"[bold]imagesync demo-cloud[/bold]: serverless.yml + {dist}/ deployed on the emulated "
                f"SCF at {emu.endpoint}; state table {make_url(database_url).render_as_string()}"
            )
            console.print(
                f"  functions {', '.join(stack.deployment.functions.values())}; Function URL "
                f"{stack.url}; deploy-steps: {', '.join(s['action'] for s in stack.steps['done'])}"
            )
            emu.admin.set_time_scale(TIME_SCALE)
            console.print(f"  emulated clock running: 1 real s = {TIME_SCALE / 60:.0f} emulated min")
            outcome = scenario(stack, receiver, console=console, deadline_seconds=deadline_seconds)
    except DemoError as exc:
        console.print(f"[red]demo-cloud cannot run[/red]: {exc}")
        return 2
    finally:
        if receiver is not None:
            receiver.close()

    table = Table(title=f"replicas ({outcome.elapsed:.1f} s real)")
    for column in (
        "image",
        "region",
        "destination id",
        "state",
        "emulated duration",
        "hook delivered",
        "hooks",
        "on the copy",
    ):
        table.add_column(column)
    for row in outcome.rows:
        table.add_row(
            row["image"],
            row["region"],
            row["destination"] or "-",
            row["state"],
            f"{row['minutes']:.1f} min" if row["minutes"] is not None else "-",
            {0: "no", 1: "yes"}.get(row["webhooks"], f"{row['webhooks']} times"),
            " ".join(f"{k}:{v}" for k, v in sorted(row["hooks"].items())),
            f"{'tagged' if row['tagged'] else 'NOT tagged'}, {'shared' if row['shared'] else 'NOT shared'}",
        )
    console.print(table)
    functions = Table(title="invocations on the emulated SCF")
    for column in ("function", "invocations", "cold", "warm", "errors", "retries"):
        functions.add_column(column)
    for key, counts in outcome.functions.items():
        functions.add_row(key, *(str(counts[c]) for c in ("invocations", "cold", "warm", "errors", "retries")))
    console.print(functions)
    if outcome.problems:
        for problem in outcome.problems:
            console.print(f"[red]unexpected:[/red] {problem}")
        return 1
    console.print(
        "[green]demo-cloud outcome as expected[/green]: every copy SUCCEEDED through the deployed functions, "
        "each hook done once"
    )
    return 0

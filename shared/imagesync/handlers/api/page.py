"""The read-only status page: copy_request's replications as server-rendered HTML (GET /, and
GET /replications/{id} when the client prefers text/html).

Jinja2 with autoescape renders templates/status.html: every value (image names and error messages come from the
cloud and from callers) is escaped, so an image named `<script>...` shows as text. No script runs on the page; the
one inline style block is allowed by its hash in a strict Content-Security-Policy, nothing else is. The page is
refreshed by a meta refresh every REFRESH_SECONDS while a copy shown is in flight, and each answer carries an ETag:
a reload of an unchanged page costs one store read and a 304, no body. Durations and ETAs are absolute (no "n
minutes ago"), so the same data renders the same bytes and the ETag holds.

jinja2 is imported only when a page is rendered: the JSON API's cold starts do not pay for it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ...domain.attempts import attempt_numbers, successors
from ...domain.models import Replica, Replication
from ...domain.states import ReplicaState
from ...ports import HookRun
from .models import replica_eta

if TYPE_CHECKING:
    from jinja2 import Template

TEMPLATES = Path(__file__).with_name("templates")
HTML = "text/html; charset=utf-8"
#: seconds between reloads while a copy shown is in flight (SCF bills each; an unchanged page answers 304)
REFRESH_SECONDS = 30


def wants_html(accept: str | None) -> bool:
    """True when the client's Accept header asks for HTML before JSON (what a browser's navigation sends)."""
    if not accept:
        return False
    html = _position(accept, "text/html")
    json_at = _position(accept, "application/json")
    return html is not None and (json_at is None or html < json_at)


def _position(accept: str, media_type: str) -> int | None:
    """Where `media_type` stands in an Accept header (None: absent or refused with q=0)."""
    for i, item in enumerate(accept.lower().split(",")):
        name, *params = (part.strip() for part in item.split(";"))
        if name != media_type:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    if float(value) <= 0:
                        return None
                except ValueError:
                    return None
        return i
    return None


@lru_cache(maxsize=1)
def _css() -> str:
    return (TEMPLATES / "status.css").read_text()


@lru_cache(maxsize=1)
def content_security_policy() -> str:
    """Nothing may load or run but the page's own style block (by its hash); forms submit to this origin only."""
    digest = base64.b64encode(hashlib.sha256(_css().encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'; script-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@lru_cache(maxsize=1)
def _template() -> Template:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("status.html")


def _time(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _timing(replica: Replica) -> str:
    """An ended copy's duration; a copy in flight's predicted end (ETA) or when it started."""
    if replica.state.terminal:
        start = replica.started_at or replica.created_at
        return f"took {_duration(replica.ended_at - start)}" if replica.ended_at else ""
    eta = replica_eta(replica)
    if eta is not None:
        return f"ETA {_time(eta)}"
    if replica.started_at:
        return f"started {_time(replica.started_at)}"
    return "not started"


def _replica_view(
    replica: Replica, runs: Sequence[HookRun] | None, attempt: int = 1, retried_by: str | None = None
) -> dict[str, Any]:
    percent = 100 if replica.state is ReplicaState.SUCCEEDED else replica.sync_percent or 0
    return {
        "id": replica.id,
        "source_image_id": replica.source_image_id,
        "image_name": replica.image_name,
        "region": replica.destination_region,
        "state": replica.state.value,
        "percent": percent,
        "percent_text": f"{replica.sync_percent}%" if replica.sync_percent is not None else "",
        "timing": _timing(replica),
        "destination_image_id": replica.destination_image_id or "",
        "error_code": replica.error_code or "",
        "error_message": replica.error_message or "",
        "hooks": [
            {"hook": run.hook_key, "status": run.status, "code": run.error_code if run.status != "done" else None}
            for run in runs or ()
        ],
        "hooks_text": "" if runs is None else "none",
        "attempt": attempt,
        "retried_by": retried_by or "",
    }


def _replication_view(replication: Replication, runs: Mapping[str, Sequence[HookRun]] | None) -> dict[str, Any]:
    numbers = attempt_numbers(replication.replicas)
    after = successors(replication.replicas)
    return {
        "id": replication.id,
        "state": replication.state,
        "source_region": replication.source_region,
        "origin": replication.origin.value,
        "requested_by": replication.requested_by,
        "created": _time(replication.created_at),
        "dry_run": replication.dry_run,
        "replicas": [
            _replica_view(
                r,
                runs.get(r.id, []) if runs is not None else None,
                numbers.get(r.id, 1),
                after[r.id].id if r.id in after else None,
            )
            for r in replication.replicas
        ],
    }


def render(
    replications: Sequence[Replication],
    *,
    hook_runs: Mapping[str, Sequence[HookRun]] | None = None,
    filters: Mapping[str, str] | None = None,
    next_cursor: str | None = None,
    single: bool = False,
    error: str | None = None,
) -> str:
    """The page of `replications` (newest first). `filters`: the list's query (kept by the filter form and the
    next-page link); `single`: the page of one replication; `error`: a bad filter, shown above an empty list."""
    filters = {k: v for k, v in (filters or {}).items() if v}
    in_flight = any(not r.terminal for rep in replications for r in rep.replicas)
    next_url = None
    if next_cursor:
        kept: dict[str, str] = {k: filters[k] for k in ("state", "image_id", "region", "limit") if k in filters}
        next_url = "/?" + urlencode({**kept, "cursor": next_cursor})
    from markupsafe import Markup

    title = replications[0].id if single and replications else "replications"
    return _template().render(
        title=title,
        base="",
        css=Markup(_css()),  # our own file, hashed in the CSP as is: escaping it would break the hash
        single=single,
        states=[s.value for s in ReplicaState],
        filters={k: filters.get(k, "") for k in ("state", "image_id", "region")},
        filtered=bool(filters),
        error=error,
        replications=[_replication_view(rep, hook_runs if single else None) for rep in replications],
        next_url=next_url,
        refresh=REFRESH_SECONDS if in_flight else None,
    )


def etag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def headers(body: str) -> dict[str, str]:
    """The page's response headers: CSP and friends, and its ETag (the browser revalidates every reload)."""
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "private, no-cache",
        "ETag": etag(body),
    }


def not_modified(if_none_match: str | None, body: str) -> bool:
    """True when the client's If-None-Match names this body's ETag (answer 304 without the body)."""
    if not if_none_match:
        return False
    tag = etag(body)
    return any(t.strip().removeprefix("W/") == tag for t in if_none_match.split(","))

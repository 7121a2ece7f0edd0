"""The status page as a user meets it: copy_request's real handler behind a local HTTP server (the Function URL
event of each request, imagesync.serve), on the emulator and SQLite. Credentials (HTTP Basic with the API token as
the password, bearer, HMAC, none), escaping of hostile names, the Content-Security-Policy, filters, pagination,
the ETag's 304; and the page in a real browser (Debian's headless chromium), asserted on its rendered DOM, with a
screenshot kept as a test artifact.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from imagesync.domain.models import CopyRequest, Origin
from imagesync.platform import auth
from imagesync.serve import FunctionUrlServer

TOKEN = "page-token-not-real"
SECRET = "page-hmac-not-real"
HOSTILE = '<script>alert("x")</script><img src=x>'
CHROMIUM = "/usr/bin/chromium"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def site(services: Any, emulator: Any) -> Iterator[tuple[Any, str]]:
    """Three replications (one with a hostile copy name, one that failed, one in flight) behind the real handler."""
    services.settings = services.settings.model_copy(
        update={"api_auth": "required", "api_token": SecretStr(TOKEN), "api_hmac_secret": SecretStr(SECRET)}
    )
    emulator.admin.set_copy_duration(1800, 1800)
    start = services.request_copies()

    def ask(images: list[str], regions: list[str], name: str | None = None) -> str:
        request = CopyRequest(
            source_region="ap-guangzhou",
            image_ids=images,
            destination_regions=regions,
            name=name,
            origin=Origin.HTTP,
            requested_by="203.0.113.7",
        )
        return start(request).replication.id

    ask(["img-5ddkx3gh"], ["ap-shanghai"], name=HOSTILE)
    emulator.admin.script_fault("SyncImages", 1, code="InvalidParameterValue.TooLarge", kind="error")
    ask(["img-8c2rq9tw"], ["ap-beijing"])
    sweep = services.sweep()
    sweep()
    emulator.admin.advance(900)
    sweep()  # the first copy at about half way: a SyncPercent and an ETA
    server = FunctionUrlServer().start()
    try:
        yield services, server.url
    finally:
        server.close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers={"Accept": BROWSER, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _basic(password: str, user: str = "ops") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class _Rows(HTMLParser):
    """The replica rows of a page: (data-state, text of each cell), and every <script> element seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.scripts = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "tr" and "replica" in (a.get("class") or ""):
            self.rows.append((a.get("data-state") or "", []))
        if tag == "td" and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _rows(html: str) -> _Rows:
    parser = _Rows()
    parser.feed(html)
    return parser


def test_no_page_without_credentials_and_the_browser_gets_a_basic_prompt(site: tuple[Any, str]) -> None:
    _, url = site
    status, headers, _ = _get(url)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert _get(url, _basic("wrong"))[0] == 401
    assert _get(url, {"Authorization": "Basic !!notbase64"})[0] == 401
    status, headers, html = _get(url, _basic(TOKEN))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert TOKEN not in html and SECRET not in html  # no secret on the page
    assert _get(url, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    ts = str(int(time.time()))
    signed = {auth.SIGNATURE_HEADER: auth.sign(SECRET, ts, "GET", "/", b""), auth.TIMESTAMP_HEADER: ts}
    assert _get(url, signed)[0] == 200


def test_the_page_lists_replicas_with_states_progress_and_escaped_names(site: tuple[Any, str]) -> None:
    svc, url = site
    status, headers, html = _get(url, _basic(TOKEN))
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'none'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)  # the one style block, allowed by its hash
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp
    page = _rows(html)
    assert page.scripts == 0  # the hostile name did not become an element
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x&gt;" in html
    states = sorted(state for state, _ in page.rows)
    assert states == ["COPYING", "FAILED"], page.rows
    copying = next(cells for state, cells in page.rows if state == "COPYING")
    assert HOSTILE in copying[0]  # shown as text
    assert re.fullmatch(r"\d{1,2}%", copying[3].split()[-1]) and copying[4].startswith("ETA ")
    failed = next(cells for state, cells in page.rows if state == "FAILED")
    assert "InvalidParameterValue.TooLarge" in failed[-1] or failed[-1].startswith("Image.")
    assert '<meta http-equiv="refresh" content="30">' in html  # a copy in flight: the page reloads
    assert "203.0.113.7" in html  # who asked, from where


def test_filters_pagination_and_the_replication_page(site: tuple[Any, str]) -> None:
    svc, url = site
    _, _, html = _get(url + "?state=FAILED&image_id=&region=", _basic(TOKEN))
    assert [s for s, _ in _rows(html).rows] == ["FAILED"]
    _, _, html = _get(url + "?region=ap-shanghai", _basic(TOKEN))
    assert [s for s, _ in _rows(html).rows] == ["COPYING"]
    status, _, html = _get(url + "?state=BOGUS", _basic(TOKEN))
    assert status == 400 and 'id="error"' in html and not _rows(html).rows
    _, _, first = _get(url + "?limit=1", _basic(TOKEN))
    next_link = re.search(r'id="next" href="([^"]+)"', first)
    assert next_link, "a second page is linked"
    _, _, second = _get(url.rstrip("/") + next_link.group(1).replace("&amp;", "&"), _basic(TOKEN))
    assert len(_rows(first).rows) == len(_rows(second).rows) == 1
    assert _rows(first).rows[0] != _rows(second).rows[0]
    assert 'id="next"' not in second
    replication_id = re.search(r'<section class="replication" id="(rep-[^"]+)"', first).group(1)  # type: ignore[union-attr]
    status, headers, one = _get(f"{url}replications/{replication_id}", _basic(TOKEN))
    assert status == 200 and headers["Content-Type"].startswith("text/html") and replication_id in one
    assert "hook" in one  # each hook's outcome ("none" before any ran)
    status, headers, _ = _get(f"{url}replications/{replication_id}", {**_basic(TOKEN), "Accept": "application/json"})
    assert headers["Content-Type"] == "application/json"


def test_an_unchanged_page_answers_304_to_its_etag(site: tuple[Any, str]) -> None:
    svc, url = site
    _, headers, _ = _get(url, _basic(TOKEN))
    tag = headers["ETag"]
    status, _, body = _get(url, {**_basic(TOKEN), "If-None-Match": tag})
    assert status == 304 and body == ""
    svc.sweep()()  # nothing changed in emulated time: same page
    assert _get(url, {**_basic(TOKEN), "If-None-Match": tag})[0] == 304


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_page_in_a_real_browser(site: tuple[Any, str], tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        subprocess.run(["make", "-C", str(Path(__file__).resolve().parents[2]), "chromium"], check=False)
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is needed in CI (make chromium)")
        pytest.skip("chromium not installed (make chromium)")
    _, url = site
    # the browser logs in as a user would after the prompt: user:token@ in the URL becomes Basic credentials
    authed = url.replace("http://", f"http://ops:{TOKEN}@")
    dom = _chromium("--dump-dom", authed, profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _rows(dom.stdout)
    assert sorted(s for s, _ in page.rows) == ["COPYING", "FAILED"], dom.stdout[:2000]
    assert page.scripts == 0
    copying = next(cells for state, cells in page.rows if state == "COPYING")
    assert HOSTILE in copying[0]  # the rendered DOM holds the name as text, not as elements
    assert "<progress" in dom.stdout and "ETA " in copying[4]
    shot = tmp_path / "status-page.png"
    result = _chromium(
        f"--screenshot={shot}", "--window-size=1100,700", "--hide-scrollbars", authed, profile=tmp_path / "profile2"
    )
    assert result.returncode == 0 and shot.stat().st_size > 5000, result.stderr[-2000:]
    phone = tmp_path / "status-page-phone.png"  # readable on a phone: the same page at 390 px
    result = _chromium(
        f"--screenshot={phone}", "--window-size=390,844", "--hide-scrollbars", authed, profile=tmp_path / "profile3"
    )
    assert result.returncode == 0 and phone.stat().st_size > 5000, result.stderr[-2000:]
    print(f"status page screenshots: {shot} {phone}")
    if os.environ.get("IMAGESYNC_SCREENSHOT_TO"):  # how docs/status-page.png is made
        shutil.copy(shot, os.environ["IMAGESYNC_SCREENSHOT_TO"])

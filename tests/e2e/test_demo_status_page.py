"""`make demo` (imagesync-dev demo) ends by printing where to open the status page of the run it made; that
command, run as printed (with `--port 0`), serves the page of the demo's replications."""

from __future__ import annotations

import base64
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

from tests.integration.test_status_page import BROWSER, _rows


def test_demo_prints_a_command_that_serves_its_status_page(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    demo = subprocess.run(
        [sys.executable, "-m", "imagesync_dev", "demo", "--keep", str(keep)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    found = re.search(r"status page of this run: (IMAGESYNC_API_TOKEN=(\S+) imagesync serve .+)", demo.stdout)
    assert found, demo.stdout[-2000:]
    token = found.group(2)
    words = shlex.split(found.group(1))
    env = {**os.environ, **dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))}
    args = [w for w in words if not re.fullmatch(r"[A-Z_]+=.*", w)][1:]  # after "imagesync"
    server = subprocess.Popen(
        [sys.executable, "-m", "imagesync.cli", *args, "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        first = server.stderr.readline()  # type: ignore[union-attr]
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", first)
        assert url, first
        auth = base64.b64encode(f"ops:{token}".encode()).decode()
        request = urllib.request.Request(url.group(1), headers={"Accept": BROWSER, "Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            html = response.read().decode()
        states = Counter(state for state, _ in _rows(html).rows)
        with sqlite3.connect(keep / "state.db") as db:  # every replica the demo recorded, in its state
            recorded = Counter(state for (state,) in db.execute("SELECT state FROM replicas"))
        assert states == recorded and states["SUCCEEDED"] >= 5, (states, recorded)
        if states["FAILED"]:  # the demo's retried copy: the failed attempt names its retry, which is try 2
            assert "retried by rpl-" in html and "try 2" in html
    finally:
        server.terminate()
        server.wait(timeout=30)

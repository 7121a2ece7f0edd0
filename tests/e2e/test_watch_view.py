"""The live terminal view as a user meets it: `imagesync copy --wait` and `imagesync status --watch` run as
subprocesses against the emulator, once on a pseudo-terminal (rich redraws a table in place: cursor movements,
progress bars) and once into a pipe (plain lines, one per change, no escape sequence)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import test_cli_and_demo
from tests.e2e.test_cli_and_demo import IMAGESYNC, run


@pytest.fixture
def cli_env(emulator: Any, tmp_path: Path) -> dict[str, str]:
    """The CLI on the emulator with its own state (as tests/e2e/test_cli_and_demo.py runs it)."""
    return test_cli_and_demo.cli_env.__wrapped__(emulator, tmp_path)  # type: ignore[attr-defined]

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: a plain change line: time, replica, image, "->", region, state, then percent / timing / error
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ rpl-\w+ img-\w+ -> [\w-]+ (PENDING|WAITING_SOURCE|COPYING|"
                  r"SUCCEEDED|FAILED|TIMED_OUT)\b")


def on_a_terminal(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120.0) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pty (a terminal, 120 columns); returns (exit status, output)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(IMAGESYNC + args, env={**os.environ, **env, "COLUMNS": "140", "LINES": "40",
                                                   "TERM": "xterm-256color"},
                            cwd=cwd, stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    chunks: list[bytes] = []
    end = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                data = b""
            if not data and proc.poll() is not None:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
        assert time.monotonic() < end, "the command did not end in time"
    os.close(main)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_copy_wait_redraws_in_place_on_a_terminal(cli_env: dict[str, str], tmp_path: Path) -> None:
    code, out = on_a_terminal(["copy", "img-8c2rq9tw", "--from", "ap-guangzhou", "--to", "ap-beijing",
                               "--to", "ap-shanghai", "--wait"], cli_env, tmp_path)
    assert code == 0, out
    assert re.search(r"\x1b\[\d*A", out), "no cursor-up: the table was not redrawn in place"
    assert "━" in out  # rich's progress bars
    assert "SUCCEEDED" in out and "took " in out


def test_copy_wait_prints_plain_lines_into_a_pipe(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run(["copy", "img-8c2rq9tw", "--from", "ap-guangzhou", "--to", "ap-beijing", "--to", "ap-shanghai",
                  "--wait"], cli_env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not ESCAPE.search(result.stdout)
    changes = [line for line in result.stdout.splitlines() if LINE.match(line)]
    for region in ("ap-beijing", "ap-shanghai"):
        mine = [line for line in changes if f"-> {region} " in line]
        assert mine and " SUCCEEDED " in mine[-1] + " ", changes
        assert len(mine) == len(set(mine))  # one line per change, no repeats of an unchanged look


def _watch_while_sweeping(cli_env: dict[str, str], tmp_path: Path, emulator: Any, terminal: bool) -> tuple[int, str]:
    copied = run(["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-shanghai", "--json"], cli_env,
                 tmp_path)
    assert copied.returncode == 0, copied.stderr
    replication = json.loads(copied.stdout)["id"]
    # the sweep advances the copy beside the watcher, as the timer does in the cloud
    sweeper = subprocess.Popen(
        [sys.executable, "-c", (
            "import subprocess,sys,time\n"
            "for _ in range(600):\n"
            f"    subprocess.run({IMAGESYNC + ['sweep', '--json']!r}, capture_output=True)\n"
            "    time.sleep(0.2)\n"
        )],
        env={**os.environ, **cli_env}, cwd=tmp_path,
    )
    try:
        args = ["status", "--watch", "--interval", "0.2"]
        if terminal:
            return on_a_terminal(args, cli_env, tmp_path)
        result = run(args + [replication], cli_env, tmp_path)
        return result.returncode, result.stdout
    finally:
        sweeper.kill()
        sweeper.wait()


def test_status_watch_on_a_terminal_and_into_a_pipe(cli_env: dict[str, str], tmp_path: Path, emulator: Any) -> None:
    code, out = _watch_while_sweeping(cli_env, tmp_path, emulator, terminal=True)
    assert code == 0, out
    assert re.search(r"\x1b\[\d*A", out) and "━" in out and "SUCCEEDED" in out
    code, out = _watch_while_sweeping(cli_env, tmp_path, emulator, terminal=False)
    assert code == 0, out
    assert not ESCAPE.search(out)
    lines = [line for line in out.splitlines() if LINE.match(line)]
    assert lines and " SUCCEEDED" in lines[-1], out

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
from collections.abc import Callable
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
LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ rpl-\w+ img-\w+ -> [\w-]+ (PENDING|WAITING_SOURCE|COPYING|"
    r"SUCCEEDED|FAILED|TIMED_OUT)\b"
)


def drive(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    terminal: bool,
    tick: Callable[[str], None] | None = None,
    timeout: float = 120.0,
) -> tuple[int, str]:
    """Run the CLI with stdout on a pty (a terminal, 140 columns) or on a pipe; `tick(output so far)` is called
    between reads. Returns (exit status, stdout)."""
    if terminal:
        main, child = pty.openpty()
    else:
        main, child = os.pipe()
    proc = subprocess.Popen(
        IMAGESYNC + args,
        env={**os.environ, **env, "COLUMNS": "140", "LINES": "40", "TERM": "xterm-256color"},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child if terminal else subprocess.DEVNULL,
        close_fds=True,
    )
    os.close(child)
    chunks: list[bytes] = []
    end = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([main], [], [], 0.2)
        data = b""
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                data = b""
            chunks.append(data)
        if not data and proc.poll() is not None:
            break
        if tick is not None:
            tick(b"".join(chunks).decode("utf-8", "replace"))
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("the command did not end in time")
    os.close(main)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    return drive(args, env, cwd, terminal=True)


def test_copy_wait_redraws_in_place_on_a_terminal(cli_env: dict[str, str], tmp_path: Path) -> None:
    code, out = on_a_terminal(
        ["copy", "img-8c2rq9tw", "--from", "ap-guangzhou", "--to", "ap-beijing", "--to", "ap-shanghai", "--wait"],
        cli_env,
        tmp_path,
    )
    assert code == 0, out
    assert re.search(r"\x1b\[\d*A", out), "no cursor-up: the table was not redrawn in place"
    assert "━" in out  # rich's progress bars
    assert "SUCCEEDED" in out and "took " in out


def test_copy_wait_prints_plain_lines_into_a_pipe(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run(
        ["copy", "img-8c2rq9tw", "--from", "ap-guangzhou", "--to", "ap-beijing", "--to", "ap-shanghai", "--wait"],
        cli_env,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not ESCAPE.search(result.stdout)
    changes = [line for line in result.stdout.splitlines() if LINE.match(line)]
    for region in ("ap-beijing", "ap-shanghai"):
        mine = [line for line in changes if f"-> {region} " in line]
        assert mine and " SUCCEEDED " in mine[-1] + " ", changes
        assert len(mine) == len(set(mine))  # one line per change, no repeats of an unchanged look


def _watch_while_sweeping(cli_env: dict[str, str], tmp_path: Path, emulator: Any, terminal: bool) -> tuple[int, str]:
    """`status --watch` beside a sweeper process (as the timer runs in the cloud). Emulated time stands still
    until the watcher shows the copy in flight, then moves on: the copy cannot end before the watch has begun,
    however slow the machine is."""
    emulator.admin.set_time_scale(0)
    copied = run(["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-shanghai", "--json"], cli_env, tmp_path)
    assert copied.returncode == 0, copied.stderr
    replication = json.loads(copied.stdout)["id"]
    sweeper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import subprocess,time\n"
                "while True:\n"
                f"    subprocess.run({IMAGESYNC + ['sweep', '--json']!r}, capture_output=True)\n"
                "    time.sleep(0.2)\n"
            ),
        ],
        env={**os.environ, **cli_env},
        cwd=tmp_path,
    )

    def tick(shown: str) -> None:
        if "COPYING" in shown:  # the watcher has shown the copy in flight: let the copy run
            emulator.admin.advance(120)

    try:
        args = ["status", "--watch", "--interval", "0.2"] + ([] if terminal else [replication])
        return drive(args, cli_env, tmp_path, terminal=terminal, tick=tick)
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

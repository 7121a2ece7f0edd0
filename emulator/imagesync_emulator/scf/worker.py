"""One function instance: a ``python -I -S -B bootstrap.py`` process kept warm between invocations.

``Worker.invoke`` sends one request and waits for the answer at most the function's timeout (real seconds): past
it the process is killed and the invocation is a timeout. A process that dies mid-invocation (killed by the admin
handle, or crashed) makes the invocation an error; the worker is then dead and never reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
_EOF = b"\0eof"  # a sentinel (identity-compared): the bootstrap never writes a line without JSON


@dataclass
class Outcome:
    """What one invocation ended with. ``kind``: "ok", "error" (the function raised), "timeout", "killed"."""

    kind: str
    result: object = None
    error: dict | None = None


class Worker:
    def __init__(self, code_dir: Path, layer_dir: Path, handler: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", str(BOOTSTRAP), str(code_dir), str(layer_dir), handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=code_dir,
            env=env,
            start_new_session=True,
        )
        self.invocations = 0
        self.killed_by_admin = False
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def invoke(
        self, event: object, context: dict, log_path: Path, timeout_s: float, env: dict[str, str] | None = None
    ) -> Outcome:
        self.invocations += 1
        request = json.dumps({"event": event, "context": context, "log_path": str(log_path), "env": env or {}})
        request += "\n"
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(request.encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died()
        line = self._read_line(time.monotonic() + timeout_s)
        if line is _EOF:  # the process closed its end: it is dying (maybe not reaped yet), never a timeout
            return self._died()
        if line is None:
            self.kill()
            return Outcome(
                "timeout",
                error={
                    "errorType": "Timeout",
                    "errorMessage": f"Invocation timed out after {timeout_s:g} s; the instance was killed.",
                },
            )
        answer = json.loads(line)
        if answer.get("ok"):
            return Outcome("ok", result=answer.get("result"))
        return Outcome("error", error=answer.get("error"))

    def _died(self) -> Outcome:
        self.kill()
        how = "killed by the emulator's admin handle" if self.killed_by_admin else "exited"
        return Outcome(
            "killed",
            error={
                "errorType": "InstanceKilled",
                "errorMessage": f"The function instance {how} during the invocation.",
            },
        )

    def _read_line(self, deadline: float) -> bytes | None:
        """The next line; None when the deadline passed first; _EOF when the process closed the channel."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return _EOF
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def signal_kill(self) -> None:
        """Kill the process from another thread (the admin handle); the invoking thread sees it die."""
        self.killed_by_admin = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

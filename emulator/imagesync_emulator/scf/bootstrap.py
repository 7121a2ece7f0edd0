"""The emulated SCF Python runtime inside one worker process: standard library only, imports nothing else.

Started as ``python -I -S -B bootstrap.py CODE_DIR LAYER_DIR HANDLER`` with cwd CODE_DIR. sys.path becomes exactly
CODE_DIR, LAYER_DIR and the standard library (SCF's PYTHONPATH=/var/user:/opt). The handler module is imported on
the first invocation (SCF's cold start initialises the function then), and stays imported while the worker is warm.

Protocol with the emulator, one JSON object per line: the worker keeps its original stdin/stdout as the control
channel and points file descriptors 0, 1 and 2 elsewhere, so nothing the function prints can corrupt it.
  request:  {"event": ..., "context": {...}, "log_path": "<file for this invocation's stdout and stderr>",
            "env": {variables set for this invocation only, e.g. TRIGGER_SRC}}
  answer:   {"ok": true, "result": <JSON value>} or {"ok": false, "error": {"errorType", "errorMessage",
            "stackTrace"}}
Each invocation's stdout and stderr (the file descriptors, so loggers created at import time are captured too) go
to its own log file, flushed before the answer is written.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import traceback


def _isolate_path(code_dir: str, layer_dir: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    stdlib = [p for p in sys.path if p and "site-packages" not in p and os.path.abspath(p) != here]
    sys.path[:] = [code_dir, layer_dir, *stdlib]


def _redirect(fd: int, path: str, flags: int) -> None:
    target = os.open(path, flags, 0o600)
    try:
        os.dup2(target, fd)
    finally:
        os.close(target)


def _error(exc: BaseException) -> dict:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


USAGE = "usage: python -I -S -B bootstrap.py CODE_DIR LAYER_DIR HANDLER  (started by the emulated SCF, not by hand)"


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] in ("-h", "--help"):
        print(USAGE)
        return 0 if sys.argv[1:] in (["-h"], ["--help"]) else 2
    code_dir, layer_dir, handler = sys.argv[1], sys.argv[2], sys.argv[3]
    module_name, _, func_name = handler.rpartition(".")
    _isolate_path(code_dir, layer_dir)
    ctl_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    ctl_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    _redirect(0, os.devnull, os.O_RDONLY)
    _redirect(1, os.devnull, os.O_WRONLY)
    _redirect(2, os.devnull, os.O_WRONLY)
    func = None
    per_call: list[str] = []
    for line in ctl_in:
        request = json.loads(line)
        for name in per_call:  # variables of one invocation only (TRIGGER_SRC)
            os.environ.pop(name, None)
        per_call = list(request.get("env", {}))
        os.environ.update(request.get("env", {}))
        _redirect(1, request["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        _redirect(2, request["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            if func is None:
                func = getattr(importlib.import_module(module_name), func_name)
            result = func(request["event"], request["context"])
            answer = json.dumps({"ok": True, "result": result})
        except BaseException as exc:  # the function's failure is the invocation's error, never the worker's
            traceback.print_exc()
            answer = json.dumps({"ok": False, "error": _error(exc)}, default=str)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                func = None  # the runtime would restart the instance
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a function may have closed or replaced its streams
                stream.flush()
        ctl_out.write(answer + "\n")
        ctl_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

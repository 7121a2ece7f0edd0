"""Run one SCF function from an unpacked package, the way SCF's Python runtime does: nothing but the standard library,
the code directory (/var/user) and the layer directory (/opt) on sys.path.

Started by tests/deploy/test_package.py as ``python -I -S -B scf_runner.py SPEC``: -I, no PYTHON* variables and no
user site; -S, no site-packages; -B, no bytecode written (/var/user and /opt are read-only on SCF). SPEC is JSON:
{"code": dir, "layer": dir, "function": name, "events": [{"event": {...}, "context": {...}}], "probe_mysql": bool}.
Prints one JSON line: each event's return value (or its exception), and which modules were loaded from where.
Standard library only: it must not itself need anything the package lacks.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback


def main() -> int:
    spec = json.loads(sys.argv[1])
    # sys.path[0] is this script's folder (the repo's tests/): drop it, keep the standard library, then add exactly
    # what SCF puts on PYTHONPATH (/var/user:/opt).
    stdlib = [p for p in sys.path[1:] if "site-packages" not in p]
    sys.path[:] = [spec["code"], spec["layer"], *stdlib]
    out: dict = {"function": spec["function"], "results": [], "sys_path": list(sys.path)}
    try:
        module = importlib.import_module(spec["function"])
        for item in spec["events"]:
            try:
                out["results"].append({"ok": module.main_handler(item["event"], item["context"])})
            except Exception as exc:  # reported, not raised: the test asserts on it
                out["results"].append({"error": f"{type(exc).__name__}: {exc}"})
        if spec.get("probe_mysql"):
            # The database driver is chosen by URL, so no import names it: make SQLAlchemy load it (no connection).
            import sqlalchemy

            sqlalchemy.create_engine("mysql+pymysql://probe:probe@127.0.0.1:9/probe")
    except Exception:
        out["import_error"] = traceback.format_exc()
    out["modules"] = {
        name: getattr(mod, "__file__", None) for name, mod in sorted(sys.modules.items()) if mod is not None
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

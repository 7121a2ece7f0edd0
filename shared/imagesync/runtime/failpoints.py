"""Failpoints: crash the process at named points, with a given probability (chaos tests only).

The way FoundationDB's and TiKV's fail points inject crashes: the code says `failpoint("after_sync_images")` where a
crash is most damaging (a side effect done, its record not written yet), and a test run enables some of them:

    IMAGESYNC_FAILPOINTS="after_sync_images=0.05,after_outbox_publish=0.01,inside_hook=0.01"
    IMAGESYNC_FAILPOINTS_SEED=7          # optional; the random stream is seeded (default 0)

When a point fires the process ends at once with `os._exit(137)` (what SIGKILL looks like to a parent): no
`finally`, no atexit, no flushed buffers, no rolled-back transaction -- exactly a crash.

Contract:

* Disabled (the variable unset or empty, always in production) `failpoint(name)` costs one dict lookup.
* The environment is read once, on first use; `configure()` re-reads it (tests).
* A malformed specification raises ValueError on first use: a chaos run that silently injects nothing would
  prove nothing.

Points in the code (each placed after a side effect and before the write that records it):

* ``after_sync_images``  imagesync.app.start_copies: SyncImages answered, the replicas not yet COPYING.
* ``after_outbox_publish``  imagesync.app.sweep.Sweep.publish_outbox: the queue has the message, the outbox row
  is not marked sent.
* ``inside_hook``  imagesync.app.complete: a hook did its job, its record is not written.
"""

from __future__ import annotations

import os
import random

ENV = "IMAGESYNC_FAILPOINTS"
SEED_ENV = "IMAGESYNC_FAILPOINTS_SEED"
#: the exit status of a fired point (128 + SIGKILL), so a supervisor can tell a failpoint from a bug
EXIT_CODE = 137
POINTS = frozenset({"after_sync_images", "after_outbox_publish", "inside_hook"})

_rates: dict[str, float] | None = None
_rng = random.Random(0)


def parse(spec: str) -> dict[str, float]:
    """ "a=0.05,b=1" -> {"a": 0.05, "b": 1.0}. Raises ValueError on an unknown point or a rate outside [0, 1]."""
    rates: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in POINTS:
            raise ValueError(f"{ENV}: {part!r} is not <point>=<probability> with a point among {sorted(POINTS)}")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"{ENV}: {part!r}: the probability is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{ENV}: {part!r}: the probability is not within [0, 1]")
        rates[name] = rate
    return rates


def configure(spec: str | None = None, seed: int | None = None) -> dict[str, float]:
    """(Re)read the points: from `spec`/`seed`, else from the environment. Returns the enabled rates."""
    global _rates, _rng
    if spec is None:
        spec = os.environ.get(ENV, "")
    if seed is None:
        seed = int(os.environ.get(SEED_ENV, "0") or 0)
    _rates = {k: v for k, v in parse(spec).items() if v > 0}
    _rng = random.Random(seed)
    return dict(_rates)


def failpoint(name: str) -> None:
    """End the process (exit 137) with the probability configured for `name`; a no-op when it is not enabled."""
    rates = _rates if _rates is not None else configure()
    rate = rates.get(name)
    if rate is None:
        return
    if _rng.random() < rate:
        # stderr is unbuffered: the one trace a chaos runner can attribute the crash by
        os.write(2, f"imagesync failpoint {name} fired: exit {EXIT_CODE}\n".encode())
        os._exit(EXIT_CODE)

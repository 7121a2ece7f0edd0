"""A function's cold start without the cyclic garbage collector, and what it built frozen out of its way.

A cold start imports and builds what its container keeps until it dies (modules, classes, pydantic's validators,
SQLAlchemy's tables and compiled statements: about 100,000 objects) and makes almost no cyclic garbage (a few
hundred objects, measured on status_sweep's first answer). With the collector on, those allocations trip a
hundred or so collections, each traversing what was built so far for nothing: about a tenth of the first answer's
CPU time (docs/benchmarks.md, "Cold import and the deploy package"). So a function's entry (functions/<name>/
index.py) calls pause() before its first import, and its handler's first invocation calls resume() once it has
built what it keeps (status_sweep: before the sweep runs) and at the latest before it returns (first_answer()):
gc.freeze() moves everything built so far out of the collector's way for the container's life (the few hundred
garbage objects of the cold start included, which are never freed), and the collector runs again. The freeze also
serves every later invocation: what the container holds lives as long as it, yet every full collection traversed it
again (a sweep of 10,000 copies allocates enough to run one or two).

This module imports nothing but the standard library's gc and contextlib: the entry imports it before anything else.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False  # pause() turned the collector off, so resume() turns it back on
_resumed = False


def pause() -> None:
    """The collector off until resume(), unless it is already off (then it is not ours to turn back on)."""
    global _paused
    if gc.isenabled() and not _resumed:
        gc.disable()
        _paused = True


def resume() -> None:
    """Once per process (an SCF container), after the first invocation's work: freeze what the cold start built,
    and turn the collector back on if pause() turned it off. Later calls do nothing."""
    global _paused, _resumed
    if _resumed:
        return
    _resumed = True
    gc.freeze()
    if _paused:
        _paused = False
        gc.enable()


@contextmanager
def first_answer() -> Iterator[None]:
    """Around a handler's work: resume() when it ends at the latest (once per process; raised or not)."""
    try:
        yield
    finally:
        resume()

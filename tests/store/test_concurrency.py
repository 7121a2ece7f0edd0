"""Overlapping sweepers (threads and processes) over 2,000 replicas, on every backend.

Invariants checked: no replica is held by two owners at once within a lease (the sweepers' lease is exclusive, so
held intervals never overlap, and not one compare-and-set is lost, which would betray a shared lease); no
transition is lost (every replica ends
SUCCEEDED at version 2, every recorded win is distinct); every completion message is in the outbox exactly once
and published exactly once by the one publisher.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter, defaultdict
from itertools import pairwise

import pytest
from sqlalchemy import case, func, select
from store_helpers import SweepLog, seed, sweep_threads

from imagesync.adapters.sql import SqlStateStore, make_engine
from imagesync.adapters.sql.schema import outbox

N = 2000
PROCESSES = 3
THREADS_PER_PROCESS = 2
MAIN_THREADS = 2  # plus these in the test process: 8 sweepers in all


def _process_main(url: str, publisher: bool, out: multiprocessing.Queue) -> None:
    try:
        out.put(sweep_threads(url, THREADS_PER_PROCESS, publisher))
    except BaseException as exc:  # report, do not hang the parent
        out.put(exc)


def _check(store: SqlStateStore, logs: list[SweepLog], ids: list[str]) -> None:
    claims = [c for lg in logs for c in lg.claims]
    won = [w for lg in logs for w in lg.won]
    lost = [x for lg in logs for x in lg.lost]
    published = [m for lg in logs for m in lg.published]
    assert not [e for lg in logs for e in lg.errors]

    # exclusive leases: held intervals of one replica never overlap, and no CAS was ever lost
    by_replica: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for rid, owner, start, end in claims:
        by_replica[rid].append((start, end, owner))
    for rid, spans in by_replica.items():
        spans.sort()
        for (_s1, e1, o1), (s2, _e2, o2) in pairwise(spans):
            assert e1 <= s2 or o1 == o2, f"{rid} held by {o1} and {o2} at once"
    assert lost == [], f"{len(lost)} compare-and-set writes lost: a lease was shared"

    # no transition lost, none done twice
    assert len(won) == len(set(won)) == 2 * N
    assert Counter(v for _, v in won) == {0: N, 1: N}
    assert store.count_by_state()["SUCCEEDED"] == N
    for rid in ids[:: N // 50]:
        r = store.get_replica(rid)
        assert r is not None and r.version == 2

    # the outbox: one message per replica, each published once
    with store.engine.connect() as conn:
        rows, replicas_with_msg, unsent = conn.execute(
            select(
                func.count(),
                func.count(outbox.c.replica_id.distinct()),
                func.sum(case((outbox.c.sent_at.is_(None), 1), else_=0)),
            )
        ).one()
    assert rows == replicas_with_msg == N and int(unsent) == 0
    assert len(published) == len(set(published)) == N


@pytest.mark.slow
def test_overlapping_sweepers_threads_and_processes(store_url: str, backend: str) -> None:
    store = SqlStateStore(make_engine(store_url))
    ids = seed(store, N)
    assert len(ids) == N

    started = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(store_url, i == 0, out), daemon=True) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    logs = [sweep_threads(store_url, MAIN_THREADS, False)]
    for _ in procs:
        got = out.get(timeout=120)
        if isinstance(got, BaseException):
            raise got
        logs.append(got)
    for p in procs:
        p.join(timeout=10)
    elapsed = time.monotonic() - started
    print(
        f"{backend}: {N} replicas, {PROCESSES}x{THREADS_PER_PROCESS}+{MAIN_THREADS} sweepers, "
        f"{elapsed:.1f}s, claims per sweeper {[len(lg.claims) for lg in logs]}"
    )
    _check(store, logs, ids)

#!/usr/bin/env python3
"""The sweep's progress write alone: ReplicaStore.save_progress of N due copies, wall and client CPU seconds.

N copies COPYING and due are stored (replications of 10 images x 5 regions), read as a sweep reads them
(LeaseStore.due_in_flight) and written back as a sweep writes their progress: a new sync_percent, looks and
first_look_at, the same updated_at ("now") and a next check of its own per copy (distinct timestamps, as the ETA
gives them), each by compare-and-set on the version read. Every --repeat round reads the copies again (their
versions moved on) and writes them again; the table gives the median and best of the rounds and checks that every
row was written. The server's own work is in the wall time only; the CPU is this process's.

    .venv/bin/python scripts/bench_progress_write.py [--copies 10000] [--repeat 7] [--database-url URL]

--database-url mysql+pymysql://root@127.0.0.1:3306/test (or a postgresql+psycopg:// one): on that server, in a
scratch database (created at the schema's head, then dropped); SQLite (a temporary file) otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from imagesync.adapters.sql import SqlStateStore, make_engine, upgrade
from imagesync.domain.models import Replication, utcnow
from imagesync_dev.bench import MAINLAND, SOURCE_REGION, copying_replica, scratch_database, table


def seed(store: SqlStateStore, copies: int) -> None:
    now = utcnow()
    per_replication = 10 * len(MAINLAND)
    for start in range(0, copies, per_replication):
        images = [f"img-p{i:07d}" for i in range(start // len(MAINLAND), (start + per_replication) // len(MAINLAND))]
        replication = Replication(
            source_region=SOURCE_REGION, image_ids=images, destination_regions=MAINLAND, created_at=now
        )
        rows = [
            copying_replica(replication, image, region, f"img-d{start:07d}", now)
            for image in images
            for region in MAINLAND
        ]
        store.create_replication(replication.model_copy(update={"replicas": rows[: copies - start]}))


def rounds(url: str, copies: int, repeat: int) -> list[tuple[float, float]]:
    store = SqlStateStore(make_engine(url))
    seed(store, copies)
    times = []
    for round_ in range(repeat):
        now = utcnow()
        due = store.due_in_flight(now, copies)
        assert len(due) == copies, len(due)
        changes = [
            (
                view._replace(
                    sync_percent=(round_ * 7 + i) % 100,
                    updated_at=now,
                    # due again next round, each copy at its own time
                    next_check_at=now - timedelta(microseconds=i + 1),
                    looks=view.looks + 1,
                    first_look_at=view.first_look_at or now,
                ),
                view.version,
            )
            for i, view in enumerate(due)
        ]
        start, cpu = time.perf_counter(), time.process_time()
        written = store.save_progress(changes)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
        assert written in (copies, -1), written
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10_000, help="due copies written per round")
    parser.add_argument("--repeat", type=int, default=7, help="rounds (each reads and writes every copy)")
    parser.add_argument("--database-url", help="a MariaDB/MySQL or PostgreSQL server (any database URL on it)")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.database_url:
            url = stack.enter_context(scratch_database(args.database_url))
        else:
            url = f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'state.db'}"
        upgrade(url)
        times = rounds(url, args.copies, args.repeat)
    walls, cpus = [w for w, _ in times], [c for _, c in times]
    backend = make_url(args.database_url).get_backend_name() if args.database_url else "sqlite"
    print(
        f"save_progress of {args.copies:,} due copies on {backend}, {args.repeat} rounds (seconds)\n\n"
        + table(
            ["wall median", "wall best", "CPU median", "CPU best"],
            [[statistics.median(walls), min(walls), statistics.median(cpus), min(cpus)]],
        )
    )


if __name__ == "__main__":
    main()

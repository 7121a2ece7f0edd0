"""Shared by the scripts/bench_*.py benchmarks (`from imagesync_dev.bench import ...`): the emulator and imagesync's
real services on it, seeding copies in flight, call counting and table printing. Not a benchmark itself.

Every benchmark runs the project's real code (handlers, use cases, the SQL store on SQLite, the official SDK) against
the in-process emulator; only seeding (images and replicas that are already copying) goes around the API, because
10,000 real SyncImages at the API's 10/s would take 17 minutes and measure the rate limit, not the sweep.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

#: the checkout (dev/imagesync_dev/bench.py -> the repository root): imagesync-dev is installed editable from it
REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("IMAGESYNC_LOG_LEVEL", "ERROR")  # before imagesync's logger is made: keep tables readable

from imagesync import wiring  # noqa: E402
from imagesync.domain.models import Origin, Replica, Replication  # noqa: E402
from imagesync.domain.states import ReplicaState  # noqa: E402
from imagesync.local import EmulatorClock  # noqa: E402
from imagesync.settings import Settings  # noqa: E402
from imagesync_emulator import Emulator  # noqa: E402

#: where copies from ap-guangzhou may go without a cross-border approval (docs/facts.md#F-COPY-3)
MAINLAND = ["ap-shanghai", "ap-nanjing", "ap-beijing", "ap-chengdu", "ap-chongqing"]
SOURCE_REGION = "ap-guangzhou"


@dataclass
class Bench:
    """An emulator, imagesync's services on it (SQLite state table, local queue), installed for the handlers."""

    emulator: Emulator
    services: wiring.Services
    workdir: Path

    @property
    def admin(self) -> Any:
        return self.emulator.admin

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.admin.now(), timezone.utc)

    def describe_calls(self) -> int:
        return len(self.admin.calls(action="DescribeImages"))


@contextmanager
def bench(*, rate_limits: bool, time_scale: float = 0.0, **settings: Any) -> Iterator[Bench]:
    """The emulator (its clock frozen by default: benchmarks move it with admin.advance) and the real services.

    `rate_limits=False` turns the emulator's limits off and the client's own up, to measure our code, not a limiter.
    """
    with (
        tempfile.TemporaryDirectory(prefix="imagesync-bench-") as tmp,
        Emulator(world=None, time_scale=time_scale, seed=0, rate_limits=rate_limits) as emu,
    ):
        os.environ["TENCENTCLOUD_SECRET_ID"] = emu.secret_id
        os.environ["TENCENTCLOUD_SECRET_KEY"] = emu.secret_key
        values: dict[str, Any] = {
            "tencent_endpoint": emu.endpoint,
            "database_url": f"sqlite:///{tmp}/state.db",
            "queue_path": f"{tmp}/queue.db",
            "api_auth": "none",
        }
        if not rate_limits:
            values.update(sync_rate_per_second=1e6, describe_rate_per_second=1e6)
        values.update(settings)
        svc = wiring.build_services(Settings(**values), clock=EmulatorClock(emu.admin.now))
        wiring.use(svc)
        try:
            yield Bench(emu, svc, Path(tmp))
        finally:
            wiring.use(None)


def copying_replica(replication: Replication, image: str, region: str, destination: str, now: datetime) -> Replica:
    """A copy of `image` from ap-guangzhou into `region` of `replication`, COPYING into `destination` since `now`
    and due then (its deadline two hours on): what the benchmarks seed as copies in flight."""
    return Replica(
        replication_id=replication.id,
        source_region=SOURCE_REGION,
        source_image_id=image,
        destination_region=region,
        image_name=image,
        state=ReplicaState.COPYING,
        destination_image_id=destination,
        sync_percent=0,
        created_at=now,
        updated_at=now,
        started_at=now,
        next_check_at=now,
        deadline_at=now + timedelta(hours=2),
    )


def seed_in_flight(b: Bench, per_region: dict[str, int], *, copy_seconds: float = 1800.0) -> list[Replica]:
    """`per_region[r]` copies from ap-guangzhou into r, already COPYING (their SYNCING images seeded in the
    emulator, `copy_seconds` long) and due now; recorded as replications of up to 10 images, as the API takes them.
    """
    now = b.now()
    replicas: list[Replica] = []
    n_images = max(per_region.values())
    sources = [f"img-b{i:07d}" for i in range(n_images)]
    for start in range(0, n_images, 10):
        chunk = sources[start : start + 10]
        replication = Replication(
            source_region=SOURCE_REGION,
            image_ids=chunk,
            destination_regions=sorted(per_region),
            origin=Origin.CLI,
            requested_by="bench",
            created_at=now,
        )
        rows = []
        for region, count in per_region.items():
            for image in chunk[: max(0, count - start)]:
                dest = b.admin.add_image(region, name=image, state="SYNCING", ready_after=copy_seconds)
                rows.append(copying_replica(replication, image, region, dest, now))
        if rows:
            stored = b.services.store.create_replication(
                replication.model_copy(
                    update={"replicas": rows, "image_ids": sorted({r.source_image_id for r in rows})}
                )
            )
            replicas.extend(stored.replicas)
    return replicas


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A fresh database on the MariaDB/MySQL or PostgreSQL server of `server_url` (any database of it), at the
    schema's head; dropped afterwards. For benchmarks that take --database-url."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from imagesync.adapters.sql.engine import dispose_engines
    from imagesync.adapters.sql.migrate import upgrade

    base = make_url(server_url)
    name = f"imagesync_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    postgres = base.get_backend_name() == "postgresql"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' if postgres else f"CREATE DATABASE `{name}` COLLATE utf8mb4_bin"))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(
                text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' if postgres else f"DROP DATABASE `{name}`")
            )
        admin.dispose()


def floor_calls(per_region: dict[str, int]) -> int:
    """The fewest DescribeImages that can look at every copy once: sum over regions of ceil(in flight / 100)."""
    return sum(math.ceil(n / 100) for n in per_region.values() if n)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pastes into docs/benchmarks.md as printed)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)

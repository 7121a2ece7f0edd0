"""The live terminal view of `imagesync status --watch` and `imagesync copy --wait`.

On a terminal, a rich Live table is redrawn in place: per replica its state, a progress bar with SyncPercent, the
ETA of a copy in flight (or how long an ended one took) and its error. When stdout is not a terminal (a pipe, a CI
log) there is no redrawing: one plain line per replica each time its state or SyncPercent changes,

    2026-01-01T10:00:00Z rpl-... img-... -> ap-shanghai COPYING 40% ETA 10:12:00Z

so a log keeps every change and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .domain.models import Replica, Replication
from .domain.states import ReplicaState
from .handlers.api.models import replica_eta


def _clock(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%H:%M:%SZ") if value else ""


def timing(replica: Replica) -> str:
    """ETA of a copy in flight, or how long an ended one took."""
    if replica.state.terminal:
        start = replica.started_at or replica.created_at
        if replica.ended_at is None:
            return ""
        seconds = int((replica.ended_at - start).total_seconds())
        return f"took {seconds // 60}m{seconds % 60:02d}s"
    eta = replica_eta(replica)
    return f"ETA {_clock(eta)}" if eta else ""


def _percent(replica: Replica) -> int:
    return 100 if replica.state is ReplicaState.SUCCEEDED else replica.sync_percent or 0


class Watch:
    """Shows replications as they change; use as a context manager and call `show()` on each look."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self._seen: dict[str, tuple[str, int | None]] = {}
        self._live: Live | None = None

    def __enter__(self) -> Watch:
        if self.live:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)
            self._live = None

    def show(self, replications: Sequence[Replication]) -> None:
        if self._live is not None:
            self._live.update(self.table(replications), refresh=True)
            return
        for replication in replications:
            for replica in replication.replicas:
                key = (replica.state.value, replica.sync_percent)
                if self._seen.get(replica.id) == key:
                    continue
                self._seen[replica.id] = key
                self.console.print(self.line(replica), markup=False, highlight=False, soft_wrap=True)

    @staticmethod
    def line(replica: Replica) -> str:
        """The plain line of one replica's change."""
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [now, replica.id, replica.source_image_id, "->", replica.where, replica.state.value]
        if replica.sync_percent is not None and not replica.state.terminal:
            parts.append(f"{replica.sync_percent}%")
        if timing(replica):
            parts.append(timing(replica))
        if replica.error_code:
            parts.append(f"{replica.error_code}: {replica.error_message or ''}".strip())
        return " ".join(parts)

    @staticmethod
    def table(replications: Sequence[Replication]) -> Group:
        tables = []
        for replication in replications:
            table = Table(title=f"{escape(replication.id)}  {replication.state}", title_justify="left", expand=False)
            for column in ("replica", "image", "region", "state", "progress", "", "eta", "error"):
                table.add_column(column)
            for r in replication.replicas:
                state = Text(
                    r.state.value,
                    style={"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red"}.get(r.state.value, "cyan"),
                )
                table.add_row(
                    r.id,
                    r.source_image_id,
                    r.where,
                    state,
                    ProgressBar(total=100, completed=_percent(r), width=24),
                    f"{r.sync_percent}%" if r.sync_percent is not None else "",
                    timing(r),
                    Text(f"{r.error_code}: {r.error_message}" if r.error_code else ""),
                )
            tables.append(table)
        return Group(*tables)


def watch(
    console: Console,
    look: Callable[[], Sequence[Replication]],
    *,
    interval: float,
    step: Callable[[], Any] | None = None,
    sleep: Callable[[float], None] | None = None,
    live: bool | None = None,
) -> list[Replication]:
    """Look (after `step`, e.g. a sweep) every `interval` seconds until every replica shown has ended; returns the
    last look."""
    import time

    pause = sleep or time.sleep
    with Watch(console, live=live) as view:
        while True:
            if step is not None:
                step()
            shown = list(look())
            view.show(shown)
            if all(r.terminal for rep in shown for r in rep.replicas):
                return shown
            pause(interval)

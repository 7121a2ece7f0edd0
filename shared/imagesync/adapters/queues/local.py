"""A durable local message queue in one SQLite file: the `ConsumableQueue` port for development, the demo and tests.

It mirrors the delivery semantics imagesync relies on in the cloud (SCF's asynchronous invocations and their
retries), so code tested against it behaves the same there: at-least-once delivery (not FIFO), a visibility timeout
per receive, a receipt that acknowledges exactly one delivery, delayed messages, a dead-letter store after
`max_attempts` deliveries, and the completion links' body limit (limits.MAX_BODY_BYTES).

Concurrency: every operation is one SQLite transaction opened with ``BEGIN IMMEDIATE`` (the write lock is taken up
front), so a claim is atomic across threads *and* processes sharing the file; WAL lets readers run meanwhile. Create
one `LocalQueue` per process (a queue object that crosses a fork() notices and drops its inherited connections).
SQLite's lock is not fair: a consumer that loops with no pause between calls can starve the others. That costs
throughput sharing, never correctness; real consumers do work between calls.

Over 400 lines on purpose: the queue is one table and one set of delivery rules (receive, ack, nack, dead letters,
requeue), each operation a short transaction over the same columns; split, a reader would have to hold two files
to check one rule.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row

from imagesync.ports import Delivery

from .limits import check_body_size

logger = logging.getLogger(__name__)

metadata = MetaData()

#: Live messages: visible (visible_at <= now), in flight (receipt set, visible_at > now) or delayed (no receipt,
#: visible_at > now). A delivery whose visibility timeout ran out is simply visible again: its receipt stays until the
#: next receive replaces it, so an ack that arrives late but before any redelivery still counts.
messages = Table(
    "queue_messages",
    metadata,
    # The rowid: a stable tie-breaker so that, among messages visible at the same instant, older ones go first.
    Column("seq", Integer, primary_key=True),
    Column("queue", String(200), nullable=False),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("enqueued_at", Float, nullable=False),
    Column("visible_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("receipt", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_queue_messages_queue_visible", "queue", "visible_at", "seq"),
)

dead_letters_table = Table(
    "queue_dead_letters",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("queue", String(200), nullable=False),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("enqueued_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("dead_at", Float, nullable=False),
    Index("ix_queue_dead_letters_queue", "queue", "seq"),
)

#: Recorded as the error of a delivery that was neither acked nor nacked before its visibility timeout ran out.
TIMEOUT_ERROR = "visibility timeout expired without ack"


def _make_engine(path: str, busy_timeout: float) -> Engine:
    # check_same_thread=False: the pool hands connections to any thread, one thread at a time.
    # timeout: how long a writer waits for the lock held by another thread or process (SQLite's busy handler).
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": busy_timeout},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite (which would BEGIN lazily, as DEFERRED, only before DML), so that
        # the "begin" hook below decides how each transaction starts. This is SQLAlchemy's documented SQLite recipe.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # WAL: readers never block the writer and vice versa; the mode is persistent in the file.
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a crash of the process (what a local queue must survive); only a power loss
            # can drop the last commits. FULL would fsync on every commit and make acks ~10x slower.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock at BEGIN: two consumers can never both read a message as visible and both
        # claim it, and a lock conflict surfaces as a wait at BEGIN (handled by the busy timeout) rather than as
        # SQLITE_BUSY in the middle of a transaction (which the busy handler cannot resolve for a DEFERRED upgrade).
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class LocalQueue:
    """A durable at-least-once queue named `name` in the SQLite file at `path` (created if missing).

    Contract (the `ConsumableQueue` port):
    - `send` stores the message and returns its id; it becomes receivable after `delay_seconds`.
    - `receive` atomically claims up to `max_messages` visible messages, oldest first. Each claim is a new delivery:
      a fresh receipt, `attempts` + 1, invisible to other consumers for `visibility_timeout` seconds. A message that is
      not acked within its visibility timeout is delivered again (to anyone).
    - `ack` deletes the message only if the delivery's receipt is still the current one: an ack from a delivery that
      already timed out *and was redelivered* is ignored, so it cannot delete the newer delivery.
    - `nack` makes the message visible again after `delay_seconds` (same receipt rule).
    - A message that has been delivered `max_attempts` times is never delivered again: a nack of its last attempt, or
      a receive that finds it visible again, moves it to the dead letters (`dead_letters`, `requeue_dead`).

    Several `LocalQueue` objects (threads, processes) may share one file and one name; several names may share one
    file. `clock` returns epoch seconds; inject a fake one in tests instead of sleeping.
    """

    def __init__(
        self,
        path: str,
        name: str = "completions",
        max_attempts: int = 5,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
    ) -> None:
        if not path or path == ":memory:" or path.startswith("file::memory:"):
            # An in-memory database is private to one connection: it could not be shared by threads or processes.
            raise ValueError("LocalQueue needs a file path (an in-memory SQLite database cannot be shared)")
        if not name:
            raise ValueError("queue name must not be empty")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.path = path
        self.name = name
        self.max_attempts = max_attempts
        self._clock = clock
        self._engine = _make_engine(path, busy_timeout)
        self._pid = os.getpid()
        # Inside BEGIN IMMEDIATE, so two processes creating the schema at once cannot race between the existence
        # check and CREATE TABLE (SQLite's DDL is transactional).
        with self._begin() as conn:
            metadata.create_all(conn)

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled connections (the queue object may still be used: it reconnects on demand)."""
        self._engine.dispose()

    def __enter__(self) -> LocalQueue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalQueue(path={self.path!r}, name={self.name!r}, max_attempts={self.max_attempts})"

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        if os.getpid() != self._pid:
            # Forked: never use the parent's SQLite connections in the child (SQLAlchemy's recipe for pools and fork).
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        with self._engine.begin() as conn:
            yield conn

    # -- producer --------------------------------------------------------------------------------------------------

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Enqueue `body` (at most limits.MAX_BODY_BYTES in UTF-8, else ValueError); receivable after
        `delay_seconds`. Returns its id."""
        check_body_size(body)
        if delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0, got {delay_seconds}")
        message_id = str(uuid.uuid4())
        with self._begin() as conn:
            now = self._clock()
            conn.execute(
                insert(messages).values(
                    queue=self.name,
                    message_id=message_id,
                    body=body,
                    enqueued_at=now,
                    visible_at=now + delay_seconds,
                    attempts=0,
                    receipt=None,
                    last_error=None,
                )
            )
        return message_id

    # -- consumer --------------------------------------------------------------------------------------------------

    def receive(self, max_messages: int = 10, visibility_timeout: float = 30.0) -> list[Delivery]:
        """Claim up to `max_messages` visible messages for `visibility_timeout` seconds; [] when none is visible.

        Never blocks waiting for messages (poll again). Messages past `max_attempts` met on the way are moved to the
        dead letters instead of being returned.
        """
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        if visibility_timeout <= 0:
            raise ValueError(f"visibility_timeout must be > 0, got {visibility_timeout}")
        deliveries: list[Delivery] = []
        with self._begin() as conn:
            now = self._clock()
            # Loop because dead-lettering can consume candidates: keep going until the batch is full or none is left.
            while len(deliveries) < max_messages:
                rows = conn.execute(
                    select(messages)
                    .where(messages.c.queue == self.name, messages.c.visible_at <= now)
                    .order_by(messages.c.visible_at, messages.c.seq)
                    .limit(max_messages - len(deliveries))
                ).all()
                if not rows:
                    break
                for row in rows:
                    # A visible message that still holds a receipt was delivered and never acked nor nacked.
                    last_error = TIMEOUT_ERROR if row.receipt is not None else row.last_error
                    if row.attempts >= self.max_attempts:
                        self._move_to_dead(conn, row, now, last_error)
                        continue
                    receipt = uuid.uuid4().hex
                    conn.execute(
                        update(messages)
                        .where(messages.c.seq == row.seq)
                        .values(
                            receipt=receipt,
                            attempts=row.attempts + 1,
                            visible_at=now + visibility_timeout,
                            last_error=last_error,
                        )
                    )
                    deliveries.append(
                        Delivery(
                            message_id=row.message_id,
                            body=row.body,
                            receipt=receipt,
                            attempts=row.attempts + 1,
                            attributes={
                                "queue": self.name,
                                "enqueued_at": row.enqueued_at,
                                "last_error": last_error,
                            },
                        )
                    )
        return deliveries

    def ack(self, delivery: Delivery) -> None:
        """Delete the message if `delivery.receipt` is still its current receipt; otherwise do nothing (logged).

        A no-op rather than an error on a stale receipt: the message was already redelivered to someone who will ack
        it, and at-least-once consumers must tolerate that anyway.
        """
        with self._begin() as conn:
            result = conn.execute(
                delete(messages).where(
                    messages.c.queue == self.name,
                    messages.c.message_id == delivery.message_id,
                    messages.c.receipt == delivery.receipt,
                )
            )
        if result.rowcount == 0:
            logger.warning(
                "ack ignored: stale receipt (message redelivered, dead-lettered or already acked)",
                extra={"queue": self.name, "message_id": delivery.message_id},
            )

    def nack(self, delivery: Delivery, *, delay_seconds: float = 0.0, error: str | None = None) -> None:
        """Give the message back: visible again after `delay_seconds`, or to the dead letters if this delivery was
        its last allowed attempt. `error` (optional) is kept as the message's last error. A stale receipt is ignored.
        """
        if delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0, got {delay_seconds}")
        with self._begin() as conn:
            now = self._clock()
            row = conn.execute(
                select(messages).where(
                    messages.c.queue == self.name,
                    messages.c.message_id == delivery.message_id,
                    messages.c.receipt == delivery.receipt,
                )
            ).first()
            if row is None:
                logger.warning(
                    "nack ignored: stale receipt (message redelivered, dead-lettered or already acked)",
                    extra={"queue": self.name, "message_id": delivery.message_id},
                )
                return
            last_error = error if error is not None else "nacked"
            if row.attempts >= self.max_attempts:
                # No further delivery would be allowed: dead-letter now rather than after a pointless delay.
                self._move_to_dead(conn, row, now, last_error)
                return
            conn.execute(
                update(messages)
                .where(messages.c.seq == row.seq)
                .values(receipt=None, visible_at=now + delay_seconds, last_error=last_error)
            )

    # -- dead letters and inspection -------------------------------------------------------------------------------

    def _move_to_dead(self, conn: Connection, row: Row[Any], now: float, last_error: str | None) -> None:
        conn.execute(
            insert(dead_letters_table).values(
                queue=row.queue,
                message_id=row.message_id,
                body=row.body,
                enqueued_at=row.enqueued_at,
                attempts=row.attempts,
                last_error=last_error,
                dead_at=now,
            )
        )
        conn.execute(delete(messages).where(messages.c.seq == row.seq))
        logger.warning(
            "message dead-lettered",
            extra={"queue": row.queue, "message_id": row.message_id, "attempts": row.attempts, "error": last_error},
        )

    def dead_letters(self) -> list[Delivery]:
        """This queue's dead letters, oldest first. `receipt` is "" (they cannot be acked); `attempts` is how often
        the message was delivered; `attributes` holds last_error, dead_at and enqueued_at."""
        with self._begin() as conn:
            rows = conn.execute(
                select(dead_letters_table)
                .where(dead_letters_table.c.queue == self.name)
                .order_by(dead_letters_table.c.seq)
            ).all()
        return [
            Delivery(
                message_id=row.message_id,
                body=row.body,
                receipt="",
                attempts=row.attempts,
                attributes={
                    "queue": self.name,
                    "last_error": row.last_error,
                    "dead_at": row.dead_at,
                    "enqueued_at": row.enqueued_at,
                },
            )
            for row in rows
        ]

    def requeue_dead(self, message_id: str) -> bool:
        """Move one dead letter back into the queue, visible now with a fresh allowance of `max_attempts` deliveries.

        Returns False when this queue has no dead letter with that id.
        """
        with self._begin() as conn:
            now = self._clock()
            row = conn.execute(
                select(dead_letters_table).where(
                    dead_letters_table.c.queue == self.name, dead_letters_table.c.message_id == message_id
                )
            ).first()
            if row is None:
                return False
            conn.execute(
                insert(messages).values(
                    queue=self.name,
                    message_id=row.message_id,
                    body=row.body,
                    enqueued_at=row.enqueued_at,
                    visible_at=now,
                    attempts=0,
                    receipt=None,
                    last_error=row.last_error,
                )
            )
            conn.execute(delete(dead_letters_table).where(dead_letters_table.c.seq == row.seq))
        return True

    def depth(self) -> dict[str, int]:
        """Counts for this queue now: visible (receivable), in_flight (received, within their visibility timeout),
        delayed (sent or nacked with a delay not yet over) and dead."""
        with self._begin() as conn:
            now = self._clock()
            not_yet = messages.c.visible_at > now
            row = conn.execute(
                select(
                    func.sum(case((messages.c.visible_at <= now, 1), else_=0)).label("visible"),
                    func.sum(case((and_(not_yet, messages.c.receipt.is_not(None)), 1), else_=0)).label("in_flight"),
                    func.sum(case((and_(not_yet, messages.c.receipt.is_(None)), 1), else_=0)).label("delayed"),
                ).where(messages.c.queue == self.name)
            ).one()
            dead = conn.execute(
                select(func.count()).select_from(dead_letters_table).where(dead_letters_table.c.queue == self.name)
            ).scalar_one()
        # SUM over no rows is NULL: hence the `or 0`.
        return {
            "visible": int(row.visible or 0),
            "in_flight": int(row.in_flight or 0),
            "delayed": int(row.delayed or 0),
            "dead": int(dead),
        }

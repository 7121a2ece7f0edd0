"""LocalQueue: the ConsumableQueue contract, on a real SQLite file (no mocks), with an injected clock (no sleeps)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagesync.adapters.queues import MAX_BODY_BYTES
from imagesync.adapters.queues.local import TIMEOUT_ERROR, LocalQueue
from imagesync.ports import ConsumableQueue, Delivery

CONSUMER_SCRIPT = Path(__file__).with_name("_consumer.py")


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "queue.db")


@pytest.fixture
def queue(db_path: str, clock: FakeClock) -> Iterator[LocalQueue]:
    q = LocalQueue(db_path, "completions", max_attempts=3, clock=clock)
    yield q
    q.close()


def depth(visible: int = 0, in_flight: int = 0, delayed: int = 0, dead: int = 0) -> dict[str, int]:
    return {"visible": visible, "in_flight": in_flight, "delayed": delayed, "dead": dead}


def test_it_satisfies_the_consumable_queue_port(queue: LocalQueue) -> None:
    port: ConsumableQueue = queue  # checked by mypy; at runtime, the calls below exercise the same surface
    message_id = port.send("x")
    [delivery] = port.receive()
    port.ack(delivery)
    assert port.dead_letters() == []
    assert isinstance(delivery, Delivery) and delivery.message_id == message_id


def test_send_receive_ack(queue: LocalQueue) -> None:
    message_id = queue.send('{"replica_id": "r-1"}')
    assert queue.depth() == depth(visible=1)

    [delivery] = queue.receive(max_messages=10, visibility_timeout=30)

    assert delivery.message_id == message_id
    assert delivery.body == '{"replica_id": "r-1"}'
    assert delivery.attempts == 1
    assert delivery.receipt
    assert delivery.attributes["queue"] == "completions"
    assert queue.depth() == depth(in_flight=1)
    assert queue.receive() == []  # in flight: invisible to everyone else

    queue.ack(delivery)

    assert queue.depth() == depth()
    assert queue.receive() == []


def test_receive_on_an_empty_queue_returns_nothing(queue: LocalQueue) -> None:
    assert queue.receive() == []
    assert queue.depth() == depth()


def test_receive_takes_at_most_max_messages_oldest_first(queue: LocalQueue, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        ids.append(queue.send(f"m{i}"))
        clock.advance(0.001)

    first = queue.receive(max_messages=3)
    second = queue.receive(max_messages=3)

    assert [d.message_id for d in first] == ids[:3]
    assert [d.message_id for d in second] == ids[3:]
    assert len({d.receipt for d in first + second}) == 5  # one receipt per delivery


def test_unicode_body_round_trips(queue: LocalQueue) -> None:
    body = '{"name": "镜像-ünïcode 🚀", "nul": "a\\u0000b"}'
    queue.send(body)
    [delivery] = queue.receive()
    assert delivery.body == body


def test_delayed_send_is_invisible_until_the_delay_passes(queue: LocalQueue, clock: FakeClock) -> None:
    queue.send("later", delay_seconds=60)
    assert queue.receive() == []
    assert queue.depth() == depth(delayed=1)

    clock.advance(59.9)
    assert queue.receive() == []
    clock.advance(0.1)

    [delivery] = queue.receive()
    assert delivery.body == "later"


def test_unacked_message_is_redelivered_after_its_visibility_timeout(queue: LocalQueue, clock: FakeClock) -> None:
    queue.send("work")
    [first] = queue.receive(visibility_timeout=10)

    clock.advance(9.9)
    assert queue.receive() == []
    clock.advance(0.1)
    assert queue.depth() == depth(visible=1)

    [second] = queue.receive(visibility_timeout=10)
    assert second.message_id == first.message_id
    assert second.attempts == 2
    assert second.receipt != first.receipt
    assert second.attributes["last_error"] == TIMEOUT_ERROR


def test_ack_with_a_stale_receipt_does_not_delete_the_newer_delivery(
    queue: LocalQueue, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send("work")
    [first] = queue.receive(visibility_timeout=10)
    clock.advance(11)
    [second] = queue.receive(visibility_timeout=10)

    with caplog.at_level(logging.WARNING, logger="imagesync.adapters.queues.local"):
        queue.ack(first)  # the slow consumer finally finishes: too late, the message belongs to `second` now

    assert "stale receipt" in caplog.text
    assert queue.depth() == depth(in_flight=1)
    queue.ack(second)
    assert queue.depth() == depth()
    queue.ack(first)  # acking again after the message is gone is harmless


def test_late_ack_before_any_redelivery_still_counts(queue: LocalQueue, clock: FakeClock) -> None:
    queue.send("work")
    [delivery] = queue.receive(visibility_timeout=10)
    clock.advance(60)  # timed out, but nobody received it again: the receipt is still the current one

    queue.ack(delivery)

    assert queue.depth() == depth()
    assert queue.receive() == []


def test_nack_makes_the_message_visible_again_after_the_delay(queue: LocalQueue, clock: FakeClock) -> None:
    queue.send("work")
    [first] = queue.receive(visibility_timeout=300)

    queue.nack(first, delay_seconds=20, error="CloudError: RequestLimitExceeded")

    assert queue.depth() == depth(delayed=1)
    assert queue.receive() == []
    clock.advance(20)
    [second] = queue.receive()
    assert second.message_id == first.message_id
    assert second.attempts == 2
    assert second.attributes["last_error"] == "CloudError: RequestLimitExceeded"
    queue.ack(first)  # the nacked delivery's receipt is dead
    assert queue.depth() == depth(in_flight=1)


def test_nack_without_delay_is_immediately_visible(queue: LocalQueue) -> None:
    queue.send("work")
    [first] = queue.receive()
    queue.nack(first)
    [second] = queue.receive()
    assert second.attempts == 2
    assert second.attributes["last_error"] == "nacked"


def test_nack_with_a_stale_receipt_is_ignored(queue: LocalQueue, clock: FakeClock) -> None:
    queue.send("work")
    [first] = queue.receive(visibility_timeout=10)
    clock.advance(10)
    [second] = queue.receive(visibility_timeout=10)

    queue.nack(first)

    assert queue.depth() == depth(in_flight=1)
    queue.ack(second)
    assert queue.depth() == depth()


def test_message_is_dead_lettered_when_nacked_on_its_last_attempt(queue: LocalQueue, clock: FakeClock) -> None:
    message_id = queue.send("poison")
    for attempt in range(1, 4):
        [delivery] = queue.receive()
        assert delivery.attempts == attempt
        queue.nack(delivery, error=f"boom {attempt}")

    assert queue.receive() == []
    assert queue.depth() == depth(dead=1)
    [dead] = queue.dead_letters()
    assert dead.message_id == message_id
    assert dead.body == "poison"
    assert dead.attempts == 3
    assert dead.receipt == ""
    assert dead.attributes["last_error"] == "boom 3"
    assert dead.attributes["dead_at"] == clock.now


def test_message_that_keeps_timing_out_is_dead_lettered_instead_of_delivered(
    queue: LocalQueue, clock: FakeClock
) -> None:
    poison = queue.send("poison")
    for _ in range(3):
        [delivery] = queue.receive(visibility_timeout=5)
        assert delivery.message_id == poison
        clock.advance(5)
    healthy = queue.send("healthy")

    # The 4th delivery of `poison` would exceed max_attempts=3: it moves to the dead letters and the batch is
    # filled with the next message instead.
    [delivery] = queue.receive(max_messages=1)

    assert delivery.message_id == healthy
    [dead] = queue.dead_letters()
    assert (dead.message_id, dead.attempts, dead.attributes["last_error"]) == (poison, 3, TIMEOUT_ERROR)


def test_ack_of_a_dead_lettered_delivery_does_nothing(queue: LocalQueue) -> None:
    queue.send("poison")
    for _ in range(3):
        [delivery] = queue.receive()
        queue.nack(delivery)
    queue.ack(delivery)
    assert queue.depth() == depth(dead=1)


def test_requeue_dead_puts_the_message_back_with_fresh_attempts(queue: LocalQueue) -> None:
    message_id = queue.send("poison")
    for _ in range(3):
        [delivery] = queue.receive()
        queue.nack(delivery, error="boom")

    assert queue.requeue_dead(message_id) is True

    assert queue.dead_letters() == []
    assert queue.depth() == depth(visible=1)
    [again] = queue.receive()
    assert (again.message_id, again.body, again.attempts) == (message_id, "poison", 1)
    assert again.attributes["last_error"] == "boom"  # history kept for the operator
    assert queue.requeue_dead(message_id) is False  # no longer dead
    assert queue.requeue_dead("no-such-id") is False


def test_max_attempts_of_one_means_a_single_delivery(db_path: str, clock: FakeClock) -> None:
    q = LocalQueue(db_path, "once", max_attempts=1, clock=clock)
    q.send("x")
    [delivery] = q.receive()
    q.nack(delivery)
    assert q.depth() == depth(dead=1)


def test_depth_counts_every_kind(queue: LocalQueue, clock: FakeClock) -> None:
    queue.send("visible")
    queue.send("delayed", delay_seconds=100)
    queue.send("in flight")
    queue.send("poison")
    # Claim "visible", "in flight" and "poison" (oldest first), then return "visible".
    claimed = {d.body: d for d in queue.receive(max_messages=3, visibility_timeout=50)}
    queue.nack(claimed["visible"])
    for _ in range(2):
        queue.nack(claimed["poison"])
        [claimed["poison"]] = [d for d in queue.receive(max_messages=2) if d.body == "poison"]
    queue.nack(claimed["poison"])  # its 3rd attempt: dead

    assert queue.depth() == depth(visible=0, in_flight=2, delayed=1, dead=1)


def test_queues_sharing_a_file_are_isolated(db_path: str, clock: FakeClock) -> None:
    a = LocalQueue(db_path, "a", max_attempts=1, clock=clock)
    b = LocalQueue(db_path, "b", max_attempts=1, clock=clock)
    a.send("for a")
    b.send("for b")

    [from_a] = a.receive()
    a.nack(from_a)

    assert [d.body for d in b.receive()] == ["for b"]
    assert b.dead_letters() == []
    assert b.requeue_dead(from_a.message_id) is False
    assert a.depth() == depth(dead=1)


def test_messages_survive_a_restart(db_path: str, clock: FakeClock) -> None:
    first = LocalQueue(db_path, clock=clock)
    sent = first.send("durable")
    [delivery] = first.receive(visibility_timeout=30)
    first.close()
    del first

    reopened = LocalQueue(db_path, clock=clock)
    assert reopened.depth() == depth(in_flight=1)
    clock.advance(30)
    [again] = reopened.receive()
    assert (again.message_id, again.attempts) == (sent, 2)
    reopened.ack(delivery)  # the pre-restart receipt is stale now
    assert reopened.depth() == depth(in_flight=1)


def _send_from_child(queue: LocalQueue) -> None:
    queue.send("from the child")


def test_a_queue_object_inherited_across_fork_still_works(queue: LocalQueue) -> None:
    queue.send("from the parent")  # the parent's pool now holds an open connection
    child = multiprocessing.get_context("fork").Process(target=_send_from_child, args=(queue,))
    child.start()
    child.join(timeout=30)

    assert child.exitcode == 0
    assert sorted(d.body for d in queue.receive()) == ["from the child", "from the parent"]


def test_the_file_is_in_wal_mode(queue: LocalQueue, db_path: str) -> None:
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_body_limit_is_what_an_async_invocation_carries_in_utf8(queue: LocalQueue) -> None:
    assert MAX_BODY_BYTES == 128 * 1024 - 64  # one message alone in an async event of at most 128 KB
    queue.send("a" * MAX_BODY_BYTES)  # exactly the limit: accepted
    with pytest.raises(ValueError, match=f"{MAX_BODY_BYTES + 1} bytes"):
        queue.send("a" * (MAX_BODY_BYTES + 1))
    # Bytes, not characters: 3-byte characters reach the limit at a third of the length.
    with pytest.raises(ValueError, match=f"at most {MAX_BODY_BYTES} bytes"):
        queue.send("镜" * (MAX_BODY_BYTES // 3 + 1))
    with pytest.raises(TypeError):
        queue.send(b"bytes")  # type: ignore[arg-type]
    assert queue.depth() == depth(visible=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.send("x", delay_seconds=-1),
        lambda q: q.receive(max_messages=0),
        lambda q: q.receive(visibility_timeout=0),
        lambda q: q.nack(Delivery("id", "b", "r", 1), delay_seconds=-1),
    ],
    ids=["negative-delay", "zero-batch", "zero-visibility", "negative-nack-delay"],
)
def test_invalid_arguments_are_refused(queue: LocalQueue, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        call(queue)


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [(":memory:", {}), ("", {}), ("x.db", {"max_attempts": 0}), ("x.db", {"name": ""})],
    ids=["memory", "empty-path", "zero-attempts", "empty-name"],
)
def test_invalid_construction_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, kwargs) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError):
        LocalQueue(path, **kwargs)


# -- concurrency: real clock, real threads and processes --------------------------------------------------------------


def _consume(queue: LocalQueue, acked: list[str], start: threading.Barrier) -> None:
    start.wait()
    while True:
        # Long visibility timeout: nothing is redelivered, so any duplicate would be a double claim.
        batch = queue.receive(max_messages=5, visibility_timeout=120)
        if not batch:
            return
        for delivery in batch:
            queue.ack(delivery)
            acked.append(delivery.message_id)
        time.sleep(0.002)  # the consumer's "work"; see _consumer.py for why it matters


def _send_many(queue: LocalQueue, count: int) -> set[str]:
    return {queue.send(json.dumps({"n": n})) for n in range(count)}


def test_threads_sharing_one_queue_object_each_message_is_acked_exactly_once(db_path: str) -> None:
    queue = LocalQueue(db_path)
    sent = _send_many(queue, 1000)
    results: list[list[str]] = [[] for _ in range(6)]
    start = threading.Barrier(len(results))
    threads = [threading.Thread(target=_consume, args=(queue, acked, start)) for acked in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    counts = Counter(message_id for acked in results for message_id in acked)
    assert set(counts) == sent
    assert set(counts.values()) == {1}
    assert queue.depth() == depth()


def test_producers_and_consumers_at_the_same_time_lose_nothing(db_path: str) -> None:
    sent: list[set[str]] = []
    acked: list[list[str]] = [[] for _ in range(3)]
    producers_done = threading.Event()

    def produce() -> None:
        sent.append(_send_many(LocalQueue(db_path), 200))

    def consume(out: list[str]) -> None:
        queue = LocalQueue(db_path)  # one queue object per thread works too
        while True:
            # Read the flag BEFORE receiving: an empty receive that began after every send has finished means
            # everything left is in flight with another consumer, who will ack it.
            done = producers_done.is_set()
            batch = queue.receive(max_messages=4, visibility_timeout=120)
            if not batch and done:
                return
            for delivery in batch:
                queue.ack(delivery)
                out.append(delivery.message_id)

    LocalQueue(db_path)  # create the schema before the threads race
    producers = [threading.Thread(target=produce) for _ in range(2)]
    consumers = [threading.Thread(target=consume, args=(out,)) for out in acked]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join(timeout=60)
    producers_done.set()
    for t in consumers:
        t.join(timeout=60)

    all_sent = set().union(*sent)
    counts = Counter(message_id for out in acked for message_id in out)
    assert len(all_sent) == 400
    assert set(counts) == all_sent
    assert set(counts.values()) == {1}
    assert LocalQueue(db_path).depth() == depth()


@pytest.mark.slow
def test_two_processes_and_threads_consume_1000_messages_each_acked_exactly_once(db_path: str) -> None:
    queue = LocalQueue(db_path)
    sent = _send_many(queue, 1000)

    procs = [
        subprocess.Popen(
            [sys.executable, str(CONSUMER_SCRIPT), db_path, "completions"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        thread_results: list[list[str]] = [[] for _ in range(2)]
        start = threading.Barrier(len(thread_results) + 1)
        threads = [threading.Thread(target=_consume, args=(queue, out, start)) for out in thread_results]
        for t in threads:
            t.start()
        for proc in procs:  # release everybody at (nearly) the same moment
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        start.wait()
        process_results = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
        for t in threads:
            t.join(timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    assert all(proc.returncode == 0 for proc in procs)
    counts = Counter(message_id for out in process_results + thread_results for message_id in out)
    assert set(counts) == sent  # none lost
    assert set(counts.values()) == {1}  # none acked twice
    assert all(process_results), "each process should have claimed some messages (cross-process claiming)"
    assert queue.depth() == depth()

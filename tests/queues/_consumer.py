"""A consumer process for the cross-process LocalQueue test (run as a script, not collected by pytest).

Usage: python _consumer.py DB_PATH QUEUE_NAME. Prints "ready" once its queue is open, waits for a line on stdin,
then receives and acks until the queue is empty, and prints the JSON list of the message ids it acked.
"""

from __future__ import annotations

import json
import sys
import time

from imagesync.adapters.queues.local import LocalQueue


def main(path: str, name: str) -> None:
    queue = LocalQueue(path, name)
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal: every consumer begins at once
    acked: list[str] = []
    while True:
        # A long visibility timeout: nothing may be redelivered here, so a duplicate would mean a double claim.
        batch = queue.receive(max_messages=5, visibility_timeout=120)
        if not batch:
            break
        for delivery in batch:
            queue.ack(delivery)
            acked.append(delivery.message_id)
        # Stand-in for the work a real consumer does between calls. It also matters: SQLite's lock is not fair, and a
        # consumer looping with no pause at all can starve the others (correct, but then nothing is shared).
        time.sleep(0.002)
    queue.close()
    print(json.dumps(acked), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

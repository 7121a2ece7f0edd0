#!/usr/bin/env python3
"""SyncImages for N images (default 1,000) against the API's 10/s limit, with the emulator's rate limits on.

The images are requested as HTTP events through copy_request's real handler, 10 images (the request limit) into
one mainland region per request, one request after another as one warm container would take them. Each image is
one SyncImages (the API copies one image per call), paced by imagesync's client-side limiter
(IMAGESYNC_SYNC_RATE_PER_SECOND, default 8/s) and retried by its own retry loop when the emulator says
RequestLimitExceeded. Printed: SyncImages accepted per second against 10/s, throttled answers, and the copies'
states (none may be FAILED by throttling). Takes about N / 8 real seconds.

    .venv/bin/python scripts/bench_sync.py [--images 1000] [--rate 8]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from imagesync_dev.bench import MAINLAND, SOURCE_REGION, bench, table

API_LIMIT = 10.0  # SyncImages requests per second (docs/facts.md#F-COPY-6)
PER_REQUEST = 10  # IMAGESYNC_MAX_IMAGES_PER_REQUEST's default


def request(images: list[str], region: str) -> dict[str, Any]:
    body = {"source_region": SOURCE_REGION, "image_ids": images, "destination_regions": [region]}
    return {
        "httpMethod": "POST",
        "path": "/replications",
        "headers": {"content-type": "application/json"},
        "queryString": {},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=8.0, help="imagesync's client-side SyncImages rate")
    args = parser.parse_args()

    from imagesync.handlers import copy_request

    with bench(rate_limits=True, sync_rate_per_second=args.rate) as b:
        images = [b.admin.add_image(SOURCE_REGION, name=f"sync-{i:05d}", size=20) for i in range(args.images)]
        b.admin.clear_calls()
        statuses: dict[int, int] = {}
        start = time.perf_counter()
        for n, first in enumerate(range(0, len(images), PER_REQUEST)):
            answer = copy_request.main_handler(
                request(images[first : first + PER_REQUEST], MAINLAND[n % len(MAINLAND)]),
                {"request_id": f"sync-{n}", "time_limit_in_ms": 900_000},
            )
            statuses[answer["statusCode"]] = statuses.get(answer["statusCode"], 0) + 1
        elapsed = time.perf_counter() - start
        calls = b.admin.calls(action="SyncImages")
        ok = [c for c in calls if c["outcome"] == "ok"]
        throttled = [c for c in calls if str(c["outcome"]).startswith("RequestLimitExceeded")]
        window = (ok[-1]["real_time"] - ok[0]["real_time"]) if len(ok) > 1 else elapsed
        states = b.services.store.count_by_state()
        failed_codes: dict[str, int] = {}
        for rep in b.services.store.list_replications(limit=100)[0]:
            for r in rep.replicas:
                if r.error_code:
                    failed_codes[r.error_code] = failed_codes.get(r.error_code, 0) + 1
        print(
            f"SyncImages for {args.images:,} images, {sum(statuses.values()):,} HTTP requests "
            f"of {PER_REQUEST}; client-side limit {args.rate:g}/s; emulator limit {API_LIMIT:g}/s (on)\n"
        )
        rate = (len(ok) - 1) / window if len(ok) > 1 else float("nan")
        print(
            table(
                [
                    "images",
                    "SyncImages ok",
                    "throttled answers",
                    "seconds",
                    "SyncImages/s",
                    "vs 10/s",
                    "HTTP answers",
                    "COPYING",
                    "FAILED",
                ],
                [
                    [
                        args.images,
                        len(ok),
                        len(throttled),
                        window,
                        rate,
                        rate / API_LIMIT,
                        " ".join(f"{k}x{v}" for k, v in sorted(statuses.items())),
                        states.get("COPYING", 0),
                        states.get("FAILED", 0),
                    ]
                ],
            )
        )
        if failed_codes:
            print(f"\nerror codes on replicas: {failed_codes}")


if __name__ == "__main__":
    main()

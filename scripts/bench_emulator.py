#!/usr/bin/env python3
"""How many signed DescribeImages requests per second the emulator serves (rate limits off).

The emulator runs in its own process (`python -m imagesync_emulator --no-rate-limits`), as in tests and the demo,
so the clients do not share its GIL. Client threads send DescribeImages over keep-alive connections, either
pre-signed raw HTTP (the default: measures the server) or through the official SDK (measures SDK + server).

    .venv/bin/python scripts/bench_emulator.py [--threads 4] [--seconds 5] [--mode raw|sdk]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "emulator"))

from imagesync_emulator.signature import sign_request  # noqa: E402

PARAMS = {"Filters": [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}], "Limit": 20}


def raw_worker(ready: dict, stop: threading.Event, counts: list[int], errors: list[int], idx: int) -> None:
    host, port = ready["host_port"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    signed_at = 0.0
    headers: dict[str, str] = {}
    body = b""
    while not stop.is_set():
        if time.time() - signed_at > 60:  # a signature is good for 5 minutes; re-sign every minute
            headers, body = sign_request(
                secret_id=ready["secret_id"],
                secret_key=ready["secret_key"],
                service="cvm",
                action="DescribeImages",
                version="2017-03-12",
                host=ready["host_port"],
                region="ap-guangzhou",
                params=PARAMS,
            )
            signed_at = time.time()
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status == 200 and b'"ImageSet"' in data:
            counts[idx] += 1
        else:
            errors[idx] += 1
    conn.close()


def sdk_worker(ready: dict, stop: threading.Event, counts: list[int], errors: list[int], idx: int) -> None:
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.cvm.v20170312 import cvm_client, models

    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=ready["host_port"], keepAlive=True))
    client = cvm_client.CvmClient(
        credential.Credential(ready["secret_id"], ready["secret_key"]), "ap-guangzhou", profile
    )
    req = models.DescribeImagesRequest()
    req.from_json_string(json.dumps(PARAMS))
    while not stop.is_set():
        try:
            client.DescribeImages(req)
            counts[idx] += 1
        except Exception:  # noqa: BLE001 - a benchmark counts failures, it does not stop on them
            errors[idx] += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--mode", choices=("raw", "sdk"), default="raw")
    args = ap.parse_args()

    env = {**os.environ, "PYTHONPATH": str(REPO / "emulator") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagesync_emulator", "--no-rate-limits", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        worker = raw_worker if args.mode == "raw" else sdk_worker
        stop = threading.Event()
        counts, errors = [0] * args.threads, [0] * args.threads
        threads = [
            threading.Thread(target=worker, args=(ready, stop, counts, errors, i), daemon=True)
            for i in range(args.threads)
        ]
        for t in threads:
            t.start()
        time.sleep(args.warmup)
        c0, t0 = sum(counts), time.perf_counter()
        time.sleep(args.seconds)
        c1, t1 = sum(counts), time.perf_counter()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        rate = (c1 - c0) / (t1 - t0)
        print(
            json.dumps(
                {
                    "mode": args.mode,
                    "threads": args.threads,
                    "seconds": round(t1 - t0, 2),
                    "requests": c1 - c0,
                    "errors": sum(errors),
                    "requests_per_second": round(rate, 1),
                    "cpus": os.cpu_count(),
                }
            )
        )
        print(
            f"{rate:.0f} signed DescribeImages requests/s ({args.mode}, {args.threads} client threads, "
            f"{os.cpu_count()} CPUs, rate limits off)"
        )
        return 0 if sum(errors) == 0 else 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())

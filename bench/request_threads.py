"""CPU of one request (``webhooks.delivery.post``) as more threads of one process send at once.

    python -m bench.request_threads [--threads 1,2,4,16] [--requests 4800]

Against the bench receiver on 127.0.0.1 (its own process), each thread count in its own
process: the process's CPU per request and the requests per second. Every socket call
of a request hands the GIL over when another thread waits for it, which is what a
worker's request threads pay beside its loop, recording and task threads (issue 23).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import ROOT, Processes

_CHILD = r"""
import json, os, sys, threading, time
import django
django.setup()
from webhooks import delivery
url, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
request = delivery.OutgoingRequest(
    url,
    {"Content-Type": "application/json", "webhook-id": "msg_1", "webhook-timestamp": "1",
     "webhook-signature": "v1,x"},
    b'{"id":"1","type":"article.created","data":{"id":1,"title":"hello"}}',
)
delivery.post(request)  # connected and warm
def send(k):
    for _ in range(k):
        assert delivery.post(request).status_code == 204
cpu, wall = time.process_time(), time.perf_counter()
workers = [threading.Thread(target=send, args=(n // threads,)) for _ in range(threads)]
[w.start() for w in workers]
[w.join() for w in workers]
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
sent = n // threads * threads
print(json.dumps({"threads": threads, "cpu_us_per_request": round(cpu / sent * 1e6, 1),
                  "requests_per_s": round(sent / wall)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2,4,16")
    parser.add_argument("--requests", type=int, default=4800)
    parser.add_argument("--rounds", type=int, default=2, help="each count this many times")
    args = parser.parse_args()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_WEBHOOKS": json.dumps({"ALLOWED_NETWORKS": ["127.0.0.0/8"], "ALLOW_HTTP": True}),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_URL", None)
    results = []
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp)) as p:
        [port] = p.receiver(ports=1)
        url = f"http://127.0.0.1:{port}/hook/0"
        for _ in range(args.rounds):
            for threads in args.threads.split(","):
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, url, threads, str(args.requests)],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                )
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()

"""Celery backend benchmark: batching, parallel efficiency, resume latency.

Starts its own redis-server and moto S3 server on free loopback ports and real
worker processes, measures, prints a table, and stops everything:

  (a) 2,000 trivial calls: enact.worker.map vs a raw Celery group (ratio >= 1 wins)
  (b) 1,000 calls sleeping 50 ms at 64-way concurrency: efficiency = ideal / wall
  (c) latency from enact.worker.answer to the resumed flow completing (p50, p95)

    python bench/bench_worker.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_in(ports: range) -> int:
    """A port of ``ports`` (a benchmark's own range) that nothing listens on."""
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    opts = parser.parse_args()
    n_trivial, n_sleep, n_flows = (400, 256, 20) if opts.quick else (2000, 1000, 100)
    tmp = Path(tempfile.mkdtemp(prefix="enact-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    redis_port, s3_port = free_port(), free_port()
    processes.append(subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))  # fmt: skip
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))  # fmt: skip
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        ENACT_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        ENACT_STORE_URL="s3://bench/store",
        ENACT_S3_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}",
        ENACT_IMPORTS="bench.worker_tasks",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        wait_port(redis_port)
        wait_port(s3_port)
        os.environ.update(env)
        import boto3

        boto3.client(
            "s3", endpoint_url=env["ENACT_S3_ENDPOINT_URL"], region_name="us-east-1"
        ).create_bucket(Bucket="bench")
        for i in range(2):
            log = open(tmp / f"worker{i}.log", "wb")
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "enact.worker", "worker", "-P", "threads",
                 "-c", "32", f"--hostname=bench{i}@%h", "--loglevel=WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
            ))  # fmt: skip
        rows = run(n_trivial, n_sleep, n_flows)
    finally:
        for p in reversed(processes):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    p.terminate()
        for p in processes:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    print_table(rows)


def run(n_trivial: int, n_sleep: int, n_flows: int) -> list[tuple[str, str, str, str]]:
    from celery import group

    import enact.worker
    from bench import worker_tasks as t

    app = enact.worker.app
    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=1.0)) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not come up")
    # warm up both paths (connections, imports, the store's client)
    enact.worker.map(t.square, range(64))
    group(t.raw_square.s(i) for i in range(64)).apply_async().get(timeout=60)

    rows = []
    start = time.perf_counter()
    res = group(t.raw_square.s(i) for i in range(n_trivial)).apply_async()
    raw_out = res.get(timeout=300)
    raw_s = time.perf_counter() - start
    start = time.perf_counter()
    out = enact.worker.map(t.square, range(n_trivial))
    enact_s = time.perf_counter() - start
    assert out == raw_out == [i * i for i in range(n_trivial)]
    rows.append(
        (
            f"(a) {n_trivial} trivial calls",
            f"raw group {raw_s:.2f} s",
            f"enact map {enact_s:.2f} s",
            f"speed ratio {raw_s / enact_s:.2f} (target >= 1.0)",
        )
    )

    ideal = n_sleep * 0.05 / 64
    start = time.perf_counter()
    group(t.raw_nap.s(0.05) for _ in range(n_sleep)).apply_async().get(timeout=300)
    raw_wall = time.perf_counter() - start
    start = time.perf_counter()
    enact.worker.map(t.nap, [0.05] * n_sleep)
    enact_wall = time.perf_counter() - start
    rows.append(
        (
            f"(b) {n_sleep} x 50 ms, 64-way",
            f"raw eff {ideal / raw_wall:.0%}",
            f"enact eff {ideal / enact_wall:.0%}",
            f"ideal {ideal:.2f} s, enact {enact_wall:.2f} s (target >= 80%)",
        )
    )

    flows = [enact.worker.submit(t.answered_flow) for _ in range(n_flows)]
    for flow in flows:
        assert flow.wait(120) == "waiting"
    latencies = []
    for i, flow in enumerate(flows):
        [request] = enact.worker.pending_inputs(flow.id)
        start = time.perf_counter()
        enact.worker.answer(request.id, i)
        assert flow.wait(60) == "done"
        latencies.append(time.perf_counter() - start)
        assert flow.result() == i + 1
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
    rows.append(
        (
            f"(c) answer -> done, {n_flows} flows",
            f"p50 {p50:.1f} ms",
            f"p95 {p95:.1f} ms",
            "target p50 <= 50 ms",
        )
    )
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print("enact worker benchmark (2 workers x 32 threads, Redis broker, moto S3)")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()

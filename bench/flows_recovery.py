"""Recovery time after ``kill -9``: from the kill of the worker running a flow to the
flow continuing on another worker, with default settings and a Redis broker.

A throwaway cluster (``tests.recovery.cluster``: its own redis-server with AOF, a file
store, 3 real worker processes) runs a few long flows of tracked steps; every step
records when and in which process it starts. Every ``spacing_s`` seconds the bench kills
(``kill -9``, the whole process group) the worker running one of them and starts a new
worker at once. For each flow that was running in the killed worker, the sample is the
time from the signal to the first step that flow starts in another process (the step
that was in flight, run again). Nothing here shortens the lease or the visibility
timeout: the numbers are what a user gets.

    python bench/flows_recovery.py [--kills 10]

``measure_recovery`` is imported by ``bench/bench_flows.py``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.recovery.cluster import (  # noqa: E402
    Cluster,
    Kill,
    continued_after,
    percentile,
    wait_for,
)

WORKERS = 3
FLOWS = 6
STEP_DELAY_S = 0.5
GIVE_UP_S = 300.0  # a flow not continued this long after its kill counts as not continued


def measure_recovery(kills: int = 10, spacing_s: float = 8.0) -> dict[str, Any]:
    """Kill the worker of a running flow ``kills`` times; seconds until each flow it ran
    continued elsewhere: ``{"kills", "samples", "p50", "p95", "max", "not_continued",
    "samples_s"}``. The samples are one per flow running in a killed worker, so there
    are at least ``kills`` of them. Takes about ``kills * spacing_s`` s plus one recovery.
    """
    if kills < 1:
        raise ValueError("kills must be at least 1")
    import enact.worker
    from tests.recovery.flows import steps_flow

    root = Path(tempfile.mkdtemp(prefix="enact-recovery-bench-"))
    cluster = Cluster(root)
    # Long enough to outlive every kill and its recovery.
    steps = int((kills * spacing_s + 2 * GIVE_UP_S) / STEP_DELAY_S)
    hits: list[tuple[Kill, str]] = []  # (kill, tag of a flow running in the killed worker)
    try:
        cluster.start(WORKERS)
        cluster.connect()
        tags = [f"bench{i}" for i in range(FLOWS)]
        for tag in tags:
            enact.worker.submit(steps_flow, tag, steps, STEP_DELAY_S)
        next_kill = time.time() + spacing_s
        while len({kill for kill, _ in hits}) < kills:
            time.sleep(0.2)
            cluster.reap_exited()
            while len(cluster.workers) < WORKERS:
                cluster.start_worker(wait=False)
            if time.time() < next_kill:
                continue
            running = _running(cluster, tags)
            if not running:
                continue  # every flow is between a kill and its recovery
            victim_pid = running[min(running)]
            victim = cluster.worker_of(victim_pid)
            assert victim is not None
            kill = cluster.kill_worker(victim)
            hits.extend((kill, tag) for tag, pid in running.items() if pid == victim_pid)
            cluster.start_worker(wait=False)
            next_kill = kill.start + spacing_s

        def continued(kill: Kill, tag: str) -> float | None:
            after = continued_after(cluster.executions(tag), kill)
            return None if after is None else after.t - kill.start

        last = max(kill.start for kill, _ in hits)
        wait_for(
            lambda: all(continued(k, t) is not None for k, t in hits),
            timeout_s=last + GIVE_UP_S - time.time(),
            every_s=0.5,
        )
        samples = [continued(kill, tag) for kill, tag in hits]
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)
    found = [s for s in samples if s is not None]
    return {
        "kills": len({kill for kill, _ in hits}),
        "samples": len(samples),
        "p50": percentile(found, 0.5) if found else None,
        "p95": percentile(found, 0.95) if found else None,
        "max": max(found) if found else None,
        "not_continued": len(samples) - len(found),
        "samples_s": sorted(found),
    }


def _running(cluster: Cluster, tags: list[str]) -> dict[str, int]:
    """Flows whose last step started in the last two step times, in a live worker: pid."""
    live = {worker.pid for worker in cluster.workers.values()}
    recent = time.time() - 2 * STEP_DELAY_S
    last: dict[str, Any] = {}
    for execution in cluster.executions():
        last[execution.tag] = execution
    return {
        tag: e.pid for tag, e in last.items() if tag in tags and e.t >= recent and e.pid in live
    }


def format_table(result: dict[str, Any]) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    header = f"{'kills':>6} {'flows hit':>10} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'lost':>5}"
    row = (
        f"{result['kills']:>6} {result['samples']:>10} {seconds(result['p50']):>7} "
        f"{seconds(result['p95']):>7} {seconds(result['max']):>7} {result['not_continued']:>5}"
    )
    return "\n".join(
        [
            f"recovery after kill -9 ({WORKERS} workers, default settings, Redis broker)",
            header,
            row,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--spacing", type=float, default=8.0, help="seconds between kills")
    opts = parser.parse_args(argv)
    result = measure_recovery(opts.kills, opts.spacing)
    print(format_table(result))
    print("samples (s):", " ".join(f"{s:.1f}" for s in result["samples_s"]))


if __name__ == "__main__":
    main()

"""Search benchmark: Game of 24 (examples/game24.py) with the toy LLM.

Prints, for 50 generated puzzles:

  (a) success rate against budget (8, 32, 128 sampled calls) for a single sample,
      best-of-N, beam and MCTS (all with the same seed and parallelism, run locally);
  (b) share of sampled calls reused from records, and bytes stored against what
      copying every rollout's full record would take (budget 128, no early stop);
  (c) wall time and parallel efficiency (T1 / (2 * T2)) of searches (budget 128) with
      1 and 2 real Celery workers, on a toy LLM with 20 ms latency. Starts its own
      redis-server (a free port in 7500-7599) and workers, and stops them.

    python bench/bench_search.py [--quick] [--no-cluster | --cluster-only] [--parallelism N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import enact  # noqa: E402
from bench.bench_worker import free_port_in, wait_port  # noqa: E402
from enact import search  # noqa: E402
from examples.game24 import puzzles, solve24, verify  # noqa: E402

BUDGETS = (8, 32, 128)
STRATEGIES = ("best_of_n", "beam", "mcts")
ERROR_RATE = 0.6
PARALLELISM = 4
WORKER_THREADS = 4
LATENCY_S = 0.02
CLUSTER_PARALLELISM = 2 * WORKER_THREADS
# A beam level is beam_size * width rollouts: 8 of them keep 2 workers' 8 threads busy.
CLUSTER_OPTIONS: dict[str, dict[str, int]] = {"best_of_n": {}, "beam": {"beam_size": 4}, "mcts": {}}


def run(strategy: str, numbers: list, budget: int, **kwargs: object) -> search.SearchResult:
    kwargs.setdefault("parallelism", PARALLELISM)
    kwargs.setdefault("cluster", False)
    return search.search(
        strategy, solve24, (numbers, ERROR_RATE, kwargs.pop("latency_s", 0.0)),
        scorer=verify, budget=budget, seed=0, expected_samples=3,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def success_table(problems: list[list[int]]) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {"single sample": {}}
    with enact.InMemoryStore():
        single = sum(run("best_of_n", p, 3).score == 1.0 for p in problems) / len(problems)
        for strategy in STRATEGIES:
            table[strategy] = {}
            for budget in BUDGETS:
                wins = sum(run(strategy, p, budget, stop_at=1.0).score == 1.0 for p in problems)
                table[strategy][budget] = wins / len(problems)
    table["single sample"] = {b: single for b in BUDGETS}
    return table


def storage_rows(problems: list[list[int]]) -> list[tuple[str, float, float, int, int, int]]:
    rows = []
    with enact.InMemoryStore():
        for strategy in STRATEGIES:
            sampled = reused = calls = stored = copied = trees = 0
            for p in problems:
                stats = run(strategy, p, 128).stats
                sampled += stats["sampled"]
                reused += stats["reused_samples"]
                calls += stats["reused_calls"]
                stored += stats["bytes_stored"]
                copied += stats["bytes_copied"]
                trees += stats["bytes_as_trees"]
            share = reused / (reused + sampled)
            rows.append((strategy, share, calls / len(problems), stored, copied, trees))
    return rows


def start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "enact.worker", "worker", "--loglevel=INFO",
         f"--hostname={name}@bench", "-c", str(WORKER_THREADS), "-P", "threads",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=REPO,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "ready." not in (log.read_text() if log.exists() else ""):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cluster_rows(
    problems: list[list[int]], budget: int, parallelism: int
) -> list[tuple[str, float, float, float]]:
    """Wall time of the searches with 1 and 2 workers (each ``WORKER_THREADS`` threads)."""
    tmp = Path(tempfile.mkdtemp(prefix="enact-bench-search-"))
    port = free_port_in(range(7500, 7600))
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    workers: list[subprocess.Popen[bytes]] = []
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        ENACT_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        ENACT_STORE_URL=f"file://{tmp / 'store'}",
        ENACT_IMPORTS="examples.game24",
    )
    rows = []
    try:
        wait_port(port)
        os.environ.update({k: env[k] for k in ("ENACT_REDIS_URL", "ENACT_STORE_URL")})
        import enact.worker as cluster
        from enact.worker.app import reconfigure

        cluster.runtime.reset()
        reconfigure()
        times: dict[tuple[str, int], list[float]] = {}
        # 1, 2, 1, 2 workers: the machine may be shared, so each count is measured
        # twice, interleaved, and the faster run is kept.
        for count in (1, 2, 1, 2):
            while len(workers) < count:
                name = f"w{len(workers)}"
                workers.append(start_worker(env, name, tmp / f"{name}.log"))
            while len(workers) > count:
                stop(workers.pop())
            with cluster.store():
                run("best_of_n", problems[0], 6, cluster=True)  # warm up
                for strategy in STRATEGIES:
                    start = time.perf_counter()
                    for p in problems:
                        run(strategy, p, budget, cluster=True, latency_s=LATENCY_S,
                            parallelism=parallelism, **CLUSTER_OPTIONS[strategy])
                    times.setdefault((strategy, count), []).append(time.perf_counter() - start)
        for strategy in STRATEGIES:
            t1, t2 = min(times[(strategy, 1)]), min(times[(strategy, 2)])
            rows.append((strategy, t1, t2, t1 / (2 * t2)))
    finally:
        for process in workers:
            stop(process)
        redis.terminate()
        redis.wait(10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10 puzzles, not 50")
    parser.add_argument("--no-cluster", action="store_true", help="skip the worker timings")
    parser.add_argument("--cluster-only", action="store_true", help="only the worker timings")
    parser.add_argument("--parallelism", type=int, default=CLUSTER_PARALLELISM,
                        help="rollouts per batch in the worker timings")  # fmt: skip
    opts = parser.parse_args()
    problems = puzzles(10 if opts.quick else 50, seed=24)
    if opts.cluster_only:
        cluster_table(problems, opts.quick, opts.parallelism)
        return
    print(f"Game of 24, {len(problems)} puzzles, toy LLM error rate {ERROR_RATE}, "
          f"parallelism {PARALLELISM}, seed 0, expected_samples 3")  # fmt: skip
    started = time.perf_counter()
    table = success_table(problems)
    print("\n(a) success rate (exact 24 found) against budget in sampled calls")
    print(f"{'strategy':<15}" + "".join(f"{b:>8}" for b in BUDGETS))
    for name, row in table.items():
        print(f"{name:<15}" + "".join(f"{row[b]:>8.0%}" for b in BUDGETS))
    for budget in BUDGETS:
        best_tree = max(table["beam"][budget], table["mcts"][budget])
        verdict = "met" if best_tree >= table["best_of_n"][budget] else "NOT met"
        print(f"  budget {budget}: max(beam, mcts) {best_tree:.0%} vs best-of-N "
              f"{table['best_of_n'][budget]:.0%}: {verdict}")  # fmt: skip
    print("\n(b) reuse and storage, budget 128, no early stop")
    print("  reused: share of the sampled calls in the rollouts' records that were reused")
    print("  copies: each rollout's records copied whole; trees: written out as nested documents")
    header = f"{'reused':>8}{'calls/search':>13}{'stored':>12}{'copies':>13}{'trees':>13}"
    print(f"{'strategy':<11}{header}")
    for name, share, calls, stored, copied, trees in storage_rows(problems):
        print(
            f"{name:<11}{share:>8.0%}{calls:>13.1f}{stored:>12,}"
            f"{copied:>12,}{'':1}{trees:>12,}"
            f"   {copied / stored:.1f}x / {trees / stored:.1f}x smaller"
        )
    print(f"  (local part: {time.perf_counter() - started:.1f} s)")
    if not opts.no_cluster:
        cluster_table(problems, opts.quick, opts.parallelism)


def cluster_table(problems: list[list[int]], quick: bool, parallelism: int) -> None:
    subset = problems[: 4 if quick else 8]
    budget = 128
    print(f"\n(c) wall time on real workers ({WORKER_THREADS} threads each), toy LLM latency "
          f"{LATENCY_S * 1000:.0f} ms, {len(subset)} puzzles, budget {budget}, "
          f"parallelism {parallelism}, beam_size 4")  # fmt: skip
    print(f"{'strategy':<15}{'1 worker':>10}{'2 workers':>11}{'efficiency':>12}")
    load = os.getloadavg()[0]
    for name, t1, t2, eff in cluster_rows(subset, budget, parallelism):
        print(f"{name:<15}{t1:>9.2f}s{t2:>10.2f}s{eff:>12.0%}")
    print(f"  (best of two interleaved runs each; load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

"""Durable flows benchmark (issue 15): checkpoint cost per step, latency, recovery.

Workload: a flow of n trivial tracked steps, durable after each (a checkpoint per
step), at n = 100 / 1,000 / 10,000. Measured in the same run:

* enact on a real Celery worker (its own redis-server on a free port in 7200-7299,
  a file store), from ``submit`` to done, with ``ENACT_FSYNC`` off and on;
* the same flow run in this process (the engine and the file store alone);
* LangGraph with its SQLite checkpointer, the same workload, in a subprocess of
  the virtualenv /tmp/lgvenv (``python -m venv /tmp/lgvenv; /tmp/lgvenv/bin/pip
  install langgraph langgraph-checkpoint-sqlite``); skipped, saying so, if absent.

It prints ms and bytes per step, the ratios (LangGraph / enact: above 1, enact is
cheaper), how flat the cost is (10,000 steps against 100), the bytes written by a
10,000-step flow against its final record (everything reachable from the finished
invocation), answer-to-done latency over 20 flows, and the recovery time after
kill -9 measured by ``bench/flows_recovery.py`` (issue 15, helper 15c) if present.

    python bench/bench_flows.py [--quick] [--profile] [--no-recovery] [--repeat 3]

Each cell below 10,000 steps is the best of ``--repeat`` runs (the machine's CPUs
are shared: other work only adds time); 10,000 steps run once. Every enact run is
followed by a LangGraph run of the same size, so both see the same load, and
LangGraph's cell is the best of all its runs of that size (twice as many as enact's).

The worker imports this module (``ENACT_IMPORTS=bench.bench_flows``) for the
registered functions below; everything else happens under ``main``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import enact  # noqa: E402
from bench.bench_worker import free_port_in, wait_port  # noqa: E402

LANGGRAPH_PYTHON = Path("/tmp/lgvenv/bin/python")
SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (100, 1_000)
LATENCY_FLOWS = 20
RECOVERY_KILLS = 10
PORTS = range(7200, 7300)

# The workload (the worker imports these) -----------------------------------------


@enact.register
def flow_step(x: int) -> int:
    """A trivial step."""
    return x + 1


@enact.register
def steps_flow(n: int, start: int) -> int:
    """``n`` tracked steps; ``start`` makes every flow's records its own (no sharing)."""
    x = start
    for _ in range(n):
        x = flow_step(x)
    return x


@enact.register
def ask_number() -> int:
    return enact.request_input(requested_type=int, for_value="a number")


@enact.register
def answered_flow() -> int:
    return ask_number() + 1


# Measuring ----------------------------------------------------------------------


def directory_bytes(root: Path) -> int:
    """Bytes of every object file under ``root`` (the store's objects)."""
    total = 0
    for directory, _, files in os.walk(root / "objects"):
        for name in files:
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                pass
    return total


def reachable_bytes(root: Path, digest: str) -> int:
    """Bytes of every object reachable from ``digest`` (a record and all it links)."""
    from enact.errors import DeserializationError
    from enact.serialization import packed_links
    from enact.stores.file import FileBackend

    backend = FileBackend(root)
    seen, frontier, total = {digest}, [digest], 0
    while frontier:
        batch, frontier = frontier[:5000], frontier[5000:]
        for data in backend.get(batch):
            assert data is not None
            total += len(data)
            try:
                links = packed_links(data)
            except DeserializationError:
                continue
            for link in links:
                if link not in seen:
                    seen.add(link)
                    frontier.append(link)
    return total


class Cell:
    """ms and bytes per step of one run (and the totals behind them)."""

    def __init__(self, n: int, seconds: float, written: int, final: int | None = None) -> None:
        self.n, self.seconds, self.written, self.final = n, seconds, written, final

    @property
    def ms(self) -> float:
        return self.seconds * 1000 / self.n

    @property
    def bytes(self) -> float:
        return self.written / self.n

    def __str__(self) -> str:
        return f"{self.ms:6.2f} ms {self.bytes:6.0f} B"


def in_process(n: int, fsync: bool, start: int) -> Cell:
    """The flow in this process: engine, checkpoint and file store, nothing else."""
    root = Path(tempfile.mkdtemp(prefix="enact-bench-flows-"))
    store = enact.Store(enact.FileBackend(root, fsync=fsync))
    with store:
        began = time.perf_counter()
        inv = enact.invoke(steps_flow, (n, start), on_step=lambda run: run.checkpoint())
        seconds = time.perf_counter() - began
    assert inv.get_output() == start + n
    return Cell(n, seconds, directory_bytes(root), reachable_bytes(root, inv.digest))


def repeated(
    n: int, repeats: int, measure: Callable[[], Cell], also: Callable[[], None] = lambda: None
) -> Cell:
    """The best of ``repeats`` runs of ``measure`` (one at 10,000 steps and above),
    each followed by ``also()`` (a LangGraph run of the same size)."""
    cells = []
    for _ in range(repeats if n < 10_000 else 1):
        cells.append(measure())
        also()
    return best(cells)


def profile_in_process(n: int) -> None:
    """cProfile of the per-step path (engine, checkpoint, file store put)."""
    import cProfile
    import pstats

    root = Path(tempfile.mkdtemp(prefix="enact-bench-flows-"))
    store = enact.Store(enact.FileBackend(root))
    profiler = cProfile.Profile()
    with store:
        profiler.enable()
        enact.invoke(steps_flow, (n, 7 << 40), on_step=lambda run: run.checkpoint())
        profiler.disable()
    print(f"\nprofile of a {n}-step flow in this process (top 15 by own time):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


LANGGRAPH_SCRIPT = r'''
import json, os, sqlite3, sys, tempfile, time
from typing import TypedDict
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, StateGraph

class State(TypedDict):
    x: int

def run(n):
    directory = tempfile.mkdtemp(prefix="lg-bench-")
    conn = sqlite3.connect(os.path.join(directory, "checkpoints.sqlite"), check_same_thread=False)
    graph = StateGraph(State)
    graph.add_node("step", lambda state: {"x": state["x"] + 1})
    graph.set_entry_point("step")
    graph.add_conditional_edges("step", lambda state: "step" if state["x"] < n else END)
    app = graph.compile(checkpointer=SqliteSaver(conn))
    config = {"configurable": {"thread_id": "bench"}, "recursion_limit": n + 10}
    began = time.perf_counter()
    out = app.invoke({"x": 0}, config, durability="sync")
    seconds = time.perf_counter() - began
    conn.close()
    assert out["x"] == n
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    return {"n": n, "seconds": seconds, "bytes": size}

run(10)  # warm up, as enact's worker is
for line in sys.stdin:  # one flow per line: its number of steps
    print(json.dumps(run(int(line))), flush=True)
'''


def best(cells: list[Cell]) -> Cell:
    """The fastest run: the CPUs are shared with other work, which only adds time."""
    return min(cells, key=lambda c: c.seconds)


class LangGraph:
    """LangGraph's side: a process of its own virtualenv that runs a flow per request,
    so its runs interleave with enact's (the same load on the machine for both)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.cells: dict[int, list[Cell]] = {}
        self.problem = ""
        if not LANGGRAPH_PYTHON.exists():
            self.problem = (
                f"skipped: no {LANGGRAPH_PYTHON} (python -m venv /tmp/lgvenv; "
                "/tmp/lgvenv/bin/pip install langgraph langgraph-checkpoint-sqlite)"
            )
            return
        self.process = subprocess.Popen(
            [str(LANGGRAPH_PYTHON), "-c", LANGGRAPH_SCRIPT], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=tempfile.gettempdir(), start_new_session=True,
        )  # fmt: skip

    def run(self, n: int) -> None:
        if self.process is None or self.problem:
            return
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(f"{n}\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
            result = json.loads(line)
        except (OSError, ValueError):
            err = self.process.stderr.read() if self.process.stderr else ""
            self.problem = f"skipped: LangGraph failed: {err.strip().splitlines()[-1:]}"
            return
        self.cells.setdefault(n, []).append(Cell(n, result["seconds"], result["bytes"]))

    def results(self) -> dict[int, Cell] | str:
        return self.problem or {n: best(cells) for n, cells in self.cells.items()}

    def close(self) -> None:
        if self.process is not None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            stop(self.process)  # type: ignore[arg-type]


# Servers of our own ------------------------------------------------------------------


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process this benchmark started (its own session), by pid."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class Worker:
    """A real Celery worker process on our Redis and a file store."""

    def __init__(self, env: dict[str, str], name: str, log: Path) -> None:
        self.name = name
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "enact.worker", "worker", "-P", "threads",
             "-c", "4", f"--hostname={name}@%h", "--loglevel=WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip

    def wait_ready(self) -> None:
        import enact.worker

        deadline = time.monotonic() + 60
        while not any(self.name in host for reply in enact.worker.app.control.ping(timeout=0.5)
                      for host in reply):  # fmt: skip
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not come up (see {self.log.name})")

    def stop(self) -> None:
        stop(self.process)
        self.log.close()


def on_worker(n: int, start: int, root: Path) -> Cell:
    """Submit the flow to the worker; seconds from ``submit`` to done."""
    import enact.worker

    before = directory_bytes(root)
    began = time.perf_counter()
    flow = enact.worker.submit(steps_flow, n, start)
    status = flow.wait(600)
    seconds = time.perf_counter() - began
    assert status == "done", (status, flow.record())
    written = directory_bytes(root) - before
    head = flow.record().head
    assert head is not None
    return Cell(n, seconds, written, reachable_bytes(root, head))


def answer_latency(flows: int) -> list[float]:
    """Seconds from ``answer`` to the resumed flow being done, for each flow."""
    import enact.worker

    handles = [enact.worker.submit(answered_flow) for _ in range(flows)]
    for flow in handles:
        assert flow.wait(120) == "waiting"
    latencies = []
    for i, flow in enumerate(handles):
        [request] = enact.worker.pending_inputs(flow.id)
        began = time.perf_counter()
        enact.worker.answer(request.id, i)
        assert flow.wait(60) == "done"
        latencies.append(time.perf_counter() - began)
        assert flow.result() == i + 1
    return sorted(latencies)


def recovery() -> str:
    """The row of 15c's recovery measurement, or why there is none."""
    try:
        module = importlib.import_module("bench.flows_recovery")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench.flows_recovery",):
            raise
        return "skipped: bench/flows_recovery.py is absent (issue 15, helper 15c)"
    measure: Callable[..., dict[str, Any]] = module.measure_recovery
    result = measure(kills=RECOVERY_KILLS)
    return (
        f"p50 {result['p50']:.1f} s  p95 {result['p95']:.1f} s over {RECOVERY_KILLS} kills "
        "(target p95 <= 60 s)"
    )


# The run ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 steps only")
    parser.add_argument("--profile", action="store_true", help="cProfile the per-step path")
    parser.add_argument("--no-recovery", action="store_true", help="skip the kill -9 row")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per cell below 10,000 steps (the best)"
    )
    opts = parser.parse_args()
    sizes = QUICK_SIZES if opts.quick else SIZES
    tmp = Path(tempfile.mkdtemp(prefix="enact-bench-flows-"))
    seed = iter(range(1, 1000))

    def start() -> int:
        return next(seed) << 40  # every flow's values (so records) differ

    results: dict[str, dict[int, Cell]] = {}
    lg = LangGraph()
    try:
        measure(opts, sizes, tmp, start, lg, results)
    finally:
        lg.close()
    recovery_row = "skipped (--no-recovery)" if opts.no_recovery else recovery()
    print_table(sizes, results, lg.results(), LATENCIES, recovery_row)
    if opts.profile:
        profile_in_process(3_000)


LATENCIES: list[float] = []


def measure(
    opts: argparse.Namespace,
    sizes: tuple[int, ...],
    tmp: Path,
    start: Callable[[], int],
    lg: LangGraph,
    results: dict[str, dict[int, Cell]],
) -> None:
    """Every row; each enact run is followed by a LangGraph run of the same size."""
    for fsync in (False, True):
        label = f"enact in process, fsync {'on' if fsync else 'off'}"
        results[label] = {
            n: repeated(
                n, opts.repeat, lambda n=n, fsync=fsync: in_process(n, fsync, start()),
                lambda n=n: lg.run(n),
            )  # fmt: skip
            for n in sizes
        }
        print(f"  measured {label}", file=sys.stderr)

    redis_port = free_port_in(PORTS)
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_port(redis_port)
        # One store and one client configuration for both workers (the client
        # commits each flow's request to the store the worker reads).
        root = tmp / "store"
        base_env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            ENACT_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            ENACT_STORE_URL=f"file://{root}",
            ENACT_IMPORTS="bench.bench_flows",
            ENACT_CHECKPOINT_INTERVAL_S="0",
        )
        os.environ.update(base_env)
        for fsync in (False, True):
            env = dict(base_env, ENACT_FSYNC="1" if fsync else "0")
            worker = Worker(env, f"flows{int(fsync)}", tmp / f"worker-{int(fsync)}.log")
            try:
                worker.wait_ready()
                for _ in range(5):  # warm up: connections, imports, the first flows
                    on_worker(10, start(), root)
                label = f"enact worker, fsync {'on' if fsync else 'off'}"
                results[label] = {
                    n: repeated(
                        n, opts.repeat, lambda n=n: on_worker(n, start(), root),
                        lambda n=n: lg.run(n),
                    )  # fmt: skip
                    for n in sizes
                }
                print(f"  measured {label}", file=sys.stderr)
                if not fsync:
                    LATENCIES[:] = answer_latency(LATENCY_FLOWS)
            finally:
                worker.stop()
    finally:
        stop(redis)


def print_table(
    sizes: tuple[int, ...],
    results: dict[str, dict[int, Cell]],
    lg: dict[int, Cell] | str,
    latencies: list[float],
    recovery_row: str,
) -> None:
    width = 34
    print("\nenact durable flows: a flow of n trivial steps, durable after each "
          "(file store; worker: 1 Celery worker, 4 threads, own redis-server)")  # fmt: skip
    print("".ljust(width) + "".join(f"n={n:,}".ljust(22) for n in sizes))
    rows = dict(results)
    if isinstance(lg, dict):
        rows["LangGraph + SqliteSaver"] = lg
    for label, cells in rows.items():
        print(label.ljust(width) + "".join(str(cells[n]).ljust(22) for n in sizes))
    if isinstance(lg, dict):
        for label in ("enact worker, fsync off", "enact worker, fsync on"):
            cells = results[label]
            print(f"LangGraph / {label[6:]}".ljust(width) + "".join(
                f"ms x{lg[n].ms / cells[n].ms:4.2f}  B x{lg[n].bytes / cells[n].bytes:4.2f}"
                .ljust(22) for n in sizes))  # fmt: skip
        print("  (ratios above 1: enact is cheaper; target: above 1 for ms and bytes at every n)")
    else:
        print(f"LangGraph: {lg}")
    big, small = sizes[-1], sizes[0]
    for label, cells in results.items():
        ms, size = cells[big].ms / cells[small].ms, cells[big].bytes / cells[small].bytes
        print(
            f"flatness {label}: {big:,} vs {small:,} steps: ms x{ms:.2f}, bytes x{size:.2f} "
            "(target <= 1.5)"
        )
    for label in ("enact worker, fsync off", "enact in process, fsync off"):
        cell = results[label][big]
        assert cell.final is not None
        print(
            f"total written vs final record, {label}, {big:,} steps: "
            f"{cell.written / 1e6:.2f} MB / {cell.final / 1e6:.2f} MB = "
            f"x{cell.written / cell.final:.2f} (target <= 3)"
        )
    if latencies:
        p50 = statistics.median(latencies) * 1000
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)] * 1000
        print(
            f"answer -> done over {len(latencies)} flows: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
            "(target p50 <= 30 ms)"
        )
    print(f"recovery after kill -9: {recovery_row}")


if __name__ == "__main__":
    # Run as the importable module, so the flows are registered under its name
    # (the worker imports ``bench.bench_flows``), not under ``__main__``.
    importlib.import_module("bench.bench_flows").main()

"""The call engine on the seed's ``roll_sum``: ours against the original enact 0.4.15.

For ``roll_sum`` with 1,000 and 10,000 ``roll_die`` calls, on the in-memory store
and on a file store in a temporary directory, measures:

* ``invoke``: microseconds per tracked call (the ``roll_die`` calls plus ``roll_sum``);
* ``rewind(1)`` then ``replay()``: microseconds per recorded child, with the
  records warm (the store that recorded them) and, for the file store, cold (a
  new store object on the same directory, as another process would see it).

The same script runs against the original enact 0.4.15 from PyPI, installed in
its own Python 3.12 virtual environment (``--orig-venv``, created on first use;
``wrapt<2`` is pinned because 0.4.15 breaks on wrapt 2). Its code is only ever
run there, in a subprocess. Each figure is the best of ``--repeat`` runs, each in
a fresh store. Targets: at most 10 us per tracked call in memory, at most 5 us
per recorded child for replay.

Run: ``python bench/bench_invoke.py`` (``--no-original`` to skip the baseline).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import time

ORIG_VERSION = "0.4.15"
DEFAULT_VENV = "/tmp/enact-orig"
DEFAULT_PYTHON312 = os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python")

# Runs both in this interpreter (against our enact) and in the original's venv,
# so both sides measure exactly the same workload in the same way. It uses only
# API both versions share: register, invoke, rewind, replay, stores.
WORKLOAD = textwrap.dedent(
    '''
    import gc
    import json
    import random
    import tempfile
    import time

    import enact


    @enact.register
    def roll_die(sides: int) -> int:
        """Roll a die."""
        return random.randint(1, sides)


    @enact.register
    def roll_sum(num_rolls: int) -> int:
        """Roll dice."""
        return sum(roll_die(6) for _ in range(num_rolls))


    def timed(fn):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result


    def check(invocation, store, n):
        with store:
            children = list(invocation.get_children())
            assert len(children) == n, (len(children), n)
            assert invocation.get_output() == sum(c.get_output() for c in children)


    def measure(kind, n, repeat):
        best = {"invoke": float("inf"), "replay": float("inf"), "replay_cold": float("inf")}
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                store = enact.InMemoryStore() if kind == "memory" else enact.FileStore(tmp)
                with store:
                    seconds, invocation = timed(lambda: enact.invoke(roll_sum, (n,)))
                    best["invoke"] = min(best["invoke"], seconds / (n + 1))
                    seconds, replayed = timed(lambda: invocation.rewind(1).replay())
                    best["replay"] = min(best["replay"], seconds / n)
                check(replayed, store, n)
                if kind == "file":
                    cold = enact.FileStore(tmp)
                    with cold:
                        seconds, replayed = timed(lambda: invocation.rewind(1).replay())
                        best["replay_cold"] = min(best["replay_cold"], seconds / n)
                    check(replayed, cold, n)
        return {k: v * 1e6 for k, v in best.items() if v != float("inf")}


    def main(sizes, kinds, repeat):
        results = {}
        for n in sizes:
            for kind in kinds:
                results[f"{kind}/{n}"] = measure(kind, n, repeat(n))
        return results
    '''
)


def run_ours(sizes: list[int], repeat: int) -> dict[str, dict[str, float]]:
    """Run the workload here, against our enact (this checkout first on the path)."""
    import types

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    # Replay finds registered functions by module and name: give the workload a module.
    module = types.ModuleType("bench_workload")
    sys.modules["bench_workload"] = module
    exec(compile(WORKLOAD, "bench_workload", "exec"), module.__dict__)
    return module.main(sizes, ["memory", "file"], lambda n: repeat)  # type: ignore[no-any-return]


def _without_pythonpath() -> dict[str, str]:
    """The environment for the original's interpreter: it must import its own enact,
    not the checkout a ``PYTHONPATH`` points at."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def ensure_venv(venv: str, python312: str) -> tuple[str | None, str]:
    """The venv's python with enact 0.4.15 installed, or ``None`` and the reason."""
    python = os.path.join(venv, "bin", "python")
    probe = [python, "-c", "import enact, importlib.metadata as m; print(m.version('enact'))"]
    try:
        version = subprocess.run(
            probe, capture_output=True, text=True, timeout=60, env=_without_pythonpath()
        )
        if version.returncode == 0 and version.stdout.strip() == ORIG_VERSION:
            return python, ""
    except OSError:
        pass
    if not os.path.exists(python312):
        return None, f"no Python 3.12 interpreter at {python312}"
    steps = [
        [python312, "-m", "venv", venv],
        [python, "-m", "pip", "install", "-q", f"enact=={ORIG_VERSION}", "wrapt<2"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            return None, f"`{' '.join(step)}` failed: {tail[0]}"
    return python, ""


def run_original(
    python: str, sizes: list[int], repeat: int, timeout_s: float
) -> tuple[dict[str, dict[str, float]] | None, str]:
    # The original takes ~1 ms per call: one run at 10,000 calls is plenty.
    script = WORKLOAD + textwrap.dedent(
        f"""
        print(json.dumps(main({sizes!r}, ["memory", "file"],
                              lambda n: {repeat} if n <= 1000 else 1)))
        """
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench_workload.py")
        with open(path, "w") as f:
            f.write(script)
        try:
            done = subprocess.run(
                [python, path],
                capture_output=True, text=True, timeout=timeout_s, cwd=tmp,
                env=_without_pythonpath(),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None, f"the original did not finish within {timeout_s:.0f} s"
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return None, f"the original failed: {tail[0]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def ratio(ours: float | None, orig: float | None) -> str:
    if ours is None or orig is None:
        return "n/a"
    return f"{ours / orig:.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-original", action="store_true")
    parser.add_argument("--orig-venv", default=DEFAULT_VENV)
    parser.add_argument("--python312", default=DEFAULT_PYTHON312)
    parser.add_argument("--orig-timeout-s", type=float, default=900)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    ours = run_ours(args.sizes, args.repeat)
    orig: dict[str, dict[str, float]] | None = None
    why = "skipped (--no-original)"
    if not args.no_original:
        python, why = ensure_venv(args.orig_venv, args.python312)
        if python is not None:
            orig, why = run_original(python, args.sizes, min(args.repeat, 2), args.orig_timeout_s)

    rows = []
    for key in ours:
        kind, n = key.split("/")
        for metric, label in (
            ("invoke", "invoke, us/tracked call"),
            ("replay", "rewind(1)+replay, us/child"),
            ("replay_cold", "  same, reopened store"),
        ):
            mine = ours[key].get(metric)
            if mine is None:
                continue
            theirs = None if orig is None else orig.get(key, {}).get(metric)
            name = f"{kind:6} {int(n):>6,}"
            rows.append((name, label, fmt(mine), fmt(theirs), ratio(mine, theirs)))

    header = ("store  calls", "measure", "ours", f"enact {ORIG_VERSION}", "ours/orig")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    def cells(row: tuple[str, ...]) -> str:
        padded = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(padded)

    line = cells(header)
    print(line)
    print("-" * len(line))
    for row in rows:
        print(cells(row))
    print()
    print(
        f"ours: Python {sys.version.split()[0]}, best of {args.repeat}; "
        + (
            f"enact {ORIG_VERSION}: Python 3.12 venv {args.orig_venv}, best of "
            f"{min(args.repeat, 2)} (1 at 10,000 calls)"
            if orig is not None
            else f"enact {ORIG_VERSION}: n/a ({why})"
        )
    )
    memory = [ours[k] for k in ours if k.startswith("memory/")]
    worst_invoke = max(m["invoke"] for m in memory)
    worst_replay = max(m["replay"] for m in memory)
    print(
        f"targets (in memory): invoke <= 10 us/call: {fmt(worst_invoke)} "
        f"{'OK' if worst_invoke <= 10 else 'MISSED'}; replay <= 5 us/child: "
        f"{fmt(worst_replay)} {'OK' if worst_replay <= 5 else 'MISSED'}"
    )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    gc.collect()
    main()

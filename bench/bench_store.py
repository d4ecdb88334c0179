"""Commit and checkout rates of the in-memory and file stores, against raw baselines.

For N small resources (default 10,000; each a registered dataclass with a str,
an int, a float and a short list), measures in one run:

* ``commit``: objects/s through ``Store.commit`` (canonical msgpack encoding,
  SHA-256, backend put; for the file store a temp file + rename per object);
* ``checkout``: objects/s through ``Store.checkout`` (backend get, digest check,
  decode); for the file store from a new store object on the same directory, so
  nothing comes from the store's read cache (the OS page cache is warm);
* bytes per object: the packed size, and for the file store the disk space used
  (allocated blocks of the object files and of their shard directories);
* baselines doing the least that does the same job: ``pickle.dumps`` + dict
  insert (memory) and a plain ``open().write()`` of the same packed bytes to the
  same sharded paths (file), with ``pickle.loads`` / ``read_bytes`` for reading.
  The ratio column is enact's time over the baseline's: how much the
  encoding, hashing, verification and atomic writes cost.

Each figure is the best of ``--repeat`` runs (``--file-repeat`` for the file
store, whose runs take most of the time), each in a fresh store. File figures
depend on the disk: the ratio column is the number to compare across machines.
Run: ``python bench/bench_store.py`` (``-n`` to change the size).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import enact
from enact.serialization import pack_value


@enact.register
@dataclasses.dataclass
class Sample(enact.Resource):
    name: str
    index: int
    score: float
    tags: list


def make_values(n: int) -> list[Sample]:
    return [Sample(f"sample-{i}", i, i * 0.5, ["a", "b", str(i % 7)]) for i in range(n)]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def disk_usage(root: Path) -> tuple[int, int]:
    """Bytes allocated on disk under ``root``: (files, directories)."""
    files = directories = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            directories += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
        for name in filenames:
            files += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return files, directories


def bench_memory(values: list[Sample]) -> dict[str, float]:
    store = enact.InMemoryStore()
    commit_s, refs = timed(lambda: [store.commit(v) for v in values])
    checkout_s, out = timed(lambda: [store.checkout(r) for r in refs])
    assert out == values

    table: dict[str, bytes] = {}

    def pickle_put() -> list[str]:
        keys = []
        for i, v in enumerate(values):
            key = str(i)
            table[key] = pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            keys.append(key)
        return keys

    base_commit_s, keys = timed(pickle_put)
    base_checkout_s, base_out = timed(lambda: [pickle.loads(table[k]) for k in keys])
    assert base_out == values
    return {
        "commit": commit_s,
        "checkout": checkout_s,
        "base_commit": base_commit_s,
        "base_checkout": base_checkout_s,
        "pickle_bytes": sum(len(b) for b in table.values()) / len(values),
    }


def bench_file(values: list[Sample], workdir: Path, baseline_first: bool) -> dict[str, float]:
    root = workdir / "enact"
    base_root = workdir / "raw"
    packed = [pack_value(v)[0] for v in values]
    digests = [enact.resource_digest(v) for v in values]

    def run_enact() -> dict[str, float]:
        store = enact.FileStore(root)
        commit_s, refs = timed(lambda: [store.commit(v) for v in values])
        fresh = enact.FileStore(root)  # no read cache: every object comes from its file
        checkout_s, out = timed(lambda: [fresh.checkout(r) for r in refs])
        assert out == values and [r.digest for r in refs] == digests
        return {"commit": commit_s, "checkout": checkout_s}

    # Baseline: the same packed bytes, the same sharded layout, a plain write.
    def run_raw() -> dict[str, float]:
        def raw_write() -> list[Path]:
            paths = []
            for digest, data in zip(digests, packed):
                directory = base_root / digest[:2] / digest[2:4]
                directory.mkdir(parents=True, exist_ok=True)
                path = directory / digest
                with open(path, "wb") as handle:
                    handle.write(data)
                paths.append(path)
            return paths

        commit_s, paths = timed(raw_write)
        checkout_s, raw = timed(lambda: [p.read_bytes() for p in paths])
        assert raw == packed
        return {"base_commit": commit_s, "base_checkout": checkout_s}

    # Alternate which goes first: the disk is shared, and order matters on it.
    first, second = (run_raw, run_enact) if baseline_first else (run_enact, run_raw)
    result = {**first(), **second()}
    files, directories = disk_usage(root / "objects")
    result["file_bytes"] = files / len(values)
    result["dir_bytes"] = directories / len(values)
    return result


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: min(r[k] for r in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of resources")
    parser.add_argument("--repeat", type=int, default=3, help="in-memory runs (best kept)")
    parser.add_argument("--file-repeat", type=int, default=2, help="file store runs (best kept)")
    args = parser.parse_args(argv)
    values = make_values(args.n)
    packed_sizes = [len(pack_value(v)[0]) for v in values]

    memory = best([bench_memory(values) for _ in range(args.repeat)])
    file_runs = []
    for run in range(args.file_repeat):
        workdir = Path(tempfile.mkdtemp(prefix="enact-bench-store-"))
        try:
            file_runs.append(bench_file(values, workdir, baseline_first=run % 2 == 1))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    file = best(file_runs)

    n = args.n
    rate = lambda seconds: n / seconds  # noqa: E731
    print(f"enact store benchmark: {n:,} small resources, best of {args.repeat} runs "
          f"(file store: {args.file_repeat})")  # fmt: skip
    print(f"packed size: {sum(packed_sizes) / n:.1f} bytes/object "
          f"(pickle: {memory['pickle_bytes']:.1f})")  # fmt: skip
    print()
    header = f"{'store':<8} {'operation':<9} {'enact obj/s':>12} {'baseline obj/s':>15} " \
             f"{'ratio':>6}  baseline"  # fmt: skip
    print(header)
    print("-" * len(header))
    baselines = {
        ("memory", "commit"): "pickle.dumps + dict insert",
        ("memory", "checkout"): "dict get + pickle.loads",
        ("file", "commit"): "open().write() of the same bytes",
        ("file", "checkout"): "read_bytes() of the same files",
    }
    for (store, op), baseline in baselines.items():
        figures = memory if store == "memory" else file
        seconds, base_seconds = figures[op], figures[f"base_{op}"]
        print(
            f"{store:<8} {op:<9} {rate(seconds):>12,.0f} {rate(base_seconds):>15,.0f} "
            f"{seconds / base_seconds:>5.1f}x  {baseline}"
        )
    print()
    print(f"file store on disk: {file['file_bytes'] + file['dir_bytes']:,.0f} bytes/object "
          f"({file['file_bytes']:,.0f} in object files, {file['dir_bytes']:,.0f} in "
          f"objects/ab/cd/ shard directories)")  # fmt: skip


if __name__ == "__main__":
    main()

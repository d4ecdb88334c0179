"""Storage that stays small: forks deduplicated, garbage collected, indexes compacted.

Starts its own moto server on a free loopback port and, in one run, on S3:

1. records one run of ``experiment()``: 100 tracked calls, then a random sample;
2. forks it 1,000 times (rewind the sample, replay: the 100-call prefix is
   reused, the sample drawn again), each fork committed on its own (one pack
   and one index each);
3. compares the bytes S3 holds with what storing every fork's full record would
   take (the baseline: no sharing), which is the deduplication ratio;
4. times a cold reader's start-up (a new backend listing and loading every index)
   after 100 and after 1,000 forks, then after ``enact.gc.compact`` merged the
   indexes;
5. keeps 100 forks (the roots) and collects the other 900 with ``enact.gc.collect``
   (``offline``: nothing else writes): bytes reclaimed, and throughput. The mark
   is compared with reading the live objects once, and fsck (which reads every
   copy) with reading every object once, each through a backend that has loaded
   the indexes (the baselines; gc and fsck list them in a phase of their own).

Run: ``python bench/bench_gc.py [--forks 1000] [--prefix-calls 100]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

import enact  # noqa: E402
import enact.gc  # noqa: E402
from bench.bench_s3 import moto_server  # noqa: E402
from enact.serialization import packed_links  # noqa: E402
from enact.store import iter_links  # noqa: E402
from enact.stores.s3 import S3Backend  # noqa: E402

PREFIX_CALLS = 100


@enact.register
def step(i: int) -> dict:
    """One deterministic step of an experiment, with a payload like a prompt's."""
    return {"step": i, "notes": f"result of step {i} " * 8}


@enact.register
def sample() -> float:
    """The random part: what each fork draws again."""
    return random.random()


@enact.register
def experiment(calls: int) -> float:
    """``calls`` tracked steps, then a sample."""
    total = sum(len(step(i)["notes"]) for i in range(calls))
    return total + sample()


def s3_bytes(client: Any, bucket: str, prefix: str) -> tuple[int, int, int]:
    """(bytes, packs, indexes) stored under a prefix."""
    size = packs = indexes = 0
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", ()):
            size += item["Size"]
            packs += "/packs/" in item["Key"]
            indexes += "/index/" in item["Key"]
    return size, packs, indexes


def record_bytes(store: enact.Store, root: str) -> int:
    """Bytes of every object a record reaches, counted as if stored on its own."""
    seen, frontier, size = set(), [root], 0
    while frontier:
        digest = frontier.pop()
        if digest in seen:
            continue
        seen.add(digest)
        data = store.get_object(digest)
        size += len(data)
        frontier += packed_links(data)
    return size


def cold_start_s(bucket: str, endpoint: str, probe: str, repeat: int = 3) -> float:
    """Median seconds for a new backend to list and load every index."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with S3Backend(bucket, "gc", endpoint_url=endpoint) as reader:
            assert reader.has([probe]) == [True]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def run(endpoint: str, forks: int, prefix_calls: int) -> list[tuple[str, str, str]]:
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )  # fmt: skip
    bucket = "enact-bench-gc"
    client.create_bucket(Bucket=bucket)
    rows: list[tuple[str, str, str]] = []

    def backend() -> S3Backend:
        return S3Backend(bucket, "gc", endpoint_url=endpoint)

    fork_roots: list[str] = []
    cold_small = 0.0
    first = max(1, forks // 10)
    started = time.perf_counter()
    with enact.Store(backend()):
        rewound = enact.invoke(experiment, (prefix_calls,)).rewind(1)
        for n in range(forks):
            fork_roots.append(rewound.replay().digest)  # one put, one index each
            if n + 1 == first:
                cold_small = cold_start_s(bucket, endpoint, fork_roots[0])
    commit_s = time.perf_counter() - started
    print(f"committed {forks} forks in {commit_s:.1f}s", file=sys.stderr)

    stored, packs, indexes = s3_bytes(client, bucket, "gc/")
    reader = enact.Store(backend())
    full = sum(record_bytes(reader, root) for root in fork_roots)
    rows.append((f"{forks} forks of a {prefix_calls}-call prefix: bytes in S3",
                 f"{stored:,}", f"{full / stored:.1f}x smaller than full records"))  # fmt: skip
    rows.append(("  storing each fork's full record (baseline)", f"{full:,}", "1.0x"))

    cold_many = cold_start_s(bucket, endpoint, fork_roots[0])
    rows.append((f"cold reader start-up, {first + 1} indexes",
                 f"{cold_small * 1000:.0f} ms", "1.0x (baseline)"))  # fmt: skip
    rows.append((f"cold reader start-up, {indexes} indexes", f"{cold_many * 1000:.0f} ms",
                 f"{cold_many / cold_small:.1f}x"))  # fmt: skip
    report, compact_s = timed(lambda: enact.gc.compact(backend()))
    cold_compacted = cold_start_s(bucket, endpoint, fork_roots[0])
    rows.append((f"  after compaction ({report.indexes_before} -> {report.indexes_after} "
                 f"indexes, {compact_s:.1f}s)", f"{cold_compacted * 1000:.0f} ms",
                 f"{cold_compacted / cold_small:.2f}x"))  # fmt: skip

    # Throughput, each against reading the same objects once (warm: indexes loaded).
    keep = fork_roots[: max(1, forks // 10)]
    everything = list(backend().inventory(0.0).digests())
    live = list(iter_links(enact.Store(backend()), keep))
    warm = backend()
    warm.has(everything[:1])
    _, read_live_s = timed(lambda: warm.get(live))
    warm = backend()
    warm.has(everything[:1])
    _, read_all_s = timed(lambda: warm.get(everything))
    checked, fsck_s = timed(lambda: enact.gc.fsck(backend()))
    assert checked.ok

    gc, gc_s = timed(lambda: enact.gc.collect(backend(), keep, grace_s=0, offline=True))
    after, packs_after, indexes_after = s3_bytes(client, bucket, "gc/")
    rows.append((f"gc: keep {len(keep)} forks, drop {forks - len(keep)}",
                 f"{stored - after:,} B reclaimed",
                 f"{(stored - after) / stored:.0%} of the store"))  # fmt: skip
    rows.append(("  bytes in S3 after gc", f"{after:,}",
                 f"packs {packs} -> {packs_after}, indexes {indexes} -> {indexes_after}"))
    rows.append(("  objects: stored, marked live, deleted",
                 f"{gc.objects:,} / {gc.marked:,} / {gc.deleted:,}", ""))  # fmt: skip
    live_rate = len(live) / read_live_s
    rows.append((f"read the {len(live):,} live objects once (baseline)",
                 f"{live_rate:,.0f} objects/s", "1.0x"))  # fmt: skip
    rows.append(("gc mark (reads and walks them)", f"{gc.marked_per_s:,.0f} objects/s",
                 f"{gc.marked_per_s / live_rate:.2f}x"))  # fmt: skip
    rows.append((f"gc end to end ({gc_s:.2f}s: list, mark, sweep)",
                 f"{gc.objects / gc_s:,.0f} objects/s", ""))  # fmt: skip
    all_rate = len(everything) / read_all_s
    rows.append((f"read all {len(everything):,} objects once (baseline)",
                 f"{all_rate:,.0f} objects/s", "1.0x"))  # fmt: skip
    fsck_rate = checked.copies / fsck_s
    rows.append((f"fsck ({fsck_s:.2f}s: list, read and verify every copy)",
                 f"{fsck_rate:,.0f} objects/s", f"{fsck_rate / all_rate:.2f}x"))  # fmt: skip
    with enact.Store(backend()) as fresh:
        for root in keep[:5]:  # what was kept still reads, through a fresh reader
            assert fresh.has(root)
    return rows


def print_table(rows: list[tuple[str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    header = ("measure", "value", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forks", type=int, default=1000)
    parser.add_argument("--prefix-calls", type=int, default=PREFIX_CALLS)
    args = parser.parse_args(argv)
    with moto_server() as endpoint:
        rows = run(endpoint, args.forks, args.prefix_calls)
    print_table(rows)


if __name__ == "__main__":
    main()

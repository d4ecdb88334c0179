"""A process that runs 100,000 tracked calls keeps a bounded node cache and flat memory.

Before issue 13 every node recorded or loaded stayed in ``Store.nodes`` for the life
of the store: a worker's memory grew by about 2 MB per 1,000 calls, without end.
The probe runs in its own process (``engine_memory.py``) against a Redis object store
of its own, so nothing but enact's in-process state is measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from enact import tree
from tests.conftest import REPO_ROOT, RedisServer, subprocess_env

PROBE = Path(__file__).with_name("engine_memory.py")


def test_a_hundred_thousand_tracked_calls_keep_the_node_cache_and_memory_bounded(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis", None, "--appendonly", "no").start()
    try:
        out = subprocess.run(
            [sys.executable, str(PROBE), server.url, "100", "1000"],
            capture_output=True, text=True, check=True, timeout=900, cwd=REPO_ROOT,
            env=subprocess_env({}),
        ).stdout  # fmt: skip
    finally:
        server.stop()
    samples = [json.loads(line) for line in out.splitlines()]
    assert samples[-1]["calls"] == 100_100
    for sample in samples:
        assert sample["nodes"] <= sample["limit"] == tree.NODE_CACHE_SIZE
    print("\n".join(json.dumps(s) for s in samples))  # the closing note quotes these
    # Once the bounded caches are full (the store's 64 MB byte cache is the last, at
    # about 45,000 calls of this size), memory stays flat; with the unbounded node
    # cache of before, the same process grew by about 2 MB per 1,000 calls.
    settled = [s["rss_mb"] for s in samples if s["calls"] >= 50_000]
    assert max(settled) - settled[0] < 25, samples

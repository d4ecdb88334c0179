"""A long-lived process running many tracked calls, as a worker does; prints its memory.

``python tests/integration/engine_memory.py REDIS_URL TASKS CALLS`` runs TASKS
invocations of ``batch_of_calls(task, CALLS)`` (the worker tests' flow) against a
Redis object store (so no object stays in this process, as with S3), and prints one
JSON line per ten tasks: tracked calls so far, the store's node cache size and bound,
and the process's resident memory. Every call has a distinct input, so every node is
new.
"""

from __future__ import annotations

import gc
import json
import os
import sys

import enact
from enact import tree
from enact.config import Settings
from tests.worker.flows import batch_of_calls


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(url: str, tasks: int, calls: int) -> None:
    store = enact.Store(f"{url}?prefix=engine-memory", settings=Settings.from_env({}))
    for task in range(tasks):
        with store:
            enact.invoke(batch_of_calls, (task, calls))
        if task % 10 == 9:
            gc.collect()
            stats = tree.cache_stats(store)
            sample = {"calls": (task + 1) * (calls + 1), "rss_mb": rss_mb(), **stats}
            print(json.dumps(sample), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

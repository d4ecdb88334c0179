"""gc on a file store while other processes write to it (default grace, an hour)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import enact
import enact.gc
from enact.store import iter_links
from enact.stores.file import FileBackend
from tests.gcsupport import HOUR, file_harness, gc_during_writes, packed


def test_writer_processes_during_gc_lose_nothing(tmp_path: Path, python_env: dict) -> None:
    root = tmp_path / "store"
    backend = FileBackend(root)
    garbage = dict(packed({"garbage": i}) for i in range(3000))
    leaves = [packed({"leaf": i}) for i in range(500)]
    live = packed({"live": [enact.Ref(d) for d, _ in leaves]})
    backend.put({**garbage, **dict(leaves), live[0]: live[1]})
    stamp = time.time() - 2 * HOUR
    for digest in [*garbage, *(d for d, _ in leaves), live[0]]:
        os.utime(backend.path_for(digest), (stamp, stamp))
    enact.gc.pin(backend, live[0], "live")

    harness = file_harness(root, python_env)
    committed, reports = gc_during_writes(harness, 1500, tmp_path, rounds=5, records=10)
    assert reports[0].deleted > 0 and len(committed) >= 30
    with enact.FileStore(root) as fresh:
        reached = set(iter_links(fresh, committed + [live[0]]))  # reads and verifies all
        for digest in committed[::5]:
            assert all(set(ref()) == {"garbage"} for ref in fresh.checkout(digest)["again"])
    untouched = [d for d in garbage if d not in reached]
    assert untouched and len(untouched) < len(garbage)
    assert FileBackend(root).has(untouched) == [False] * len(untouched)
    assert enact.gc.fsck(FileBackend(root)).ok

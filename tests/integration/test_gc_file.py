"""gc on a file store while other processes write to it (default grace, an hour)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import enact
import enact.gc
from enact.digests import digest_bytes
from enact.serialization import pack_value
from enact.store import iter_links
from enact.stores.file import FileBackend
from tests.gcsupport import HOUR

_WRITER = """
import json, sys, time
import enact
root, until, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
roots, n = [], 0
with enact.FileStore(root):
    while time.time() < until:
        # Commit again values that exist only as old garbage, and link them.
        again = [enact.commit({"garbage": (n * 7 + k) % 1500}) for k in range(10)]
        fresh = [enact.commit({"writer": out, "n": n, "k": k}) for k in range(10)]
        roots.append(enact.commit({"again": again, "fresh": fresh}).digest)
        n += 1
with open(out, "w") as handle:
    json.dump(roots, handle)
"""


def _packed(value: object) -> tuple[str, bytes]:
    data, _ = pack_value(value)
    return digest_bytes(data), data


def test_writer_processes_during_gc_lose_nothing(tmp_path: Path, python_env: dict) -> None:
    root = tmp_path / "store"
    backend = FileBackend(root)
    garbage = dict(_packed({"garbage": i}) for i in range(3000))
    leaves = [_packed({"leaf": i}) for i in range(500)]
    live = _packed({"live": [enact.Ref(d) for d, _ in leaves]})
    backend.put({**garbage, **dict(leaves), live[0]: live[1]})
    stamp = time.time() - 2 * HOUR
    for digest in [*garbage, *(d for d, _ in leaves), live[0]]:
        os.utime(backend.path_for(digest), (stamp, stamp))
    enact.gc.pin(backend, live[0], "live")

    until = time.time() + 8
    outputs = [tmp_path / f"writer{i}.json" for i in range(3)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), repr(until), str(out)],
            env=python_env, stderr=subprocess.PIPE,
        )  # fmt: skip
        for out in outputs
    ]
    reports = []
    try:
        time.sleep(1)
        while time.time() < until - 0.5:
            reports.append(enact.gc.collect(FileBackend(root)))
        errors = [w.communicate(timeout=60)[1] for w in writers]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert [w.returncode for w in writers] == [0, 0, 0], errors
    assert reports and reports[0].deleted > 0

    committed = [d for out in outputs for d in json.loads(out.read_text())]
    assert len(committed) > 30
    with enact.FileStore(root) as fresh:
        reached = set(iter_links(fresh, committed + [live[0]]))  # reads and verifies all
        for digest in committed[::5]:
            assert all(set(ref()) == {"garbage"} for ref in fresh.checkout(digest)["again"])
    untouched = [d for d in garbage if d not in reached]
    assert untouched and len(untouched) < len(garbage)
    assert FileBackend(root).has(untouched) == [False] * len(untouched)
    assert enact.gc.fsck(FileBackend(root)).ok

"""A FileStore shared by several processes: concurrent writers, damaged files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import enact

# Each writer builds the same values, waits for the start signal, then commits
# them all; values are deterministic, so every writer produces the same digests.
WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    import enact

    root, go, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    values = [{"index": i, "payload": bytes([i % 251]) * size, "tags": (i, str(i))}
              for i in range(count)]
    store = enact.FileStore(root)
    deadline = time.monotonic() + 30
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("start signal never came")
        time.sleep(0.001)
    print(json.dumps([store.commit(v).digest for v in values]))
    """
)

READER = textwrap.dedent(
    """
    import json, sys
    import enact

    root, digest = sys.argv[1], sys.argv[2]
    try:
        value = enact.FileStore(root).checkout(enact.Ref.from_id(digest))
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "ref_error": isinstance(exc, enact.RefError),
                          "message": str(exc)}))
    else:
        print(json.dumps({"value": repr(value)}))
    """
)

# Polls for objects while they are being written; any bytes it sees must be whole.
WATCHER = textwrap.dedent(
    """
    import hashlib, json, sys, time
    import enact

    root, digests = sys.argv[1], json.loads(sys.argv[2])
    backend = enact.FileBackend(root)
    seen, partial = set(), 0
    deadline = time.monotonic() + 60
    while len(seen) < len(digests) and time.monotonic() < deadline:
        for digest, data in zip(digests, backend.get(digests)):
            if data is None:
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                partial += 1
            seen.add(digest)
    print(json.dumps({"seen": len(seen), "partial": partial}))
    """
)


def _value(i: int, size: int) -> dict[str, Any]:
    return {"index": i, "payload": bytes([i % 251]) * size, "tags": (i, str(i))}


def _start(code: str, *args: Any, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(process: subprocess.Popen[str], timeout_s: float = 60) -> Any:
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _assert_store_is_whole(root: Path, digests: list[str]) -> None:
    backend = enact.FileBackend(root)
    for digest in digests:
        data = backend.path_for(digest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
    leftovers = [p for p in root.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.parametrize("writers", [2, 4])
def test_processes_committing_the_same_objects_concurrently_all_succeed(
    tmp_path: Path, python_env: dict[str, str], writers: int
) -> None:
    root, go = tmp_path / "store", tmp_path / "go"
    count, size = 200, 20_000
    processes = [
        _start(WRITER, root, go, count, size, env=python_env) for _ in range(writers)
    ]
    time.sleep(0.5)  # let every writer reach the start line
    go.touch()
    results = [_finish(p) for p in processes]
    assert all(r == results[0] for r in results)
    expected = [enact.resource_digest(_value(i, size)) for i in range(count)]
    assert results[0] == expected
    _assert_store_is_whole(root, expected)
    fresh = enact.FileStore(root)
    for i in (0, count // 2, count - 1):
        assert fresh.checkout(expected[i]) == _value(i, size)


def test_large_object_written_by_two_processes_at_once(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    root, go = tmp_path / "store", tmp_path / "go"
    size = 8 * 1024 * 1024
    processes = [_start(WRITER, root, go, 1, size, env=python_env) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    first, second = (_finish(p) for p in processes)
    assert first == second
    _assert_store_is_whole(root, first)
    assert enact.FileStore(root).checkout(first[0]) == _value(0, size)


def test_readers_never_see_partial_objects(tmp_path: Path, python_env: dict[str, str]) -> None:
    root, go = tmp_path / "store", tmp_path / "go"
    count, size = 40, 1024 * 1024
    expected = [enact.resource_digest(_value(i, size)) for i in range(count)]
    watcher = _start(WATCHER, root, json.dumps(expected), env=python_env)
    writer = _start(WRITER, root, go, count, size, env=python_env)
    time.sleep(0.3)
    go.touch()
    assert _finish(writer) == expected
    assert _finish(watcher) == {"seen": count, "partial": 0}


def _damage(root: Path, digest: str, change: Any) -> None:
    path = enact.FileBackend(root).path_for(digest)
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(change(data))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.replace(b"original", b"tampered"),
        lambda d: d[: len(d) - 7],
        lambda d: d[:1],
    ],
    ids=["tampered", "truncated", "truncated-to-one-byte"],
)
def test_damaged_file_is_detected_in_another_process(
    tmp_path: Path, python_env: dict[str, str], change: Any
) -> None:
    root = tmp_path / "store"
    ref = enact.FileStore(root).commit({"text": "original", "n": list(range(50))})
    _damage(root, ref.digest, change)
    result = _finish(_start(READER, root, ref.digest, env=python_env))
    assert result["error"] == "ObjectCorrupt" and result["ref_error"] is True
    assert ref.digest in result["message"]
    with pytest.raises(enact.RefError, match=ref.digest):
        enact.FileStore(root).checkout(ref)


def test_undamaged_file_reads_in_another_process(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    root = tmp_path / "store"
    ref = enact.FileStore(root).commit({"text": "original", "t": (1, 2)})
    result = _finish(_start(READER, root, ref.digest, env=python_env))
    assert result == {"value": repr({"t": (1, 2), "text": "original"})}

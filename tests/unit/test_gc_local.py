"""gc, fsck and pins on the file store, and the ``enact gc|fsck|pin|unpin`` commands.

No servers: the file store is collectable on its own (its roots are its pins).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import enact
import enact.gc
from enact.cli import main
from enact.errors import ConfigError, GcError, ObjectCorrupt
from enact.gc.units import format_bytes, format_duration, parse_duration
from enact.stores.file import FileBackend
from tests.gcsupport import HOUR, dag_object, file_harness


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


def _age(backend: FileBackend, digests: list[str], seconds: float) -> None:
    stamp = time.time() - seconds
    for digest in digests:
        os.utime(backend.path_for(digest), (stamp, stamp))


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- units -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [("0", 0), ("90", 90), ("1.5", 1.5), ("90s", 90), ("15m", 900), ("1h30m", 5400),
     ("2d", 172800), ("1w", 604800), (" 1H ", 3600)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "1h-5m", "-5", "5 m", "nan"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)


def test_formats() -> None:
    assert [format_duration(s) for s in (42.5, 900, 5400, 90061)] == [
        "42.5s", "15m", "1h30m", "1d1h1m1s"
    ]  # fmt: skip
    assert [format_bytes(n) for n in (0, 1023, 1536, 3 << 30, -2048)] == [
        "0 B", "1023 B", "1.5 KB", "3.0 GB", "-2.0 KB"
    ]  # fmt: skip


# -- the file store ------------------------------------------------------------------------


def test_the_memory_store_cannot_be_collected() -> None:
    with pytest.raises(GcError, match="memory"):
        enact.gc.collect(enact.InMemoryStore())


def test_gc_of_invocations_keeps_the_pinned_run_whole(root: Path) -> None:
    @enact.register
    def double(x: int) -> int:
        return 2 * x

    @enact.register
    def run(n: int) -> list:
        return [double(i) for i in range(n)]

    store = enact.FileStore(root)
    with store:
        kept = enact.invoke(run, (4,))
        dropped = enact.invoke(run, (7,))
    _age(store.backend, [p.name for p in _all_files(root / "objects")], 2 * HOUR)
    enact.gc.pin(store, kept, "kept")
    report = enact.gc.collect(store)
    assert report.deleted > 0 and report.bytes_reclaimed > 0
    with enact.FileStore(root) as fresh:
        assert fresh.has(kept.digest) and not fresh.has(dropped.digest)
        assert enact.invocation_summary(kept).startswith("->run(4) = [0, 2, 4, 6]")
        replayed = kept.rewind(1).replay()  # every reused record is still there
        assert replayed.get_output() == [0, 2, 4, 6]


def test_gc_removes_stale_temporary_files_and_empty_directories(root: Path) -> None:
    backend = FileBackend(root)
    digest, data = dag_object("x")
    backend.put({digest: data})
    stale = backend.path_for(digest).parent / ".tmp-deadbeef"
    stale.write_bytes(b"half written by a writer that died")
    fresh_temp = backend.path_for(digest).parent / ".tmp-cafe"
    fresh_temp.write_bytes(b"being written right now")
    _age(backend, [digest], 2 * HOUR)
    os.utime(stale, (time.time() - 2 * HOUR,) * 2)
    enact.gc.collect(backend)
    assert not stale.exists() and fresh_temp.exists()
    assert not backend.path_for(digest).exists()
    fresh_temp.unlink()
    enact.gc.collect(backend)
    assert list((root / "objects").iterdir()) == []  # no empty shard directory left
    assert not (root / "trash").exists() and not (root / "gc.lock").exists()


def test_a_read_moves_a_damaged_file_aside(root: Path) -> None:
    store = enact.FileStore(root)
    with store:
        ref = enact.commit({"value": 1})
    path = store.backend.path_for(ref.digest)
    path.write_bytes(path.read_bytes()[:-2])  # truncated
    with enact.FileStore(root) as reader, pytest.raises(ObjectCorrupt, match="moved aside"):
        reader.checkout(ref)
    assert not path.exists()
    (moved,) = (root / "quarantine").iterdir()
    assert moved.name.startswith(ref.digest)
    with enact.FileStore(root):  # another process commits the value again
        enact.commit({"value": 1})
    with enact.FileStore(root) as reader:
        assert reader.checkout(ref) == {"value": 1}


def test_a_copy_repaired_meanwhile_is_not_moved_aside(root: Path) -> None:
    backend = FileBackend(root)
    digest, data = dag_object("repaired")
    backend.put({digest: data})
    # A reader saw damaged bytes, but a writer has repaired the file since.
    assert backend.quarantine({digest: b"damaged bytes it read"}) == []
    assert backend.get([digest]) == [data]
    assert not any((root / "quarantine").iterdir())


def test_fsck_reports_every_kind_of_damage(root: Path) -> None:
    harness = file_harness(root, {})
    parent = dag_object("parent", [dag_object("never stored")[0]])
    rotten = dag_object("rotten")
    harness.write(dict([parent, rotten]), 0)
    harness.damage(rotten[0], rotten[1][:-1])
    (root / "objects" / "stray").write_text("not an object")
    report = enact.gc.fsck(FileBackend(root))
    assert not report.ok
    assert list(report.damaged) == [rotten[0]] and report.lost == [rotten[0]]
    assert report.dangling == {dag_object("never stored")[0]: parent[0]}
    assert any("stray file" in p for p in report.problems)
    text = report.summary()
    assert "damaged" in text and "dangling" in text and "stray" in text


# -- the commands ----------------------------------------------------------------------------


def test_enact_gc_fsck_pin_unpin(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"file://{root}"
    backend = FileBackend(root)
    kept, garbage = dag_object("kept"), dag_object("garbage")
    backend.put(dict([kept, garbage]))
    _age(backend, [kept[0], garbage[0]], 2 * HOUR)

    assert main(["pin", kept[0], "--name", "mine", "--store", url]) == 0
    assert capsys.readouterr().out == f"pinned {kept[0]} as mine\n"
    assert main(["pin", "--list", "--store", url]) == 0
    assert capsys.readouterr().out == f"mine  {kept[0]}\n"

    assert main(["gc", "--store", url, "--no-redis", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "dry run: nothing deleted" in captured.out and "would delete 1 objects" in captured.out
    assert backend.has([garbage[0]]) == [True]

    assert main(["gc", "--store", url, "--no-redis", "--grace", "2h30m"]) == 0
    assert "deleted     0 objects" in capsys.readouterr().out  # all younger than 2h30m
    assert main(["gc", "--store", url, "--no-redis"]) == 0
    out = capsys.readouterr().out
    for line in ("objects     2 stored", "roots       1", "marked      1 live", "deleted     1"):
        assert line in out
    assert backend.has([kept[0], garbage[0]]) == [True, False]

    assert main(["gc", "--store", url, "--no-redis", "--grace", "1m"]) == 1
    assert "--offline" in capsys.readouterr().err
    assert main(["gc", "--store", url, "--grace", "soon"]) == 1
    assert "not a duration: 'soon'" in capsys.readouterr().err

    assert main(["fsck", "--store", url]) == 0
    assert "no damage found" in capsys.readouterr().out
    backend.path_for(kept[0]).write_bytes(b"garbled")
    assert main(["fsck", "--store", url]) == 1
    assert f"damaged  {kept[0]}" in capsys.readouterr().out
    assert main(["fsck", "--store", url, "--repair"]) == 1
    assert "repaired moved damaged" in capsys.readouterr().out
    backend.put(dict([kept]))
    assert main(["fsck", "--store", url]) == 0
    capsys.readouterr()

    assert main(["unpin", "mine", "--store", url]) == 0
    assert capsys.readouterr().out == "unpinned mine\n"
    assert main(["unpin", "mine", "--store", url]) == 1
    assert "no pin named 'mine'" in capsys.readouterr().err
    # A mistake is one line on stderr and exit status 1, never a traceback.
    assert main(["pin", "--name", "bad/name", kept[0], "--store", url]) == 1
    assert "invalid pin name 'bad/name'" in capsys.readouterr().err


def test_gc_refuses_while_another_holds_the_lock(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    FileBackend(root).lock_maintenance("someone else", 600)
    assert main(["gc", "--store", f"file://{root}", "--no-redis"]) == 1
    err = capsys.readouterr().err
    assert "ConflictError" in err and "someone else" in err and "gc.lock" in err


class _CountingPuts:
    """A file backend that records which digests each put was handed."""

    def __init__(self, backend: FileBackend) -> None:
        self.backend = backend
        self.put_digests: list[str] = []

    def has(self, digests: list[str]) -> list[bool]:
        return self.backend.has(digests)

    def get(self, digests: list[str]) -> list[bytes | None]:
        return self.backend.get(digests)

    def put(self, objects: dict[str, bytes]) -> None:
        self.put_digests += list(objects)
        self.backend.put(objects)


def test_a_store_links_without_writing_only_what_it_wrote_lately(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records may link objects this store wrote within KNOWN_DIGESTS_TTL_S without
    writing them again; after that they are written (and so refreshed) again."""
    from enact import store as store_module

    @enact.register
    def square(x: int) -> int:
        return x * x

    backend = _CountingPuts(FileBackend(root))
    store = enact.Store(backend)
    with store:
        first = enact.invoke(square, (12,))
        input_digest = first.request().input.digest
        assert input_digest in backend.put_digests
        backend.put_digests.clear()
        enact.invoke(square, (12,))
        assert backend.put_digests == []  # all known: nothing written twice
        monkeypatch.setattr(store_module, "KNOWN_DIGESTS_TTL_S", 0.0)
        enact.invoke(square, (12,))
    assert input_digest in backend.put_digests


def test_the_readme_gc_example_runs_as_written(python_env: dict, tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("From Python, a local store whose pins are its only roots:", 1)[1]
    code, expected = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    out = subprocess.run(
        [sys.executable, "-c", code], env=python_env, cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected


def test_gc_deletes_nothing_when_it_cannot_read_the_roots_in_redis(
    root: Path, unused_port: int, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("celery")
    from enact.worker import runtime

    backend = FileBackend(root)
    garbage = dag_object("garbage")
    backend.put(dict([garbage]))
    _age(backend, [garbage[0]], 2 * HOUR)
    monkeypatch.setenv("ENACT_REDIS_URL", f"redis://127.0.0.1:{unused_port}/0")
    runtime.reset()
    try:
        assert main(["gc", "--store", f"file://{root}"]) == 1
    finally:
        runtime.reset()
    err = capsys.readouterr().err
    assert "StoreUnavailable" in err and f"127.0.0.1:{unused_port}" in err
    assert "--no-redis" in err
    assert backend.has([garbage[0]]) == [True]

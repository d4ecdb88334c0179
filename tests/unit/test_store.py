"""Stores: the current-store context, memory and file stores, configuration."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import io
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

import enact
from enact import config
from enact.backend import Backend
from enact.serialization import packed_links
from enact.store import active_store, current_store, iter_links


@enact.register
@dataclasses.dataclass
class Item(enact.Resource):
    name: str
    payload: Any = None


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> enact.Store:
    if request.param == "memory":
        return enact.InMemoryStore()
    return enact.FileStore(tmp_path / "store")


# The current store -------------------------------------------------------------


def test_no_current_store_is_a_clear_error() -> None:
    assert active_store() is None
    with pytest.raises(enact.StoreError, match="no store is active"):
        enact.commit(1)
    with pytest.raises(enact.StoreError, match="no store is active"):
        enact.Ref("00" * 32).checkout()


def test_store_is_a_context_manager(store: enact.Store) -> None:
    with store as entered:
        assert entered is store
        assert current_store() is store
        ref = enact.commit(Item("a"))
    assert active_store() is None
    assert store.checkout(ref) == Item("a")


def test_nested_stores_innermost_wins() -> None:
    outer, inner = enact.InMemoryStore(), enact.InMemoryStore()
    with outer:
        with inner:
            assert current_store() is inner
            ref = enact.commit(Item("inner"))
        assert current_store() is outer
        assert not outer.has(ref)
        # The active store is asked first; the ref falls back to the store it came
        # from (content addressing: both could only give the same value).
        assert ref.checkout() == Item("inner")
        assert not outer.has(ref)  # nothing was copied
        with pytest.raises(enact.ObjectMissing):
            ref.checkout(outer)  # an explicit store is the only one asked
        assert ref.checkout(inner) == Item("inner")
    assert active_store() is None


def test_store_can_be_reentered() -> None:
    store, other = enact.InMemoryStore(), enact.InMemoryStore()
    with store:
        with other:
            with store:
                assert current_store() is store
            assert current_store() is other
        assert current_store() is store
        with store:
            assert current_store() is store
        assert current_store() is store
    assert active_store() is None
    with store:  # again, after exiting
        assert current_store() is store


def test_asyncio_tasks_see_the_current_store() -> None:
    store = enact.InMemoryStore()

    async def child(value: int) -> Any:
        await asyncio.sleep(0)
        return current_store(), await enact.commit_async(Item(str(value)))

    async def main() -> list[Any]:
        return await asyncio.gather(*(asyncio.create_task(child(i)) for i in range(5)))

    with store:
        results = asyncio.run(main())
    assert all(s is store for s, _ in results)
    assert all(store.has(ref) for _, ref in results)


def test_a_store_entered_in_one_task_does_not_leak_into_another() -> None:
    mine, theirs = enact.InMemoryStore(), enact.InMemoryStore()
    seen: dict[str, Any] = {}

    async def a(started: asyncio.Event, done: asyncio.Event) -> None:
        with theirs:
            started.set()
            await done.wait()
            seen["a"] = current_store()

    async def b(started: asyncio.Event, done: asyncio.Event) -> None:
        await started.wait()
        seen["b"] = current_store()
        done.set()

    async def main() -> None:
        started, done = asyncio.Event(), asyncio.Event()
        await asyncio.gather(a(started, done), b(started, done))
        seen["main"] = current_store()

    with mine:
        asyncio.run(main())
    assert seen == {"a": theirs, "b": mine, "main": mine}


def test_threads_need_the_context_propagated() -> None:
    store = enact.InMemoryStore()
    results: dict[str, Any] = {}

    def work(key: str) -> None:
        try:
            results[key] = enact.commit(Item(key))
        except enact.StoreError as exc:
            results[key] = exc

    with store:
        plain = threading.Thread(target=work, args=("plain",))
        ctx = contextvars.copy_context()
        propagated = threading.Thread(target=ctx.run, args=(work, "propagated"))
        plain.start()
        propagated.start()
        plain.join()
        propagated.join()
    assert isinstance(results["plain"], enact.StoreError)
    assert isinstance(results["propagated"], enact.Ref)
    assert store.checkout(results["propagated"]) == Item("propagated")


# Commit, checkout, has ----------------------------------------------------------


def test_commit_checkout_has(store: enact.Store) -> None:
    ref = store.commit(Item("x", [1, 2]))
    assert isinstance(ref, enact.Ref)
    assert store.has(ref) and store.has(ref.digest)
    assert store.checkout(ref) == Item("x", [1, 2])
    assert store.checkout(ref.digest) == Item("x", [1, 2])
    assert not store.has(enact.Ref("00" * 32))
    assert store.commit(Item("x", [1, 2])) == ref  # idempotent


def test_module_level_commit_and_checkout_use_the_current_store(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Item("y"))
        assert enact.checkout(ref) == Item("y")
    assert store.has(ref)


def test_async_commit_and_checkout(store: enact.Store) -> None:
    async def main() -> Any:
        ref = await enact.commit_async(Item("async", b"\x00" * 100))
        return ref, await enact.checkout_async(ref), await ref.checkout_async()

    with store:
        ref, first, second = asyncio.run(main())
    assert first == second == Item("async", b"\x00" * 100)
    assert store.has(ref)


def test_async_methods_on_the_store(store: enact.Store) -> None:
    async def main() -> Any:
        ref = await store.commit_async([1, (2,)])
        return await store.checkout_async(ref)

    assert asyncio.run(main()) == [1, (2,)]


def test_resource_digest_matches_commit_without_storing(store: enact.Store) -> None:
    value = Item("d", {"k": (1, 2)})
    digest = enact.resource_digest(value)
    assert len(digest) == 64 and digest == digest.lower()
    assert not store.has(digest)
    assert store.commit(value).digest == digest


def test_missing_object_is_a_ref_error_naming_the_digest(store: enact.Store) -> None:
    digest = "ab" * 32
    with pytest.raises(enact.RefError) as info:
        store.checkout(digest)
    assert isinstance(info.value, enact.ObjectMissing) and isinstance(info.value, KeyError)
    assert digest in str(info.value)


def test_corrupt_bytes_in_a_memory_backend_are_detected() -> None:
    backend = enact.InMemoryBackend()
    store = enact.Store(backend)
    ref = store.commit(Item("ok"))
    backend.put({ref.digest: b"\x93\x01\x90\xc0"})  # a valid object, under the wrong digest
    with pytest.raises(enact.RefError) as info:
        store.checkout(ref)
    assert isinstance(info.value, enact.ObjectCorrupt)
    assert ref.digest in str(info.value)


def test_committed_bytes_carry_their_links(store: enact.Store) -> None:
    leaf = store.commit(Item("leaf"))
    mid = store.commit(Item("mid", [leaf, {"again": leaf}]))
    root = store.commit(Item("root", (mid, leaf)))
    assert packed_links(store.get_object(root.digest)) == sorted([mid.digest, leaf.digest])
    assert set(iter_links(store, [root.digest])) == {root.digest, mid.digest, leaf.digest}


def test_get_objects_is_aligned(store: enact.Store) -> None:
    refs = [store.commit(i) for i in range(3)]
    digests = [refs[2].digest, refs[0].digest, refs[2].digest]
    assert [store.checkout(d) for d in digests] == [2, 0, 2]
    data = store.get_objects(digests)
    assert [hashlib.sha256(d).hexdigest() for d in data] == digests
    assert store.has_objects(digests + ["cd" * 32]) == [True, True, True, False]


# Backends -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_backend_interface(kind: str, tmp_path: Path) -> None:
    backend: Any = enact.InMemoryBackend() if kind == "memory" else enact.FileBackend(tmp_path)
    assert isinstance(backend, Backend)
    a, b, missing = "aa" * 32, "bb" * 32, "cc" * 32
    backend.put({a: b"A", b: b"B"})
    backend.put({a: b"A"})  # idempotent
    assert backend.has([missing, a, b]) == [False, True, True]
    assert backend.get([b, missing, a]) == [b"B", None, b"A"]
    assert backend.has([]) == [] and backend.get([]) == []


def test_in_memory_backend_alias() -> None:
    assert enact.InMemoryBackend is enact.MemoryBackend
    store = enact.Store(enact.InMemoryBackend())
    assert store.checkout(store.commit("x")) == "x"


def test_file_store_layout_and_persistence(tmp_path: Path) -> None:
    with enact.FileStore(tmp_path) as store:
        ref = enact.commit(Item("persist", b"\x01" * 1000))
    path = tmp_path / "objects" / ref.digest[:2] / ref.digest[2:4] / ref.digest
    assert path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.digest
    assert store.backend.path_for(ref.digest) == path  # type: ignore[attr-defined]
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]
    # A fresh store on the same directory (no cache) reads it back.
    assert enact.FileStore(tmp_path).checkout(ref) == Item("persist", b"\x01" * 1000)
    assert enact.Store(enact.FileBackend(tmp_path)).checkout(ref) == Item("persist", b"\x01" * 1000)
    assert enact.Store(f"file://{tmp_path}").checkout(ref) == Item("persist", b"\x01" * 1000)


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_file_store_objects_get_the_mode_of_ordinary_files(
    tmp_path: Path, umask: int, expected: int
) -> None:
    previous = os.umask(umask)
    try:
        ref = enact.FileStore(tmp_path).commit(f"shared {umask}")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(enact.FileBackend(tmp_path).path_for(ref.digest).stat().st_mode)
    assert mode == expected


def test_file_store_recreates_a_directory_removed_while_open(tmp_path: Path) -> None:
    store = enact.FileStore(tmp_path / "store")
    ref = store.commit("again")
    shutil.rmtree(tmp_path / "store")
    assert store.commit("again") == ref
    assert enact.FileStore(tmp_path / "store").checkout(ref) == "again"


def test_file_store_rejects_path_like_digests(tmp_path: Path) -> None:
    backend = enact.FileBackend(tmp_path)
    for bad in ("../../etc/passwd", "..", "a/b" * 10, ".hidden-digest"):
        with pytest.raises(enact.StoreError):
            backend.get([bad])


def _tamper(store_dir: Path, digest: str, change: Any) -> None:
    path = enact.FileBackend(store_dir).path_for(digest)
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(change(data))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d[:-1],  # truncated
        lambda d: d[: len(d) // 2],
        lambda d: b"",
        lambda d: d[:-1] + bytes([d[-1] ^ 1]),  # one bit flipped
        lambda d: d + b"\x00",  # trailing garbage
    ],
    ids=["truncated-1", "truncated-half", "empty", "bit-flip", "appended"],
)
def test_file_store_detects_damaged_objects(tmp_path: Path, change: Any) -> None:
    ref = enact.FileStore(tmp_path).commit(Item("fragile", list(range(100))))
    _tamper(tmp_path, ref.digest, change)
    with enact.FileStore(tmp_path):  # a fresh store: nothing cached
        with pytest.raises(enact.RefError) as info:
            ref.checkout()
    assert isinstance(info.value, enact.ObjectCorrupt)
    assert ref.digest in str(info.value)


def test_file_store_missing_object(tmp_path: Path) -> None:
    ref = enact.FileStore(tmp_path).commit("gone")
    enact.FileBackend(tmp_path).path_for(ref.digest).unlink()
    with pytest.raises(enact.ObjectMissing, match=ref.digest):
        enact.FileStore(tmp_path).checkout(ref)


def test_file_store_unwritable_root_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(enact.StoreError, match="cannot write object"):
        enact.FileStore(blocker).commit("x")


# Configuration -------------------------------------------------------------------


def test_store_without_arguments_uses_the_default_file_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENACT_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    store = enact.Store()
    assert isinstance(store.backend, enact.FileBackend)
    assert store.backend.root == tmp_path / ".enact"
    ref = store.commit("default")
    assert (tmp_path / ".enact" / "objects" / ref.digest[:2]).is_dir()
    assert config.DEFAULT_STORE_URL == "file:.enact"


def test_store_without_arguments_reads_enact_store_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENACT_STORE_URL", "memory://")
    assert isinstance(enact.Store().backend, enact.InMemoryBackend)
    monkeypatch.setenv("ENACT_STORE_URL", f"file://{tmp_path}/abs")
    store = enact.Store()
    assert isinstance(store.backend, enact.FileBackend)
    assert store.backend.root == tmp_path / "abs"
    monkeypatch.setenv("ENACT_STORE_URL", "file:rel/dir")
    assert enact.Store().backend.root == tmp_path / "rel" / "dir"  # type: ignore[attr-defined]
    # An explicit URL or backend wins over the variable.
    assert isinstance(enact.Store("memory://").backend, enact.InMemoryBackend)
    backend = enact.InMemoryBackend()
    assert enact.Store(backend).backend is backend
    assert not (tmp_path / ".enact").exists()


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "bogus://", "/just/a/path", "file:", "s3://", "memory"]
)
def test_bad_store_urls_raise_config_error_naming_the_url(url: str) -> None:
    with pytest.raises(enact.ConfigError) as info:
        enact.Store(url)
    assert repr(url) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_url_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENACT_STORE_URL", "nope://where")
    with pytest.raises(enact.ConfigError, match="nope://where"):
        enact.Store()


def test_config_reads_a_passed_mapping_not_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENACT_STORE_URL", "nope://ignored")
    settings = config.Settings.from_env({"ENACT_STORE_URL": f"file://{tmp_path}"})
    backend = config.open_backend(settings=settings)
    assert isinstance(backend, enact.FileBackend) and backend.root == tmp_path
    assert isinstance(config.open_backend(settings=config.Settings.from_env({})), enact.FileBackend)
    assert config.Settings.from_env({}).store_url == "file:.enact"
    from_x = config.Settings.from_env({"ENACT_STORE_URL": "file:x"})
    assert isinstance(config.open_backend("memory://", from_x), enact.MemoryBackend)


def test_store_rejects_objects_that_are_not_backends() -> None:
    with pytest.raises(TypeError, match="int"):
        enact.Store(42)  # type: ignore[arg-type]


# Printing --------------------------------------------------------------------------


def test_pformat_follows_refs(store: enact.Store) -> None:
    with store:
        inner = enact.commit(Item("inner", [1, 2]))
        outer = Item("outer", {"child": inner, "items": [Item("x")]})
        text = enact.pformat(outer)
        stream = io.StringIO()
        enact.pprint(enact.commit(outer), stream=stream)
    lines = text.splitlines()
    assert lines[:3] == ["Item:", "  name: 'outer'", "  payload:"]
    assert lines[4:6] == ['      "child":', f"        -> Item#{inner.digest[:6]}:"]
    assert "          name: 'inner'" in lines
    assert '      "items": [ Item(name=\'x\', payload=None)]}' in lines
    printed = stream.getvalue()
    assert printed.startswith("-> Item#") and "name: 'inner'" in printed


def test_pformat_without_a_store_shows_refs_unresolved() -> None:
    ref = enact.Ref("ab" * 32)
    text = enact.pformat(Item("x", ref))
    assert text.splitlines() == ["Item:", "  name: 'x'", f"  payload: -> {ref!r}"]
    printer = enact.PPrinter(offset=4)
    assert printer.pformat(Item("x")) == "Item(name='x', payload=None)"


def test_pformat_with_a_missing_ref(store: enact.Store) -> None:
    ref = enact.Ref("cd" * 32)
    with store:
        assert enact.pformat(ref) == f"-> {ref!r}"


def test_empty_store_url_is_a_config_error():
    import enact

    with pytest.raises(enact.ConfigError, match="store URL is empty"):
        enact.Store("")


def test_iter_links_walks_the_dag_once_per_object_without_decoding():
    import enact
    from enact.store import iter_links

    with enact.InMemoryStore() as store:
        leaf = enact.commit({"leaf": 1})
        left = enact.commit([leaf, "left"])
        right = enact.commit([leaf, "right"])  # the leaf is shared: a DAG, not a tree
        root = enact.commit({"left": left, "right": right})
        unrelated = enact.commit("unrelated")
        reached = list(iter_links(store, [root.digest]))
    assert sorted(reached) == sorted({root.digest, left.digest, right.digest, leaf.digest})
    assert len(reached) == 4 and unrelated.digest not in reached

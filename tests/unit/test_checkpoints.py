"""Checkpoints whose cost does not grow with the flow (issue 15): a journal of entries.

A checkpoint writes the records of the step that finished plus one ``Checkpoint``
entry of constant size; ``tree.load`` reads an entry as the incomplete invocation
the old checkpoint format wrote, digest for digest, so rewind, replay and resume
see no difference. gc reaches the whole chain through the entries' links.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

import enact
import enact.gc
from enact import calls, tree
from enact.config import Settings
from enact.errors import ConfigError, DeserializationError
from enact.records import Checkpoint
from enact.stores import file as file_store
from enact.stores.file import FileBackend
from tests.unit import flows


@pytest.fixture
def store() -> Iterator[enact.Store]:
    with enact.InMemoryStore() as s:
        flows.CALLS.clear()
        yield s


# Every value of these flows is a distinct uint64 (msgpack: 9 bytes), so every
# step writes records of exactly the same sizes and shares none with another step.
BIG = 1 << 40


@enact.register
def journal_step(x: int) -> int:
    flows.count("journal_step")
    return x + 1


@enact.register
def journal_flow(n: int, start: int) -> int:
    x = start
    for _ in range(n):
        x = journal_step(x)
    return x


def object_sizes(root: Path) -> dict[str, int]:
    sizes = {}
    for directory, _, files in os.walk(root / "objects"):
        for name in files:
            if not name.startswith(".tmp-"):
                sizes[name] = os.stat(os.path.join(directory, name)).st_size
    return sizes


def old_checkpoint(store: enact.Store, final: str, steps: int) -> tree.Node:
    """The record the checkpoint of ``steps`` finished children was before issue 15:
    an incomplete invocation listing them all."""
    node = tree.load(store, final)
    objects: dict[str, bytes] = {}
    return tree.incomplete(objects, node, node.children[:steps])


def run_with_checkpoints(*args: Any, **kwargs: Any) -> tuple[enact.Invocation, list[str]]:
    heads: list[str] = []
    inv = enact.invoke(*args, on_step=lambda run: heads.append(run.checkpoint()), **kwargs)
    return inv, heads


# Size -------------------------------------------------------------------------------


def test_a_checkpoint_writes_the_step_and_an_entry_of_constant_size(tmp_path: Path) -> None:
    root = tmp_path / "store"
    extra: list[int] = []  # bytes each checkpoint wrote beyond the step's own records
    files: list[int] = []  # files each checkpoint wrote
    seen: dict[str, int] = {}

    def on_step(run: calls.Run) -> None:
        head = run.checkpoint()
        now = object_sizes(root)
        new = {d: size for d, size in now.items() if d not in seen}
        seen.update(new)
        step = tree.load(store, tree.load(store, head).children[-1])
        own = {step.digest, step.request_digest, step.response_digest, step.input_digest}
        own.add(step.output_digest)  # type: ignore[arg-type]
        assert own <= set(new) and head in new
        extra.append(sum(size for d, size in new.items() if d not in own))
        files.append(len(new))

    with enact.FileStore(root) as store:
        enact.invoke(journal_flow, (300, BIG), on_step=on_step)
    entry = extra[1]
    k = tree.SEGMENT_STEPS
    segments = list(range(k - 1, 300, k))  # the k-th, 2k-th... checkpoint (0-based)
    # The first checkpoint also writes the flow's own request (and has no previous);
    # from the second on, every checkpoint writes the same bytes beyond the step: its
    # entry, whether the flow has 2 or 300 children; every k-th also a segment of the
    # same size each time (the last k steps' children), so on average a constant.
    assert [i for i, size in enumerate(extra) if i and size != entry] == segments
    assert len({extra[i] for i in segments[1:]}) == 1  # the first has no previous
    assert [i for i, count in enumerate(files) if i and count != 6] == segments
    assert [files[i] for i in segments] == [7] * len(segments)  # 5 records, entry, segment
    assert entry < 300
    assert extra[segments[1]] - entry < k * 100  # a segment: about a digest per step
    assert sum(extra[1:]) / 299 < 1.5 * entry


def test_an_entry_names_the_previous_checkpoint_and_the_children_added(
    store: enact.Store,
) -> None:
    inv, heads = run_with_checkpoints(journal_flow, (5, BIG))
    final = tree.load(store, inv.digest)
    entry = store.checkout(heads[3])
    assert isinstance(entry, Checkpoint)
    assert entry.previous is not None and entry.previous.digest == heads[2]
    assert entry.dropped == 0 and [c.digest for c in entry.added] == [final.children[3]]
    assert entry.request.digest == final.request_digest
    first = store.checkout(heads[0])
    assert first.previous is None and first.dropped == 0


# What users read does not change ------------------------------------------------------


def test_a_journal_head_loads_as_the_old_checkpoint(store: enact.Store) -> None:
    inv, heads = run_with_checkpoints(journal_flow, (6, BIG))
    for steps, head in enumerate(heads, 1):
        node = tree.load(store, head)
        old = old_checkpoint(store, inv.digest, steps)
        assert node.digest == old.digest  # the very record the old format wrote
        assert node.children == old.children and not node.complete
        assert (node.request_digest, node.response_digest) == (
            old.request_digest,
            old.response_digest,
        )
    loaded = tree.load(store, heads[3]).invocation(store)
    assert [c.get_output() for c in loaded.get_children()] == [BIG + i for i in range(1, 5)]
    assert enact.invocation_summary(loaded).splitlines() == [
        f"->journal_flow({6}, {BIG}) incomplete",
        *(f"  ->journal_step({BIG + i}) = {BIG + i + 1}" for i in range(4)),
    ]
    assert enact.invocation_summary(loaded.rewind(1)) == "\n".join(
        enact.invocation_summary(loaded).splitlines()[:-1]
    )


def test_a_journal_head_loads_from_a_fresh_store(tmp_path: Path) -> None:
    with enact.FileStore(tmp_path) as writer:
        inv, heads = run_with_checkpoints(journal_flow, (40, BIG))
        expected = [old_checkpoint(writer, inv.digest, k).digest for k in (1, 17, 40)]
    # Another process: nothing cached, every entry read from the files.
    fresh = enact.FileStore(tmp_path)
    assert [tree.load(fresh, heads[k - 1]).digest for k in (1, 17, 40)] == expected
    with fresh:
        assert enact.invocation_summary(tree.load(fresh, heads[16]).invocation()).count(
            "->journal_step("
        ) == 17


class CountingBackend(FileBackend):
    """A file store that counts the batches read (one round trip each on S3)."""

    reads = 0

    def get(self, digests: Any) -> Any:
        self.reads += 1
        return super().get(digests)


def test_loading_a_long_journal_reads_one_object_per_segment(tmp_path: Path) -> None:
    with enact.FileStore(tmp_path) as writer:
        inv, heads = run_with_checkpoints(journal_flow, (1_000, BIG))
        expected = {n: old_checkpoint(writer, inv.digest, n).digest for n in (1_000, 999, 40)}
    k = tree.SEGMENT_STEPS
    for n in (1_000, 999, 40):
        backend = CountingBackend(tmp_path)
        fresh = enact.Store(backend)  # another process: nothing cached
        assert tree.load(fresh, heads[n - 1]).digest == expected[n]
        # at most k entries back to one that links a segment, one read per segment of
        # k steps, and the call's request: not one read per step
        assert backend.reads <= k + n // k + 2, (n, backend.reads)


def test_replay_and_resume_from_a_journal_head_reuse_the_checkpointed_steps(
    store: enact.Store,
) -> None:
    inv, heads = run_with_checkpoints(journal_flow, (8, BIG))
    flows.CALLS.clear()
    replayed = enact.invoke(journal_flow, (8, BIG), replay_from=heads[4])
    assert flows.CALLS["journal_step"] == 3  # five steps were checkpointed
    assert replayed.digest == inv.digest  # deterministic steps: the very same record
    flows.CALLS.clear()
    resumed = enact.invoke(journal_flow, (8, BIG), replay_from=heads[4], retry_raised=False)
    assert flows.CALLS["journal_step"] == 3 and resumed.digest == inv.digest
    flows.CALLS.clear()
    again = tree.load(store, heads[4]).invocation(store).replay()
    assert flows.CALLS["journal_step"] == 3 and again.digest == inv.digest


def test_a_resumed_run_continues_the_journal_it_replays(store: enact.Store) -> None:
    _, heads = run_with_checkpoints(journal_flow, (10, BIG))
    flows.CALLS.clear()
    _, resumed = run_with_checkpoints(journal_flow, (10, BIG), replay_from=heads[5])
    assert flows.CALLS["journal_step"] == 4
    # The six replayed steps are the recorded ones (reused, so no checkpoint). The
    # first new step's entry keeps them all and adds one, linking the checkpoint it
    # resumed from: constant size again, and the very entry the first run wrote.
    entry = store.checkout(resumed[0])
    assert entry.previous.digest == heads[5] and entry.dropped == 0 and len(entry.added) == 1
    assert resumed == heads[6:]


def test_a_resumed_run_that_diverges_starts_a_new_journal(store: enact.Store) -> None:
    flows.SIDES[0] = 6
    _, heads = run_with_checkpoints(flows.die_flow, (4,))
    flows.SIDES[0] = 1_000_000  # every roll now differs from the record
    try:
        _, fresh = run_with_checkpoints(
            flows.die_flow, (4,), replay_from=heads[3], strict=False
        )
    finally:
        flows.SIDES[0] = 6
    # Nothing is shared, so nothing links the old journal (gc may take it).
    first = store.checkout(fresh[0])
    assert first.previous is None and first.dropped == 0 and len(first.added) == 1
    node, recorded = tree.load(store, fresh[-1]), tree.load(store, heads[3])
    assert len(node.children) == 4 and not set(node.children) & set(recorded.children)


def test_checkpoints_after_an_answered_record_chain_onto_it(store: enact.Store) -> None:
    # A flow resumed after an answer replays a full invocation record: its
    # checkpoints stand on that record instead of repeating its children.
    inv, _ = run_with_checkpoints(journal_flow, (5, BIG))
    base = inv.rewind(2)
    _, heads = run_with_checkpoints(journal_flow, (5, BIG), replay_from=base.digest)
    assert len(heads) == 2
    entry = store.checkout(heads[0])
    assert entry.previous.digest == base.digest and entry.dropped == 0 and len(entry.added) == 1
    assert tree.load(store, heads[1]).digest == old_checkpoint(store, inv.digest, 5).digest


def test_a_record_that_ended_is_never_the_checkpoint(store: enact.Store) -> None:
    # The replay retries the recorded call that raised, which raises the very same
    # exception: every finished child is the record's own. The record itself ended
    # (it raised), so the checkpoint is an entry standing for an incomplete call.
    inv = enact.invoke(flows.calls_reject, ("no",))
    assert isinstance(inv.get_raised(), flows.Rejected)
    _, heads = run_with_checkpoints(flows.calls_reject, ("no",), replay_from=inv.digest)
    [head] = heads
    assert head != inv.digest and not tree.load(store, head).complete
    entry = store.checkout(head)
    assert entry.previous.digest == inv.digest and entry.dropped == 0 and entry.added == []
    assert tree.load(store, head).children == tree.load(store, inv.digest).children


@enact.register
def fan_out_flow() -> int:
    """Two steps, a fan-out of two children run elsewhere (checkpointed), then the
    fan-out's slots given back (as ``map`` does when an item raised) and one step."""
    scope = calls.current()
    assert scope is not None
    journal_step(BIG)
    journal_step(BIG + 1)
    store = calls.store_of(scope)
    slots = []
    for x in (BIG + 10, BIG + 11):
        input_object, immutable = calls.args_object((x,), {})
        spec = calls.prepare(scope, journal_step, journal_step.reference_object(), input_object,
                             immutable)  # fmt: skip
        slots.append((calls.reserve(scope, spec), x))
    for slot, x in slots:  # "elsewhere": a run of its own, its records handed over
        run = calls.Run(store)
        with run:
            journal_step(x)
        for digest, data in run.take_objects().items():
            calls.stage(scope, digest, data)
        calls.fill(slot, run.top())  # type: ignore[arg-type]
    calls.step(scope)
    calls.release(slots[0][0])
    return journal_step(BIG + 2)


def test_slots_given_back_after_a_checkpoint_are_dropped_by_the_next(
    store: enact.Store,
) -> None:
    inv, heads = run_with_checkpoints(fan_out_flow)
    assert len(heads) == 4
    assert len(tree.load(store, heads[2]).children) == 4
    entry = store.checkout(heads[3])
    assert entry.previous.digest == heads[2] and entry.dropped == 2 and len(entry.added) == 1
    final = tree.load(store, inv.digest)
    assert len(final.children) == 3
    assert tree.load(store, heads[3]).digest == old_checkpoint(store, inv.digest, 3).digest
    assert inv.get_output() == BIG + 3


def test_a_broken_entry_is_reported(store: enact.Store) -> None:
    _, heads = run_with_checkpoints(journal_flow, (2, BIG))
    good = store.checkout(heads[1])
    bad = store.commit(Checkpoint(enact.Ref(heads[0]), good.request, 5, []))
    with pytest.raises(DeserializationError, match="drops 5 children"):
        tree.load(store, bad.digest)


# gc -----------------------------------------------------------------------------------


def test_gc_keeps_everything_a_journal_head_needs(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with enact.FileStore(root) as store:
        inv, heads = run_with_checkpoints(journal_flow, (30, BIG))
        expected = enact.invocation_summary(tree.load(store, heads[19]).invocation(store))
    backend = FileBackend(root)
    enact.gc.pin(backend, heads[19], "flow-head")
    report = enact.gc.collect(backend, grace_s=0, offline=True)
    assert report.deleted > 0  # the final record and the last ten steps
    assert not backend.has([inv.digest])[0]
    with enact.FileStore(root) as fresh:
        loaded = tree.load(fresh, heads[19]).invocation(fresh)
        assert enact.invocation_summary(loaded) == expected
        flows.CALLS.clear()
        done = enact.invoke(journal_flow, (30, BIG), replay_from=heads[19])
        assert flows.CALLS["journal_step"] == 10 and done.get_output() == BIG + 30
    assert enact.gc.fsck(backend).ok


# fsync --------------------------------------------------------------------------------


def test_the_fsync_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({}).fsync is False
    assert Settings.from_env({"ENACT_FSYNC": "1"}).fsync is True
    assert Settings.from_env({"ENACT_FSYNC": "off"}).fsync is False
    with pytest.raises(ConfigError, match="ENACT_FSYNC='maybe'"):
        Settings.from_env({"ENACT_FSYNC": "maybe"})
    settings = Settings.from_env({"ENACT_FSYNC": "yes"})
    store = enact.Store(f"file://{tmp_path}", settings=settings)
    assert isinstance(store.backend, FileBackend) and store.backend.fsync

    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    rounds: list[int] = []  # syncfs calls (Linux 5.8+): one per put, for all its files
    real_syncfs = file_store._syncfs
    if real_syncfs is not None:

        def counting_syncfs(fd: int) -> int:
            rounds.append(fd)
            return real_syncfs(fd)

        monkeypatch.setattr(file_store, "_syncfs", counting_syncfs)
    with store:
        inv, heads = run_with_checkpoints(journal_flow, (5, BIG))
    written = object_sizes(tmp_path)
    directories = {os.path.dirname(str(store.backend.path_for(d))) for d in written}
    if real_syncfs is None:  # every object file and every directory holding one was fsynced
        assert len(synced) >= len(written) + len(directories)
    else:  # one syncfs per put (a checkpoint's files together), no fsync each
        assert synced == []
        assert len(heads) <= len(rounds) < len(written)
    assert not [name for _, _, files in os.walk(tmp_path) for name in files
                if name.startswith(".tmp-")]  # fmt: skip
    with enact.FileStore(tmp_path) as fresh:
        assert tree.load(fresh, heads[2]).digest == old_checkpoint(fresh, inv.digest, 3).digest


def test_fsync_writes_nothing_twice_and_reads_back(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, fsync=True)
    objects = {d: data for d, data in (calls.packed([i, "x" * i]) for i in range(50))}
    backend.put(objects)
    stamps = {d: os.stat(backend.path_for(d)).st_mtime_ns for d in objects}
    backend.put(objects)  # young intact copies are trusted: nothing written again
    assert {d: os.stat(backend.path_for(d)).st_mtime_ns for d in objects} == stamps
    assert backend.get(list(objects)) == list(objects.values())


def test_fsync_mode_writes_again_a_copy_cut_short(tmp_path: Path) -> None:
    # What a power loss during the fsync round can leave: a young file under the
    # digest's name without its bytes. Nothing acknowledged links it; the next
    # write of that object repairs it.
    backend = FileBackend(tmp_path, fsync=True)
    digest, data = calls.packed({"step": 1})
    path = backend.path_for(digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    backend.put({digest: data})
    assert backend.get([digest]) == [data]

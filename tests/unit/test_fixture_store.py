"""Data written before issue 13 stays readable and replayable (stored type keys never change).

``tests/fixtures/store-v1`` is a file store written by enact at commit 2a95fe7, before
the call engine was refactored; ``manifest.json`` holds what that code printed. Each
test works on a copy, so the committed fixture never changes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import enact
from enact.serialization import pack_value, unpack_value
from enact.store import iter_links
from tests.fixtures import make_store_v1
from tests.fixtures import store_v1_flows as flows

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store-v1"
MANIFEST: dict[str, Any] = json.loads((FIXTURE / "manifest.json").read_text())
CASES: dict[str, dict[str, str]] = MANIFEST["cases"]

# The summaries the manifest holds, except where printing changed on purpose since:
# issue 12 prints string arguments and outputs with ``str``, as enact 0.4 does (the
# records, and so what they decode to, are the same).
PRINTED_SINCE = {
    "kwargs": "->uses_kwargs(2, label=x, scale=3) = x30\n  ->roll(6) = 5",
    "refused": "->refuse(not today) raised Refused: reason='not today'\n  ->roll(6) = 6",
}


def _summary(name: str) -> str:
    return PRINTED_SINCE.get(name, CASES[name]["summary"])


@pytest.fixture
def store(tmp_path: Path) -> enact.Store:
    shutil.copytree(FIXTURE / "store", tmp_path / "store")
    return enact.FileStore(tmp_path / "store")


def _invocation(store: enact.Store, name: str) -> enact.Invocation:
    invocation = store.checkout(enact.Ref(CASES[name]["digest"]))
    assert isinstance(invocation, enact.Invocation)
    return invocation


def test_every_stored_object_verifies_decodes_and_encodes_to_the_same_bytes(
    store: enact.Store,
) -> None:
    assert len(MANIFEST["objects"]) > 100
    for digest, data in zip(MANIFEST["objects"], store.get_objects(MANIFEST["objects"])):
        value = unpack_value(data)
        assert pack_value(value)[0] == data, f"object {digest} re-encodes differently"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_recorded_case_prints_as_it_did(store: enact.Store, name: str) -> None:
    with store:
        assert enact.invocation_summary(_invocation(store, name)) == _summary(name)


def test_committed_values_read_back(store: enact.Store) -> None:
    with store:
        tally = store.checkout(MANIFEST["values"]["tally"])
        assert isinstance(tally, flows.Tally)
        assert tally.tags == (1, "x", None) and tally.kinds == {1, 2, 3}
        assert tally.frozen == frozenset({"p", "q"}) and tally.big == 2**80
        assert tally.nested == [[1.0, True, 1], {"k": b""}]
        assert type(tally.nested[0][1]) is bool and type(tally.nested[0][0]) is float
        assert tally.kind[:4] == [list[str], int | str, int, flows.Tally]
        assert tally.kind[4] is flows.dice and tally.kind[5].__name__ == "asyncio"
        assert tally.ref.checkout().get_output() == 8
        assert store.checkout(MANIFEST["values"]["bound_method_state"]) == flows.Die(20, 3)


def test_rewound_records_replay_reusing_what_was_recorded(store: enact.Store) -> None:
    with store:
        flows.reset([4])
        replayed = _invocation(store, "dice3_rewound").replay()
        assert flows.CALLS == {"roll": 1}  # the two recorded rolls were reused
        assert enact.invocation_summary(replayed) == (
            "->dice(3) = 11\n  ->roll(6) = 2\n  ->roll(6) = 5\n  ->roll(6) = 4"
        )
        flows.reset([2, 3, 4])
        replayed = _invocation(store, "nested_rewound_leaves").replay()
        assert flows.CALLS == {"roll": 3}  # the first roll was reused, three rolls ran
        assert replayed.digest == CASES["nested"]["digest"]  # the same rolls: the same record


def test_a_stored_input_request_is_answered_and_resumed(store: enact.Store) -> None:
    with store:
        waiting = _invocation(store, "ask_waiting_2")
        [(path, request)] = waiting.pending_input_requests()
        assert path == (2, 0) and request.for_value() == "Please roll a die."
        done = enact.continue_invocation(waiting, 3)
        assert done.digest == CASES["ask_done"]["digest"]
        [(_, typed)] = _invocation(store, "typed_questions").pending_input_requests()
        assert typed.requested_type == list[str]


def test_a_recorded_divergence_is_still_detected(store: enact.Store) -> None:
    with store:
        recorded = _invocation(store, "nested").get_child(0)
        with pytest.raises(enact.ReplayError, match=r"record has dice\(2\).*called dice\(3\)"):
            enact.invoke(flows.dice, (3,), replay_from=recorded)


def test_todays_code_writes_the_same_objects(tmp_path: Path, store: enact.Store) -> None:
    manifest = make_store_v1.write(tmp_path / "new")
    assert manifest["values"] == MANIFEST["values"]
    # A native exception records its traceback, whose file names and line numbers
    # are enact's own code: only the records of the call that raised one may differ.
    with_traceback = "failed"
    for name, case in manifest["cases"].items():
        assert case["summary"] == _summary(name)
        if name != with_traceback:
            assert case["digest"] == CASES[name]["digest"], name
    written = enact.FileStore(tmp_path / "new" / "store")
    new = set(iter_links(written, [manifest["cases"][with_traceback]["digest"]]))
    old = set(iter_links(store, [CASES[with_traceback]["digest"]]))
    assert len(new) == len(old) > 5
    assert set(manifest["objects"]) - new == set(MANIFEST["objects"]) - old

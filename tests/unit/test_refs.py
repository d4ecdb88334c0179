"""Refs: pointers to committed values by digest (API.md section 2)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

import enact
from enact.serialization import pack_value


@enact.register
@dataclasses.dataclass
class Doc(enact.Resource):
    title: str
    tags: list = dataclasses.field(default_factory=list)
    parent: Any = None


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> enact.Store:
    if request.param == "memory":
        return enact.InMemoryStore()
    return enact.FileStore(tmp_path / "store")


def test_ref_is_a_resource_with_one_digest_field() -> None:
    ref = enact.Ref("ab" * 32)
    assert isinstance(ref, enact.Resource)
    assert enact.Ref.field_names() == ("digest",)
    assert ref.field_values() == ("ab" * 32,)
    assert enact.Ref[int]("ab" * 32) == ref  # generic alias builds a plain Ref


def test_id_and_from_id_round_trip(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Doc("a"))
    assert ref.id == ref.digest
    again = enact.Ref.from_id(ref.id)
    assert again == ref and type(again) is enact.Ref
    assert again.checkout(store) == Doc("a")


@pytest.mark.parametrize(
    "bad", ["", "abc", "AB" * 32, "g" * 64, "a" * 63, "a" * 65, " " + "a" * 63, 42, None, b"a" * 64]
)
def test_from_id_rejects_malformed_ids(bad: Any) -> None:
    with pytest.raises(enact.RefError) as info:
        enact.Ref.from_id(bad)
    assert repr(bad) in str(info.value)


def test_equality_and_hash_by_digest() -> None:
    a, b, c = enact.Ref("ab" * 32), enact.Ref("ab" * 32), enact.Ref("cd" * 32)
    assert a == b and hash(a) == hash(b) and a is not b
    assert a != c
    assert a != "ab" * 32
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1
    assert repr(a).startswith("Ref(abababababab")


def test_call_is_checkout(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Doc("call", ["x"]))
        assert ref() == ref.checkout() == enact.checkout(ref) == Doc("call", ["x"])
    assert ref(store) == ref.checkout(store=store) == Doc("call", ["x"])


def test_checkout_async(store: enact.Store) -> None:
    async def main(ref: enact.Ref[Any]) -> Any:
        return await ref.checkout_async(), await ref.checkout_async(store)

    with store:
        ref = enact.commit(Doc("async"))
        assert asyncio.run(main(ref)) == (Doc("async"), Doc("async"))


def test_set_commits_and_repoints(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Doc("v1"))
        old = enact.Ref(ref.digest)
        ref.set(Doc("v2"))
        assert ref != old
        assert ref() == Doc("v2")
        assert old() == Doc("v1")  # the old version is still there
        assert ref == enact.commit(Doc("v2"))
    ref.set(Doc("v3"), store=store)
    assert ref.checkout(store) == Doc("v3")


def test_modify_checks_out_edits_commits_and_repoints(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Doc("draft", ["a"]))
        original = enact.Ref(ref.digest)
        with ref.modify() as doc:
            doc.title = "final"
            doc.tags.append("b")
        assert ref() == Doc("final", ["a", "b"])
        assert original() == Doc("draft", ["a"])
        assert ref == enact.commit(Doc("final", ["a", "b"]))


def test_modify_does_not_commit_when_the_block_raises(store: enact.Store) -> None:
    with store:
        ref = enact.commit(Doc("keep"))
        before = ref.digest
        with pytest.raises(RuntimeError):
            with ref.modify() as doc:
                doc.title = "lost"
                raise RuntimeError("abort")
        assert ref.digest == before and ref() == Doc("keep")


def test_modify_with_an_explicit_store(store: enact.Store) -> None:
    ref = store.commit(Doc("explicit"))
    with ref.modify(store) as doc:
        doc.tags.append("t")
    assert store.checkout(ref) == Doc("explicit", ["t"])


def test_nested_refs_form_a_merkle_dag(store: enact.Store) -> None:
    with store:
        root = enact.commit(Doc("root"))
        child = enact.commit(Doc("child", parent=root))
        out = child()
        assert out.parent == root and type(out.parent) is enact.Ref
        assert out.parent() == Doc("root")
        # Changing the referenced value changes the referencing digest.
        other_root = enact.commit(Doc("root2"))
        assert enact.commit(Doc("child", parent=other_root)) != child
        assert pack_value(Doc("child", parent=root))[1] == {root.digest}


def test_refs_in_containers_round_trip(store: enact.Store) -> None:
    with store:
        refs = [enact.commit(i) for i in range(3)]
        value = {"list": refs, "tuple": tuple(refs), "set": set(refs), "doc": Doc("d", refs)}
        out = enact.commit(value)()
        assert out == value
        assert [r() for r in out["list"]] == [0, 1, 2]


def test_ref_to_missing_object(store: enact.Store) -> None:
    ref = enact.Ref.from_id("ef" * 32)
    with store:
        with pytest.raises(enact.RefError, match=ref.digest):
            ref()
        with pytest.raises(enact.RefError, match=ref.digest):
            with ref.modify():
                pass


def test_ref_of_a_ref(store: enact.Store) -> None:
    with store:
        inner = enact.commit("value")
        outer = enact.commit(inner)
        assert outer() == inner and outer()() == "value"
        assert outer != inner

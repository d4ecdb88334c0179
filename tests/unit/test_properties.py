"""Properties of the canonical encoding, checked on random nested values.

``tag`` below is an independent, type-exact notion of equality: Python's ``==``
blurs ``True``/``1``/``1.0``, ``0.0``/``-0.0`` and tuple/list distinctions that
the encoding must keep, and says ``nan != nan`` where the encoding is stable.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import enact

# Hypothesis warns when a strategy as big as ``values`` describes itself; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@enact.register
@dataclasses.dataclass
class Box(enact.Resource):
    value: Any
    label: str = ""


@enact.register
@dataclasses.dataclass(frozen=True)
class Frozen(enact.ImmutableResource):
    value: Any


SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def tag(v: Any) -> Any:
    """A hashable, type-exact canonical form of ``v``."""
    t = type(v)
    if v is None or t in (bool, int, str, bytes):
        return (t.__name__, v)
    if t is float:
        return ("float", struct.pack(">d", v))
    if t is list:
        return ("list", tuple(tag(x) for x in v))
    if t is tuple:
        return ("tuple", tuple(tag(x) for x in v))
    if t in (set, frozenset):
        # A multiset of tags: two NaN objects are two elements of a Python set.
        return (t.__name__, frozenset(collections.Counter(tag(x) for x in v).items()))
    if t is dict:
        return ("dict", frozenset((k, tag(x)) for k, x in v.items()))
    if t is enact.Ref:
        return ("ref", v.digest)
    if isinstance(v, enact.ResourceBase):
        return ("resource", t.type_id(), tuple(tag(x) for x in v.field_values()))
    raise AssertionError(f"unexpected value {v!r}")


def rebuild(v: Any) -> Any:
    """An equal value built afresh, with dicts and sets filled in reverse order."""
    t = type(v)
    if t is list:
        return [rebuild(x) for x in v]
    if t is tuple:
        return tuple(rebuild(x) for x in v)
    if t in (set, frozenset):
        return t(rebuild(x) for x in reversed(list(v)))
    if t is dict:
        return {k: rebuild(v[k]) for k in reversed(list(v))}
    if t is Box:
        return Box(rebuild(v.value), v.label)
    if t is Frozen:
        return Frozen(rebuild(v.value))
    if t is bytes:
        return bytes(bytearray(v))
    if t is str:
        return "".join(list(v))
    return v


digests = st.binary(min_size=32, max_size=32).map(lambda b: enact.Ref(b.hex()))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, math.inf, -math.inf]),
    st.text(max_size=20),
    st.binary(max_size=20),
    digests,
)

# Values that can go into sets (and frozen resources).
hashables = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(inner, max_size=4),
        inner.map(Frozen),
    ),
    max_leaves=10,
)

values = st.recursive(
    st.one_of(scalars, hashables),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.sets(hashables, max_size=5),
        st.frozensets(hashables, max_size=5),
        st.builds(Box, inner, st.text(max_size=5)),
    ),
    max_leaves=25,
)


@SETTINGS
@given(values)
def test_random_values_round_trip_through_a_memory_store(value: Any) -> None:
    memory = enact.InMemoryStore()
    ref = memory.commit(value)
    out = memory.checkout(ref)
    assert tag(out) == tag(value)
    assert memory.commit(out) == ref
    assert ref.digest == enact.resource_digest(value)


@settings(max_examples=40, deadline=None)
@given(st.lists(values, min_size=1, max_size=5))
def test_random_values_round_trip_through_a_file_store(batch: list[Any]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        refs = [enact.FileStore(root).commit(v) for v in batch]
        fresh = enact.FileStore(root)  # no cache: read back from disk
        for value, ref in zip(batch, refs):
            assert tag(fresh.checkout(ref)) == tag(value)


@SETTINGS
@given(values)
def test_equal_values_give_equal_digests(value: Any) -> None:
    copy = rebuild(value)
    assert tag(copy) == tag(value)
    assert enact.resource_digest(copy) == enact.resource_digest(value)
    assert enact.resource_digest(value) == enact.resource_digest(value)  # stable


@SETTINGS
@given(values)
def test_json_serializer_round_trips(value: Any) -> None:
    serializer = enact.JsonSerializer()
    assert tag(serializer.deserialize(serializer.serialize(value))) == tag(value)


# A small domain, so that random pairs are often equal or nearly equal.
small = st.recursive(
    st.sampled_from([None, True, False, 0, 1, -1, 0.0, -0.0, 1.0, "", "1", b"", b"1"]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2),
        st.lists(inner, max_size=2).map(tuple),
        st.sets(st.sampled_from([0, 1, True, "1", b"1", 1.0, None]), max_size=2),
        st.frozensets(st.sampled_from([0, 1, "1", None]), max_size=2),
        st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
        inner.map(Box),
    ),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None)
@given(small, small)
def test_values_that_differ_have_different_digests(a: Any, b: Any) -> None:
    same_digest = enact.resource_digest(a) == enact.resource_digest(b)
    assert same_digest == (tag(a) == tag(b)), (a, b)


@SETTINGS
@given(values)
def test_containers_of_the_same_elements_differ_by_type(value: Any) -> None:
    forms = [[value], (value,), Box(value), {"value": value}, Box([value])]
    try:
        hash(value)
    except TypeError:
        pass
    else:
        forms += [{value}, frozenset({value}), Frozen(value)]
    assert len({enact.resource_digest(f) for f in forms}) == len(forms)

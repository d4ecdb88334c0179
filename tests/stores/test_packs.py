"""The S3 pack and index format, without a server."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enact.digests import digest_bytes
from enact.errors import ObjectCorrupt
from enact.stores import _packs


def _objects(*payloads: bytes) -> list[tuple[str, bytes]]:
    return [(digest_bytes(p), p) for p in payloads]


@given(st.lists(st.binary(max_size=300), max_size=40), st.integers(min_value=1, max_value=2000))
def test_packs_hold_every_object_at_its_offset(payloads: list[bytes], limit: int) -> None:
    objects = _objects(*payloads)
    packs = _packs.build_packs(objects, limit)
    found = []
    for body, members in packs:
        assert body.startswith(_packs.PACK_MAGIC)
        assert len(members) == 1 or len(body) <= limit  # only a lone object may overflow
        for digest, offset, length in members:
            found.append((digest, body[offset : offset + length]))
    assert found == objects


def test_index_round_trip() -> None:
    objects = _objects(b"a", b"bb", b"ccc")
    ((body, members),) = _packs.build_packs(objects, 1 << 20)
    infos = [_packs.PackInfo(f"{_packs.new_id()}-0.pack", len(body))]
    big = digest_bytes(b"big")
    entries = [(d, 0, o, n) for d, o, n in members] + [(big, _packs.LOOSE, 0, 10 << 20)]
    index = _packs.decode_index(_packs.encode_index(infos, entries), "test")
    assert index.packs == infos
    assert [(e[0].hex(), e[1], e[2], e[3]) for e in index.entries] == entries


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],
        lambda b: b[:10] + bytes([b[10] ^ 1]) + b[11:],
        lambda b: b"",
        lambda b: b"ENACTIX1" + os.urandom(40),
    ],
)
def test_a_damaged_index_is_refused(damage: object) -> None:
    data = _packs.encode_index([_packs.PackInfo("p", 9)], [(digest_bytes(b"x"), 0, 8, 1)])
    with pytest.raises(ObjectCorrupt, match="where-it-is"):
        _packs.decode_index(damage(data), "where-it-is")  # type: ignore[operator]


def test_an_index_naming_a_pack_it_does_not_list_is_refused() -> None:
    data = _packs.encode_index([], [(digest_bytes(b"x"), 3, 8, 1)])
    with pytest.raises(ObjectCorrupt, match="names pack 3"):
        _packs.decode_index(data, "here")


def test_ids_sort_by_time() -> None:
    ids = [_packs.new_id(ns) for ns in (5, 10**18, 2 * 10**18, 10**19 - 1)]
    assert ids == sorted(ids)
    assert _packs.id_time_ns(f"prefix/v1/index/{ids[1]}.idx") == 10**18
    assert _packs.id_time_ns("prefix/v1/index/garbage.idx") is None
    assert _packs.time_floor(10**18) < ids[1] < _packs.time_floor(10**18 + 1)


def test_nearby_spans_share_a_range() -> None:
    spans = [(100, 10, 0), (8, 4, 1), (120, 5, 2), (10_000, 5, 3), (130, 1000, 4)]
    ranges = _packs.merge_ranges(spans, max_gap=50, max_span=1000)
    assert [(start, end) for start, end, _ in ranges] == [(8, 12), (100, 125), (130, 1130),
                                                         (10_000, 10_005)]  # fmt: skip
    assert [sorted(t for _, _, t in members) for _, _, members in ranges] == [[1], [0, 2], [4], [3]]

"""The S3 pack format: many small objects in one S3 object, found through an index.

Committing one invocation tree hands a backend thousands of objects of a few
hundred bytes. One request per object would make S3 the bottleneck, so
``S3Backend.put`` writes the small objects of one call into a *pack* and then a
small *index* object that lists, for every digest of the call, where its bytes
are. Objects too large to pack stay loose under their digest key and are listed
in the index as loose, so that every object the backend wrote is known from the
indexes alone.

Layout under ``PREFIX/v1/``::

    packs/<id>-<n>.pack     b"ENACTPK1" then the objects' bytes, back to back
    index/<id>.idx          the index of one put() call (format below)
    sha256/ab/cd/<digest>   a loose object (large, or written by another tool)

``<id>`` is ``<unix time in ns, 20 digits>-<random hex>``, so index keys sort by
the time they were created and a reader lists only the indexes newer than those
it holds (``StartAfter``). Writers put the packs first and the index last: an
index that a reader can see never names a pack that is not there yet.

Index format (all integers big-endian)::

    b"ENACTIX1"
    u32 pack count, then per pack: u16 name length, name (UTF-8), u64 size
    u32 entry count, then per entry: 32-byte digest, u32 pack number
        (0xFFFFFFFF: loose), u64 offset, u32 length
    32-byte SHA-256 of everything above

Nothing here does I/O; the module is the part of the format a test can pin
without a server.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from enact.errors import ObjectCorrupt

PACK_MAGIC = b"ENACTPK1"
INDEX_MAGIC = b"ENACTIX1"
LOOSE = 0xFFFFFFFF

_U32 = struct.Struct(">I")
_PACK_HEADER = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_ENTRY = struct.Struct(">32sIQI")
_TRAILER_LEN = 32
# The names new_id() and S3Backend.put give packs; an index naming anything else
# is damaged or forged (it could otherwise point readers at any key).
_PACK_NAME = re.compile(r"^[0-9]{20}-[0-9a-f]{12}-[0-9]{1,9}\.pack$")


@dataclass(frozen=True)
class PackInfo:
    """A pack named by an index: its name relative to ``packs/`` and its size in bytes."""

    name: str
    size: int


@dataclass(frozen=True)
class Index:
    """A decoded index: the packs it names and one entry per object."""

    packs: list[PackInfo]
    # (raw 32-byte digest, pack number or LOOSE, offset, length)
    entries: list[tuple[bytes, int, int, int]]


def new_id(now_ns: int | None = None) -> str:
    """A fresh, time-ordered id for a pack and its index."""
    ns = time.time_ns() if now_ns is None else now_ns
    return f"{ns:020d}-{os.urandom(6).hex()}"


def id_time_ns(name: str) -> int | None:
    """The creation time encoded in an index or pack name, ``None`` if it has none."""
    head = name.rsplit("/", 1)[-1][:20]
    return int(head) if head.isdigit() and len(head) == 20 else None


def time_floor(ns: int) -> str:
    """A key fragment that sorts before every id created at or after ``ns``."""
    return f"{max(ns, 0):020d}"


def build_packs(
    objects: Sequence[tuple[str, bytes]], max_pack_bytes: int
) -> list[tuple[bytes, list[tuple[str, int, int]]]]:
    """Concatenate objects into packs of at most about ``max_pack_bytes`` each.

    Returns ``(pack_bytes, [(digest, offset, length), ...])`` per pack, in the
    order of ``objects``. A single object larger than the limit gets a pack of
    its own (callers keep such objects loose anyway).
    """
    packs: list[tuple[bytes, list[tuple[str, int, int]]]] = []
    chunks: list[bytes] = [PACK_MAGIC]
    members: list[tuple[str, int, int]] = []
    offset = len(PACK_MAGIC)
    for digest, data in objects:
        if members and offset + len(data) > max_pack_bytes:
            packs.append((b"".join(chunks), members))
            chunks, members, offset = [PACK_MAGIC], [], len(PACK_MAGIC)
        chunks.append(data)
        members.append((digest, offset, len(data)))
        offset += len(data)
    if members:
        packs.append((b"".join(chunks), members))
    return packs


def encode_index(packs: Sequence[PackInfo], entries: Iterable[tuple[str, int, int, int]]) -> bytes:
    """Encode an index; ``entries`` hold hex digests, pack numbers, offsets, lengths."""
    out = bytearray(INDEX_MAGIC)
    out += _U32.pack(len(packs))
    for pack in packs:
        name = pack.name.encode()
        out += _PACK_HEADER.pack(len(name)) + name + _U64.pack(pack.size)
    rows = [_ENTRY.pack(bytes.fromhex(d), p, o, n) for d, p, o, n in entries]
    out += _U32.pack(len(rows))
    out += b"".join(rows)
    out += hashlib.sha256(out).digest()
    return bytes(out)


def decode_index(data: bytes, where: str) -> Index:
    """Decode an index; raise ``ObjectCorrupt`` naming ``where`` if it is damaged."""
    body, trailer = data[:-_TRAILER_LEN], data[-_TRAILER_LEN:]
    if (
        len(data) < len(INDEX_MAGIC) + 8 + _TRAILER_LEN
        or not body.startswith(INDEX_MAGIC)
        or hashlib.sha256(body).digest() != trailer
    ):
        raise ObjectCorrupt(f"pack index {where} is corrupt ({len(data)} bytes)")
    try:
        pos = len(INDEX_MAGIC)
        (pack_count,) = _U32.unpack_from(body, pos)
        pos += 4
        packs = []
        for _ in range(pack_count):
            (name_len,) = _PACK_HEADER.unpack_from(body, pos)
            pos += 2
            name = body[pos : pos + name_len].decode()
            pos += name_len
            (size,) = _U64.unpack_from(body, pos)
            pos += 8
            packs.append(PackInfo(name, size))
        (entry_count,) = _U32.unpack_from(body, pos)
        pos += 4
        end = pos + entry_count * _ENTRY.size
        if end != len(body):
            raise ValueError("entry table length does not match the index size")
        entries = list(_ENTRY.iter_unpack(body[pos:end]))
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ObjectCorrupt(f"pack index {where} is malformed: {exc}") from exc
    for pack in packs:
        if not _PACK_NAME.match(pack.name):
            raise ObjectCorrupt(f"pack index {where} names an invalid pack {pack.name[:80]!r}")
    for _, pack_no, offset, length in entries:
        if pack_no == LOOSE:
            continue
        if pack_no >= pack_count:
            raise ObjectCorrupt(f"pack index {where} names pack {pack_no} of {pack_count}")
        if offset < len(PACK_MAGIC) or offset + length > packs[pack_no].size:
            raise ObjectCorrupt(
                f"pack index {where} places an object at bytes {offset}-{offset + length} "
                f"of {packs[pack_no].name}, which has {packs[pack_no].size}"
            )
    return Index(packs, entries)


def read_members(
    body: bytes, size: int, members: Iterable[tuple[str, int, int]], where: str
) -> dict[str, bytes]:
    """The bytes of each ``(digest, offset, length)`` member of a whole pack.

    ``ObjectCorrupt`` naming ``where`` if the pack is not one (no header) or not
    the size its index recorded. The caller verifies each object's digest.
    """
    if len(body) != size or not body.startswith(PACK_MAGIC):
        raise ObjectCorrupt(
            f"pack {where} is corrupt: {len(body)} bytes"
            + ("" if body.startswith(PACK_MAGIC) else " without a pack header")
            + f", its index records {size}"
        )
    return {digest: body[offset : offset + length] for digest, offset, length in members}


def merge_ranges(
    spans: Iterable[tuple[int, int, int]], max_gap: int, max_span: int
) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """Group ``(offset, length, tag)`` spans into few byte ranges to read.

    Spans closer than ``max_gap`` bytes share a range as long as the range stays
    under ``max_span`` bytes. Returns ``(start, end_exclusive, members)``.
    """
    ranges: list[tuple[int, int, list[tuple[int, int, int]]]] = []
    for span in sorted(spans):
        offset, length, _ = span
        if ranges:
            start, end, members = ranges[-1]
            if offset - end <= max_gap and max(end, offset + length) - start <= max_span:
                members.append(span)
                ranges[-1] = (start, max(end, offset + length), members)
                continue
        ranges.append((offset, offset + length, [span]))
    return ranges

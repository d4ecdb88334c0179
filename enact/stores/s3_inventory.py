"""gc and fsck on an S3 store: a snapshot of its indexes and packs, and the sweep.

``S3Backend.inventory(cutoff)`` lists every index, pack and loose object under
``PREFIX/v1/`` and decodes every index. That snapshot is all a gc or fsck ever
touches: an index or pack written after it is neither read nor deleted.

A copy of an object is one entry in a pack (or a loose key). Its time is the
time in its pack's name, which the writer took when it started the ``put``. A
copy is *young* if that time is at or after the cutoff (now minus the grace).

The sweep, given the digests a mark found live:

* keeps every young pack whole, and every copy in it;
* keeps, for each live digest without a young copy, the copy the mark read;
* deletes an old pack that holds no kept copy, rewrites one whose bytes are
  mostly garbage (more than ``rewrite_threshold``) by moving its kept copies into
  new packs, and keeps the rest, dropping their garbage entries from the index;
* writes one merged index (or a few, for very large stores) listing every kept
  copy, then deletes every index of the snapshot it merged, then the packs.

Why a racing writer loses nothing: a writer relies on an existing copy only if
it is younger than ``REUSE_HORIZON_S`` (it writes an older one again), the
grace is longer than that, and the sweep touches only old copies. Readers that
still hold entries of a deleted pack find the objects in the merged index (it
is written before anything is deleted, and is newer than every index they hold).

An index that cannot be decoded is never deleted, and while one exists no
orphan pack (a pack no readable index names) is deleted either: it may hold
the objects of the damaged index, which ``repair`` recovers by reading the pack.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Collection, Iterator, Sequence

import msgpack

from enact.backend import Copy, Plan, SweepResult
from enact.errors import ObjectCorrupt
from enact.stores import _packs

if TYPE_CHECKING:
    from enact.stores.s3 import S3Backend

log = logging.getLogger(__name__)

REWRITE_THRESHOLD = 0.5  # rewrite an old pack when more than this share of it is garbage
# Old packs smaller than this are merged into bigger ones when there are at
# least CONSOLIDATE_MIN_PACKS of them: a cold read costs one GET per pack.
SMALL_PACK_BYTES = 1 << 20
CONSOLIDATE_MIN_PACKS = 16
MAX_INDEX_ENTRIES = 500_000  # entries per merged index (about 26 MB)
READ_CACHE_BYTES = 256 << 20
WHOLE_READ_MAX_BYTES = 8 << 20
RANGE_GAP_BYTES = 256 << 10
_LOOSE = -1  # the offset of a loose copy: the whole key


@dataclass
class _Pack:
    """A pack (or a loose key) the snapshot knows of."""

    key: str
    time_ns: int
    size: int  # as named by an index (loose: as listed)
    listed: bool  # present in the LIST
    loose: bool = False
    indexed: bool = True  # named by a readable index
    members: list[tuple[str, int, int]] = field(default_factory=list)  # digest, offset, length


@dataclass
class _S3Plan:
    keep_packs: list[int]  # pack numbers carried into the merged index
    keep_members: dict[int, list[tuple[str, int, int]]]  # per kept pack, the entries to list
    rewrite: list[int]
    delete_packs: list[int]
    delete_keys: list[str]  # loose keys and orphan packs
    merge_indexes: list[str]


class S3Inventory:
    """A snapshot of an S3 store; see the module docstring."""

    def __init__(
        self, backend: S3Backend, cutoff_s: float, rewrite_threshold: float = REWRITE_THRESHOLD
    ) -> None:
        self.backend = backend
        self.cutoff_ns = int(cutoff_s * 1e9)
        self.rewrite_threshold = rewrite_threshold
        root = backend.root
        self.packs: list[_Pack] = []
        self.locations: dict[str, list[tuple[int, int, int]]] = {}  # digest -> (pack, offset, len)
        self.keepers: dict[str, tuple[int, int, int]] = {}  # the copy each read returned
        self.index_keys: list[str] = []  # readable indexes of the snapshot
        self.corrupt_indexes: dict[str, str] = {}
        self._problems: list[str] = []
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = 0

        listings = backend.parallel(
            backend.list_keys, [f"{root}index/", f"{root}packs/", f"{root}sha256/"]
        )
        index_list, pack_list, loose_list = listings
        listed_packs = {key: size for key, size, _ in pack_list}
        by_key: dict[str, int] = {}
        seen: set[tuple[int, int]] = set()
        keys = [key for key, _, _ in index_list]
        for key, body in zip(keys, backend.parallel(backend.read_key, keys)):
            if body is None:
                continue  # deleted since the LIST
            try:
                index = _packs.decode_index(body, f"s3://{backend.bucket}/{key}")
            except ObjectCorrupt as exc:
                self.corrupt_indexes[key] = str(exc)
                self._problems.append(str(exc))
                continue
            self.index_keys.append(key)
            created = _packs.id_time_ns(key) or 0
            numbers = []
            for info in index.packs:
                pack_key = backend.pack_key(info.name)
                number = by_key.get(pack_key)
                if number is None:
                    number = by_key[pack_key] = len(self.packs)
                    stamp = _packs.id_time_ns(info.name)
                    self.packs.append(
                        _Pack(
                            pack_key,
                            created if stamp is None else stamp,
                            info.size,
                            pack_key in listed_packs,
                        )
                    )
                numbers.append(number)
            for raw, pack_no, offset, length in index.entries:
                digest = raw.hex()
                if pack_no == _packs.LOOSE:
                    loose_key = backend.loose_key(digest)
                    number = by_key.get(loose_key)
                    if number is None:
                        number = by_key[loose_key] = len(self.packs)
                        self.packs.append(_Pack(loose_key, created, length, False, loose=True))
                    offset = _LOOSE
                else:
                    number = numbers[pack_no]
                self._add_copy(digest, number, offset, length, seen)

        for key, size, modified in loose_list:
            digest = key.rsplit("/", 1)[-1]
            number = by_key.get(key)
            if number is not None:
                self.packs[number].listed = True
                self.packs[number].size = size
                continue
            if len(digest) != 64:
                self._problems.append(f"stray key s3://{backend.bucket}/{key}")
                continue
            number = by_key[key] = len(self.packs)
            self.packs.append(
                _Pack(key, int(modified * 1e9), size, True, loose=True, indexed=False)
            )
            self._add_copy(digest, number, _LOOSE, size, seen)

        for pack in self.packs:
            if pack.loose:
                continue
            if not pack.listed:
                self._problems.append(
                    f"pack s3://{backend.bucket}/{pack.key} is named by an index but missing "
                    f"({len(pack.members)} objects)"
                )
            elif listed_packs[pack.key] != pack.size:
                self._problems.append(
                    f"pack s3://{backend.bucket}/{pack.key} is {listed_packs[pack.key]} bytes, "
                    f"its index says {pack.size}"
                )
        for key, size in listed_packs.items():
            if key not in by_key:
                stamp = _packs.id_time_ns(key)
                by_key[key] = len(self.packs)
                self.packs.append(
                    _Pack(key, self.cutoff_ns if stamp is None else stamp, size, True,
                          indexed=False)
                )  # fmt: skip
                if self.packs[-1].time_ns < self.cutoff_ns:
                    self._problems.append(
                        f"pack s3://{backend.bucket}/{key} is not named by any readable index"
                    )

    def _add_copy(
        self, digest: str, number: int, offset: int, length: int, seen: set[tuple[int, int]]
    ) -> None:
        if (number, offset) in seen:
            return  # the same copy listed by two indexes
        seen.add((number, offset))
        self.packs[number].members.append((digest, offset, length))
        self.locations.setdefault(digest, []).append((number, offset, length))

    # -- the Inventory protocol --------------------------------------------------

    def digests(self) -> Iterator[str]:
        return iter(self.locations)

    def __contains__(self, digest: object) -> bool:
        return digest in self.locations

    def young(self) -> Iterator[str]:
        cutoff, packs = self.cutoff_ns, self.packs
        for digest, copies in self.locations.items():
            if any(packs[c[0]].time_ns >= cutoff for c in copies):
                yield digest

    def read(self, digests: Sequence[str]) -> list[bytes | None]:
        """Read each digest from its newest readable copy, falling back to older ones."""
        packs = self.packs
        out: dict[str, bytes | None] = {}
        pending = {}
        for digest in digests:
            copies = sorted(
                (c for c in self.locations.get(digest, ()) if packs[c[0]].listed),
                key=lambda c: packs[c[0]].time_ns,
                reverse=True,
            )
            if copies:
                pending[digest] = copies
            else:
                out[digest] = None
        damaged: dict[str, bytes] = {}
        while pending:
            wanted = {d: copies[0] for d, copies in pending.items()}
            fetched = self._fetch(wanted)
            for digest, copy in wanted.items():
                data = fetched.get(digest)
                if data is not None and hashlib.sha256(data).hexdigest() == digest:
                    out[digest] = data
                    self.keepers[digest] = copy
                    del pending[digest]
                    continue
                if data is not None:
                    damaged[digest] = data
                pending[digest].pop(0)
                if not pending[digest]:
                    out[digest] = damaged.get(digest)
                    del pending[digest]
        return [out.get(d) for d in digests]

    def copies_of(self, digest: str) -> list[str]:
        """Where each copy of ``digest`` is, for messages."""
        return [self._where(c) for c in self.locations.get(digest, ())]

    def copies(self) -> Iterator[Copy]:
        """Every copy with its bytes, reading up to 16 packs at a time."""
        numbers = [n for n, pack in enumerate(self.packs) if pack.members]
        for start in range(0, len(numbers), 16):
            wanted: dict[str, tuple[int, int, int]] = {}
            for number in numbers[start : start + 16]:
                for digest, offset, length in self.packs[number].members:
                    wanted[f"{number}:{offset}:{digest}"] = (number, offset, length)
            fetched = self._fetch(wanted)
            for name, copy in wanted.items():
                yield Copy(name.rsplit(":", 1)[1], self._where(copy), fetched.get(name))
            for number in numbers[start : start + 16]:
                self._forget_body(self.packs[number].key)

    def problems(self) -> list[str]:
        return list(self._problems)

    def plan(self, live: Collection[str] | None) -> Plan:
        """The sweep's plan; ``live=None`` only merges indexes, keeping every copy."""
        packs, cutoff = self.packs, self.cutoff_ns
        keep: set[tuple[int, int]] = set()  # kept copies: (pack, offset)
        for digest, copies in self.locations.items():
            if live is None:
                keep.update((c[0], c[1]) for c in copies)
                continue
            young = [c for c in copies if packs[c[0]].time_ns >= cutoff]
            keep.update((c[0], c[1]) for c in young)
            if young or digest not in live:
                continue
            keeper = self.keepers.get(digest)
            if keeper is not None:
                keep.add((keeper[0], keeper[1]))
            else:  # live but unread (damaged, and allowed): keep what is there
                keep.update((c[0], c[1]) for c in copies)
        detail = _S3Plan([], {}, [], [], [], list(self.index_keys))
        plan = Plan(objects=len(self.locations), indexes_before=len(self.index_keys))
        kept: set[str] = set()
        small: list[int] = []
        collect_orphans = live is not None and not self.corrupt_indexes
        for number, pack in enumerate(packs):
            members = [m for m in pack.members if (number, m[1]) in keep]
            old = pack.time_ns < cutoff
            if not pack.listed:
                continue  # named by an index but gone: its entries are dropped
            if not pack.indexed and not pack.loose:  # an orphan pack
                if collect_orphans and old:
                    detail.delete_keys.append(pack.key)
                    plan.delete_packs += 1
                    plan.reclaim_bytes += pack.size
                continue
            if members:
                kept.update(m[0] for m in members)
            if members and (pack.loose or not old or live is None):
                detail.keep_packs.append(number)  # (an unindexed loose key is adopted)
                detail.keep_members[number] = members
            elif members:
                live_bytes = sum(length for _, _, length in members)
                body = max(pack.size - len(_packs.PACK_MAGIC), 1)
                detail.keep_members[number] = members
                if 1 - live_bytes / body > self.rewrite_threshold:
                    detail.rewrite.append(number)
                    plan.reclaim_bytes += body - live_bytes
                elif pack.size < SMALL_PACK_BYTES:
                    small.append(number)
                else:
                    detail.keep_packs.append(number)
            elif live is not None and old:
                if pack.loose:
                    detail.delete_keys.append(pack.key)
                else:
                    detail.delete_packs.append(number)
                    plan.delete_packs += 1
                plan.reclaim_bytes += pack.size
        if len(small) >= CONSOLIDATE_MIN_PACKS:
            detail.rewrite += small
        else:
            detail.keep_packs += small
        plan.rewrite_packs = len(detail.rewrite)
        plan.delete_objects = len(self.locations) - len(kept)
        entries = sum(len(detail.keep_members[n]) for n in detail.keep_packs + detail.rewrite)
        plan.indexes_after = -(-entries // MAX_INDEX_ENTRIES) + len(self.corrupt_indexes)
        plan.detail = detail
        return plan

    def sweep(self, plan: Plan, progress: Callable[[str, int], None] | None = None) -> SweepResult:
        backend, packs = self.backend, self.packs
        detail: _S3Plan = plan.detail
        result = SweepResult()
        infos, entries = self._entries(
            [(number, detail.keep_members[number]) for number in detail.keep_packs]
        )
        # Move the live objects of mostly-garbage packs into new packs.
        # A moved copy keeps the time of the newest pack it came from: moving it
        # must not give an object that becomes unreachable a new grace period.
        written_bytes = 0
        batch: list[tuple[str, bytes]] = []
        batch_bytes = batch_time = 0

        def flush() -> None:
            nonlocal batch, batch_bytes, batch_time, written_bytes
            if batch:
                new_infos, new_entries = backend.write_packs(
                    batch, first=len(infos), created_ns=batch_time
                )
                infos.extend(new_infos)
                entries.extend(new_entries)
                written_bytes += sum(info.size for info in new_infos)
                batch, batch_bytes, batch_time = [], 0, 0

        for n, number in enumerate(detail.rewrite, 1):
            members = detail.keep_members[number]
            wanted = {d: (number, o, length) for d, o, length in members}
            fetched = self._fetch(wanted)
            for digest, _, _ in members:
                data = fetched.get(digest)
                if data is None or hashlib.sha256(data).hexdigest() != digest:
                    raise ObjectCorrupt(
                        f"object {digest} in s3://{backend.bucket}/{packs[number].key} changed "
                        "or vanished since the mark read it; no index or pack was deleted"
                    )
                batch.append((digest, data))
                batch_bytes += len(data)
            batch_time = max(batch_time, packs[number].time_ns)
            self._forget_body(packs[number].key)
            if batch_bytes >= backend.pack_max_bytes:
                flush()
            result.rewritten_packs += 1
            if progress is not None:
                progress("rewrite", n)
        flush()
        # The merged index is written before anything is deleted, so a reader
        # always finds every kept copy in some index.
        result.indexes_after = self._write_indexes(infos, entries) + len(self.corrupt_indexes)
        backend.delete_keys(detail.merge_indexes)
        doomed = [packs[n].key for n in detail.delete_packs + detail.rewrite]
        doomed += detail.delete_keys
        backend.delete_keys(doomed)
        if progress is not None:
            progress("sweep", len(doomed))
        sizes = {pack.key: pack.size for pack in packs}
        result.deleted_packs = plan.delete_packs
        result.deleted_objects = plan.delete_objects
        result.reclaimed_bytes = sum(sizes[key] for key in doomed) - written_bytes
        return result

    def repair(self, damaged: Collection[str]) -> list[str]:
        """Drop damaged copies from the indexes, quarantine unreadable indexes, and
        index the orphan packs they named by reading the packs."""
        backend, packs = self.backend, self.packs
        done: list[str] = []
        bad: set[tuple[int, int]] = set()
        for digest in damaged:
            for copy in self.locations.get(digest, ()):
                data = self._fetch({digest: copy}).get(digest)
                if data is None or hashlib.sha256(data).hexdigest() != digest:
                    bad.add((copy[0], copy[1]))
                    done.append(f"dropped damaged copy of {digest} at {self._where(copy)}")
        recovered: list[tuple[_packs.PackInfo, list[tuple[str, int, int]]]] = []
        if self.corrupt_indexes:
            for pack in packs:
                if pack.indexed or pack.loose or not pack.listed:
                    continue
                body = backend.read_key(pack.key)
                members = _scan_pack(body or b"")
                if members:
                    name = pack.key[len(backend.pack_key("")) :]
                    recovered.append((_packs.PackInfo(name, len(body or b"")), members))
                    done.append(
                        f"indexed {len(members)} objects of orphan pack s3://{backend.bucket}/"
                        f"{pack.key}"
                    )
        if not bad and not recovered and not self.corrupt_indexes:
            return done
        infos, entries = self._entries(
            [
                (number, [m for m in pack.members if (number, m[1]) not in bad])
                for number, pack in enumerate(packs)
                if pack.indexed and pack.listed
            ]
        )
        for info, members in recovered:
            pack_no = len(infos)
            infos.append(info)
            entries += [(d, pack_no, o, n) for d, o, n in members]
        self._write_indexes(infos, entries)
        backend.delete_keys(self.index_keys)
        doomed = [key for key in self.corrupt_indexes]
        doomed += [
            pack.key
            for number, pack in enumerate(packs)
            if pack.listed and pack.members and all((number, m[1]) in bad for m in pack.members)
        ]  # packs that hold nothing but damage
        for key in doomed:
            body = backend.read_key(key)
            if body is not None:
                aside = f"{backend.root}quarantine/{key.rsplit('/', 1)[-1]}"
                backend.write_key(aside, body, create_only=False)
                backend.delete_keys([key])
                done.append(f"moved s3://{backend.bucket}/{key} to {aside}")
        return done

    # -- helpers ---------------------------------------------------------------

    def _entries(
        self, kept: list[tuple[int, list[tuple[str, int, int]]]]
    ) -> tuple[list[_packs.PackInfo], list[tuple[str, int, int, int]]]:
        """Pack infos and index entries listing these members of these packs."""
        infos: list[_packs.PackInfo] = []
        entries: list[tuple[str, int, int, int]] = []
        pack_prefix = len(self.backend.pack_key(""))
        for number, members in kept:
            pack = self.packs[number]
            if pack.loose:
                entries += [(d, _packs.LOOSE, 0, n) for d, _, n in members]
                continue
            pack_no = len(infos)
            infos.append(_packs.PackInfo(pack.key[pack_prefix:], pack.size))
            entries += [(d, pack_no, o, n) for d, o, n in members]
        return infos, entries

    def _write_indexes(
        self, infos: list[_packs.PackInfo], entries: list[tuple[str, int, int, int]]
    ) -> int:
        """Write ``entries`` as merged indexes of at most ``MAX_INDEX_ENTRIES``; return how many."""
        written = 0
        for start in range(0, len(entries), MAX_INDEX_ENTRIES):
            chunk = entries[start : start + MAX_INDEX_ENTRIES]
            used: dict[int, int] = {}
            chunk_infos: list[_packs.PackInfo] = []
            rows = []
            for digest, pack_no, offset, length in chunk:
                if pack_no == _packs.LOOSE:
                    rows.append((digest, pack_no, offset, length))
                    continue
                number = used.get(pack_no)
                if number is None:
                    number = used[pack_no] = len(chunk_infos)
                    chunk_infos.append(infos[pack_no])
                rows.append((digest, number, offset, length))
            self.backend.write_index(chunk_infos, rows)
            written += 1
        return written

    def _where(self, copy: tuple[int, int, int]) -> str:
        pack = self.packs[copy[0]]
        where = f"s3://{self.backend.bucket}/{pack.key}"
        if copy[1] != _LOOSE:
            where += f" bytes {copy[1]}-{copy[1] + copy[2] - 1}"
        return where

    def _fetch(self, wanted: dict[str, tuple[int, int, int]]) -> dict[str, bytes | None]:
        """Bytes of the given copies (name -> copy), unverified; ``None`` where unreadable."""
        backend, packs = self.backend, self.packs
        by_pack: dict[int, list[tuple[str, int, int]]] = {}
        for name, (number, offset, length) in wanted.items():
            by_pack.setdefault(number, []).append((name, offset, length))

        def read_pack(item: tuple[int, list[tuple[str, int, int]]]) -> dict[str, bytes | None]:
            number, members = item
            pack = packs[number]
            out: dict[str, bytes | None] = {}
            if pack.loose:
                body = backend.read_key(pack.key)
                return {name: body for name, _, _ in members}
            body = self._cache.get(pack.key)
            if body is None and pack.size <= WHOLE_READ_MAX_BYTES:
                body = backend.read_key(pack.key)
                if body is not None:
                    self._remember(pack.key, body)
            if body is not None:
                for name, offset, length in members:
                    piece = body[offset : offset + length]
                    out[name] = piece if len(piece) == length else None
                return out
            spans = [(offset, length, i) for i, (_, offset, length) in enumerate(members)]
            for start, end, group in _packs.merge_ranges(
                spans, RANGE_GAP_BYTES, backend.pack_max_bytes
            ):
                chunk = backend.read_key(pack.key, (start, end)) or b""
                for offset, length, i in group:
                    piece = chunk[offset - start : offset - start + length]
                    out[members[i][0]] = piece if len(piece) == length else None
            return out

        found: dict[str, bytes | None] = {}
        for part in backend.parallel(read_pack, list(by_pack.items())):
            found.update(part)
        return found

    def _forget_body(self, key: str) -> None:
        body = self._cache.pop(key, None)
        if body is not None:
            self._cache_size -= len(body)

    def _remember(self, key: str, body: bytes) -> None:
        self._cache[key] = body
        self._cache_size += len(body)
        while self._cache_size > READ_CACHE_BYTES and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cache_size -= len(dropped)


def _scan_pack(body: bytes) -> list[tuple[str, int, int]]:
    """Recover ``(digest, offset, length)`` of each object in a pack by parsing it.

    Objects are msgpack values back to back after the magic, so their bounds
    can be found without an index. Stops at the first damage.
    """
    if not body.startswith(_packs.PACK_MAGIC):
        return []
    members = []
    unpacker = msgpack.Unpacker(raw=True, max_buffer_size=len(body) + 1)
    unpacker.feed(body[len(_packs.PACK_MAGIC) :])
    offset = len(_packs.PACK_MAGIC)
    try:
        while True:
            unpacker.skip()
            end = len(_packs.PACK_MAGIC) + unpacker.tell()
            data = body[offset:end]
            members.append((hashlib.sha256(data).hexdigest(), offset, len(data)))
            offset = end
    except msgpack.OutOfData:
        pass
    except Exception as exc:  # damage: keep what was recovered before it
        log.warning("stopped reading a pack at byte %d: %s", offset, exc)
    return members

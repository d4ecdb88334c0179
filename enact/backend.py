"""The storage backend interface: opaque bytes by digest.

A backend only moves bytes. Everything clever (encoding, digest checks, caching,
batching) happens once, in ``enact.store.Store``. It is a ``Protocol`` so a
third-party backend does not need to import enact.

Contract, pinned by ``tests/stores/test_contract.py`` for every backend:

* ``has`` and ``get`` return lists aligned with their input; ``get`` holds
  ``None`` for a digest it does not have.
* ``put`` is idempotent: an equal digest means equal bytes, so a backend may skip
  objects it already holds, and two writers racing on one digest both succeed.
* A backend never returns bytes it has not read completely; it may, but need not,
  verify digests itself (``Store`` always does).
* Client-library errors are translated into ``enact.errors.StoreError``
  subclasses at the boundary (``StoreUnavailable`` for unreachable servers).

Optional, for stores that can be collected and checked (``enact.gc``): the
``Maintainable`` and ``Inventory`` protocols below, and ``quarantine(damaged)``,
which moves copies found damaged out of the way so that the next ``put`` writes
them afresh (``Store`` calls it when a read fails its digest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Protocol,
    Sequence,
    runtime_checkable,
)

from enact.redaction import redact_url


@runtime_checkable
class Backend(Protocol):
    """Stores packed objects by digest."""

    def has(self, digests: Sequence[str]) -> list[bool]:
        """Whether each digest is stored, aligned with ``digests``."""
        ...

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        """The bytes of each digest, ``None`` where missing, aligned with ``digests``."""
        ...

    def put(self, objects: Mapping[str, bytes]) -> None:
        """Store objects by digest; idempotent."""
        ...


def describe(backend: object) -> str:
    """A short human name for a backend, used in error messages."""
    url = getattr(backend, "url", None)
    return redact_url(str(url)) if url else type(backend).__name__


# Storage maintenance: garbage collection, verification and repair ----------------
#
# A backend that can be collected implements ``Maintainable`` below; ``enact.gc``
# drives it. The rules every implementation keeps, and that make a gc safe while
# other processes write (see the README, "Garbage collection"):
#
# * Every stored copy of an object has a time: when it was last written. A writer
#   that finds an existing copy written less than ``REUSE_HORIZON_S`` ago trusts it
#   and writes nothing; an older copy is written again (this also repairs a copy
#   that rotted). So no writer ever relies on a copy older than the horizon.
# * ``Store`` forgets which digests it wrote after ``KNOWN_DIGESTS_TTL_S``, so a
#   record never links an object this process has not put within that time.
# * gc deletes only copies older than its grace period, which must be at least
#   ``MIN_GRACE_S`` (the two times above plus a margin for a put in flight), and
#   never touches a copy written after its inventory was taken.

REUSE_HORIZON_S = 300.0
KNOWN_DIGESTS_TTL_S = 300.0
MIN_GRACE_S = 900.0
# A gc or fsck holds the store's maintenance lock at most this long unless it renews it.
LOCK_TTL_S = 6 * 3600.0


@dataclass(frozen=True)
class Copy:
    """One stored copy of an object, as fsck sees it: where it is and its bytes."""

    digest: str
    where: str  # a path, a key, or "key bytes a-b": what an operator can look at
    data: bytes | None  # None: the copy is listed but cannot be read


@dataclass
class Plan:
    """What a sweep will do; a dry run reports it and stops.

    ``detail`` belongs to the backend that made the plan.
    """

    objects: int = 0  # distinct digests stored when the inventory was taken
    delete_objects: int = 0  # digests that will no longer be stored
    reclaim_bytes: int = 0
    rewrite_packs: int = 0  # packs whose live objects move to new packs (S3)
    delete_packs: int = 0  # packs deleted whole (S3: all garbage, or orphans)
    indexes_before: int = 0
    indexes_after: int = 0
    detail: Any = None


@dataclass
class SweepResult:
    """What a sweep did; it may do less than planned when writers refreshed copies."""

    deleted_objects: int = 0
    reclaimed_bytes: int = 0
    rewritten_packs: int = 0
    deleted_packs: int = 0
    indexes_after: int = 0
    kept_fresh: int = 0  # copies the plan condemned but a writer refreshed meanwhile


@runtime_checkable
class Inventory(Protocol):
    """One gc's or fsck's snapshot of what a backend stores, taken at its start.

    Nothing written after the snapshot is seen or touched by it.
    """

    def digests(self) -> Iterable[str]:
        """Every digest with at least one listed copy."""
        ...

    def __contains__(self, digest: object) -> bool: ...

    def young(self) -> Iterable[str]:
        """Digests with a copy written at or after the cutoff given to ``inventory``."""
        ...

    def read(self, digests: Sequence[str]) -> list[bytes | None]:
        """Bytes of a copy of each digest: one that hashes to it if any does, else a
        damaged one (so the caller can report it), ``None`` if no copy can be read."""
        ...

    def copies(self) -> Iterator[Copy]:
        """Every listed copy with its bytes, for fsck."""
        ...

    def problems(self) -> list[str]:
        """Damage found while listing: unreadable indexes, missing packs, stray files."""
        ...

    def plan(self, live: Collection[str] | None) -> Plan:
        """What a sweep keeping exactly ``live`` (plus every young copy) would do;
        ``None`` keeps everything and only merges indexes (S3)."""
        ...

    def sweep(self, plan: Plan, progress: Callable[[str, int], None] | None = None) -> SweepResult:
        """Carry the plan out; copies refreshed by writers since the snapshot survive."""
        ...

    def repair(self, damaged: Collection[str]) -> list[str]:
        """Move the damaged copies of these digests out of the way so that each reads
        as missing everywhere and the next put (from any process) writes it afresh.
        Returns what it did, one line per action."""
        ...


@runtime_checkable
class Maintainable(Protocol):
    """A backend that gc and fsck can work on, and that keeps pins."""

    def inventory(self, cutoff_s: float, *, dry_run: bool = False) -> Inventory:
        """Take a snapshot; copies written at or after ``cutoff_s`` (unix time) are young."""
        ...

    def pins(self) -> dict[str, str]:
        """Pin name -> digest."""
        ...

    def set_pin(self, name: str, digest: str) -> None: ...

    def remove_pin(self, name: str) -> bool: ...

    def lock_maintenance(self, owner: str, ttl_s: float = LOCK_TTL_S) -> None:
        """Take (or renew, for the same owner) the lock that keeps two gcs apart;
        ``ConflictError`` naming the holder if another owner holds it."""
        ...

    def unlock_maintenance(self, owner: str) -> None: ...

"""The storage backend interface: opaque bytes by digest, opened by URL scheme.

A backend only moves bytes. Everything clever (encoding, digest checks, caching,
batching) happens once, in ``enact.store.Store``. ``Backend`` is a ``Protocol`` so a
third-party backend does not need to import enact.

Contract, pinned by ``tests/stores/test_contract.py`` for every backend:

* ``has`` and ``get`` return lists aligned with their input; ``get`` holds
  ``None`` for a digest it does not have.
* ``put`` is idempotent: an equal digest means equal bytes, so a backend may skip
  objects it already holds, and two writers racing on one digest both succeed.
* A backend never returns bytes it has not read completely; it may, but need not,
  verify digests itself (``Store`` always does; ``verify`` is here for backends).
* Client-library errors are translated into ``enact.errors.StoreError``
  subclasses at the boundary (``StoreUnavailable`` for unreachable servers).
* A backend that keeps the very bytes it is given in this process (the memory
  backend) sets ``in_process = True``: the store then neither caches them again
  nor moves async commits to a thread.

Optional, for stores that can be collected and checked (``enact.gc``): the
``Maintainable`` and ``Inventory`` protocols below, and ``quarantine(damaged)``,
which moves copies found damaged out of the way so that the next ``put`` writes
them afresh (``Store`` calls it when a read fails its digest).

Backends are opened by URL through one table, scheme -> class. ``enact.stores``
registers its own (``memory``, ``file``, ``s3``, ``redis``, ``rediss``); a
third-party package registers more with ``register_scheme``. A class in the table
has ``from_url(url, settings)``; ``settings`` is anything with the attributes of
``BackendSettings`` (in practice ``enact.config.Settings``), so the stores never
import the configuration module.

This is the only core module the stores import, besides ``enact.errors``; it
re-exports what they need of the rest (digest checks, redaction of secrets).
"""

from __future__ import annotations

import re
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

from enact.digests import is_digest, verify
from enact.errors import ConfigError

# enact 0.4's backend queries and the type-metadata types (memory and file stores).
from enact.inspection import BackendQueries
from enact.redaction import redact, redact_url, safe_cause
from enact.types import TypeDescriptor, TypeKey

# What a backend may need from the core, all from this one module: the stores
# import nothing else of enact but enact.errors.
__all__ = [
    "KNOWN_DIGESTS_TTL_S",
    "LOCK_TTL_S",
    "MIN_GRACE_S",
    "REUSE_HORIZON_S",
    "Backend",
    "BackendQueries",
    "BackendSettings",
    "Copy",
    "Inventory",
    "Maintainable",
    "Plan",
    "SweepResult",
    "TypeDescriptor",
    "TypeKey",
    "backend_class",
    "describe",
    "is_digest",
    "redact",
    "redact_url",
    "register_scheme",
    "safe_cause",
    "schemes",
    "verify",
]


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


class BackendSettings(Protocol):
    """What a backend may read from the settings it is opened with."""

    @property
    def redis_prefix(self) -> str: ...

    @property
    def s3_endpoint_url(self) -> str | None: ...

    @property
    def aws_region(self) -> str | None: ...

    @property
    def aws_access_key_id(self) -> str | None: ...

    @property
    def aws_secret_access_key(self) -> str | None: ...

    @property
    def aws_session_token(self) -> str | None: ...

    @property
    def aws_profile(self) -> str | None: ...


_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*")

# scheme -> a function returning the backend class (lets optional backends load lazily)
_SCHEMES: dict[str, Callable[[], Any]] = {}


def register_scheme(scheme: str, load: Callable[[], Any]) -> None:
    """Open URLs ``scheme://...`` with the class ``load()`` returns (its ``from_url``).

    ``load`` runs on first use, so a backend whose client library is an optional
    extra costs nothing until a URL names it; it should raise ``ImportError`` naming
    the extra to install when that library is missing.
    """
    if not _SCHEME_RE.fullmatch(scheme):
        raise ConfigError(
            f"invalid store URL scheme {scheme!r}: a lowercase letter, then letters, "
            "digits, '+', '-' or '.'"
        )
    _SCHEMES[scheme] = load


def schemes() -> list[str]:
    """The URL schemes a backend is registered for, sorted."""
    return sorted(_SCHEMES)


def backend_class(scheme: str) -> Any:
    """The class that opens ``scheme://`` URLs; ``ConfigError`` if none is registered."""
    try:
        load = _SCHEMES[scheme]
    except KeyError:
        raise ConfigError(
            f"no storage backend for URL scheme {scheme!r}; expected one of "
            f"{', '.join(s + '://' for s in schemes())}"
        ) from None
    return load()


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

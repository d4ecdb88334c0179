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
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

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

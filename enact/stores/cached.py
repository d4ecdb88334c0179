"""A fast shared cache tier in front of a slow object backend (Redis before S3).

Workers on different machines keep re-reading the same small records (a flow's
invocation tree when it resumes, the children a replay reuses). Each read from
S3 is a round trip of several to tens of milliseconds; from Redis, a fraction
of one. ``CachedBackend`` writes small objects to both (the backend first, so
the cache never holds what the backend lacks), reads the cache first and fills
it from the backend on a miss. Cached objects expire after ``ttl_s``.

The cache is only a cache: every object stays in the backend, a failing or
flushed cache costs speed, never data. A cached entry that does not hash to its
digest is dropped and the object read from the backend, so a damaged cache entry
is never reported as damage in the backend. Give it a Redis whose memory policy
may evict (``allkeys-lru``) when the broker's Redis must not (``noeviction``):
``ENACT_CACHE_URL``.

Maintenance (gc, fsck, pins) goes to the backend itself, so the cache never
hides what is in S3; fsck may use a cached copy to repair a damaged one there.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Mapping, Sequence

from enact.backend import LOCK_TTL_S, Backend, Inventory, describe, redact

log = logging.getLogger(__name__)

DEFAULT_MAX_OBJECT_BYTES = 64 * 1024
BATCH = 500


class CachedBackend:
    """``backend`` with a Redis read-through and write-through cache for small objects."""

    def __init__(
        self,
        backend: Backend,
        client: Any,
        keys: Any,
        *,
        ttl_s: float = 3600,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
    ) -> None:
        self.backend = backend
        self.client = client
        self.keys = keys
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.max_object_bytes = max_object_bytes

    @property
    def url(self) -> str:
        return describe(self.backend)

    def has(self, digests: Sequence[str]) -> list[bool]:
        return self.backend.has(digests)

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        out = self._cache_get(digests)
        damaged = [
            digests[i]
            for i, data in enumerate(out)
            if data is not None and hashlib.sha256(data).hexdigest() != digests[i]
        ]
        if damaged:
            log.warning(
                "dropped %d object cache entries that fail their digest (first %s); "
                "reading them from %s",
                len(damaged), damaged[0], self.url,
            )  # fmt: skip
            self._cache_drop(damaged)
            bad = set(damaged)
            out = [None if d in bad else data for d, data in zip(digests, out)]
        missing = [i for i, data in enumerate(out) if data is None]
        if missing:
            fetched = self.backend.get([digests[i] for i in missing])
            fill = {}
            for i, data in zip(missing, fetched):
                out[i] = data
                if data is not None and len(data) <= self.max_object_bytes:
                    fill[digests[i]] = data
            self._cache_put(fill)
        return out

    def put(self, objects: Mapping[str, bytes]) -> None:
        self.backend.put(objects)
        self._cache_put({d: b for d, b in objects.items() if len(b) <= self.max_object_bytes})

    def _cache_get(self, digests: Sequence[str]) -> list[bytes | None]:
        try:
            out: list[bytes | None] = []
            for start in range(0, len(digests), BATCH):
                chunk = digests[start : start + BATCH]
                out.extend(self.client.mget([self.keys.object(d) for d in chunk]))
            return out
        except Exception as exc:  # a cache that fails is a cache that misses
            log.warning("object cache unavailable, reading from %s: %s", self.url, redact(exc))
            return [None] * len(digests)

    def cached(self, digests: Sequence[str]) -> list[bytes | None]:
        """Cache entries that hash to their digest (``None`` elsewhere); a repair source."""
        out = self._cache_get(digests)
        return [
            data if data is not None and hashlib.sha256(data).hexdigest() == d else None
            for d, data in zip(digests, out)
        ]

    def _cache_drop(self, digests: Sequence[str]) -> None:
        try:
            self.client.delete(*(self.keys.object(d) for d in digests))
        except Exception as exc:
            log.warning("object cache delete failed: %s", exc)

    # -- maintenance goes to the backend ----------------------------------------

    def _maintained(self) -> Any:
        if not hasattr(self.backend, "inventory"):
            raise TypeError(f"{self.backend!r} supports no gc, fsck or pins")
        return self.backend

    def inventory(self, cutoff_s: float, *, dry_run: bool = False) -> Inventory:
        return self._maintained().inventory(cutoff_s, dry_run=dry_run)  # type: ignore[no-any-return]

    def pins(self) -> dict[str, str]:
        return self._maintained().pins()  # type: ignore[no-any-return]

    def set_pin(self, name: str, digest: str) -> None:
        self._maintained().set_pin(name, digest)

    def remove_pin(self, name: str) -> bool:
        return self._maintained().remove_pin(name)  # type: ignore[no-any-return]

    def lock_maintenance(self, owner: str, ttl_s: float = LOCK_TTL_S) -> None:
        self._maintained().lock_maintenance(owner, ttl_s)

    def unlock_maintenance(self, owner: str) -> None:
        self._maintained().unlock_maintenance(owner)

    def _cache_put(self, objects: Mapping[str, bytes]) -> None:
        if not objects:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for digest, data in objects.items():
                pipe.set(self.keys.object(digest), data, px=self.ttl_ms)
            pipe.execute()
        except Exception as exc:
            log.warning("object cache write failed (objects are in %s): %s", self.url, redact(exc))

    def __repr__(self) -> str:
        return f"CachedBackend({self.backend!r})"

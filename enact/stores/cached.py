"""A fast shared cache tier in front of a slow object backend (Redis before S3).

Workers on different machines keep re-reading the same small records (a flow's
invocation tree when it resumes, the children a replay reuses). Each read from
S3 is a round trip of several to tens of milliseconds; from Redis, a fraction
of one. ``CachedBackend`` writes small objects to both (the backend first, so
the cache never holds what the backend lacks), reads the cache first and fills
it from the backend on a miss. Cached objects expire after ``ttl_s``.

The cache is only a cache: every object stays in the backend, a failing or
flushed cache costs speed, never data, and ``Store`` still verifies every digest
it reads. Give it a Redis whose memory policy may evict (``allkeys-lru``) when
the broker's Redis must not (``noeviction``): ``ENACT_CACHE_URL``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from enact.backend import Backend, describe
from enact.redaction import redact

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

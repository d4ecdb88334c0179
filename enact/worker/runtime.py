"""Per-process connections: the object store and the Redis state.

Each worker process (and each client) opens one ``Store`` and one
``RedisState`` from configuration, on first use, and shares them between
threads; after a fork the child opens its own.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from enact.store import Store

_lock = threading.Lock()
_cached: dict[str, Any] = {}


def _get(name: str, factory: Any) -> Any:
    key = f"{name}:{os.getpid()}"
    value = _cached.get(key)
    if value is None:
        with _lock:
            value = _cached.get(key)
            if value is None:
                value = _cached[key] = factory()
    return value


def store() -> Store:
    """The store named by ``ENACT_STORE_URL`` (default: the local file store).

    A remote store (S3) gets the shared Redis object cache in front of it
    (``ENACT_CACHE_URL``, ``ENACT_CACHE_TTL_S``; see ``enact.stores.cached``).
    """
    return _get("store", _open_store)  # type: ignore[no-any-return]


def _open_store() -> Store:
    from enact import config

    backend = config.open_backend()
    url = config.cache_url()
    ttl_s = config.cache_ttl_s()
    s3 = sys.modules.get("enact.stores.s3")  # an S3Backend means its module is loaded
    if url and ttl_s > 0 and s3 is not None and isinstance(backend, s3.S3Backend):
        from enact.stores._keys import RedisKeys
        from enact.stores.cached import CachedBackend
        from enact.stores.redis import make_client

        client = make_client(url, decode_responses=False)
        keys = RedisKeys(config.redis_prefix())
        backend = CachedBackend(backend, client, keys, ttl_s=ttl_s)
    return Store(backend)


def state() -> Any:
    """The ``RedisState`` at ``ENACT_REDIS_URL`` under ``ENACT_REDIS_PREFIX``."""
    from enact.stores.redis import RedisState

    return _get("state", RedisState.from_url)


def reset() -> None:
    """Forget the cached connections (tests switch configurations with this)."""
    with _lock:
        _cached.clear()


def redis_bytes() -> Any:
    """A Redis client for binary values (work lists of packed calls), same server."""
    from enact import config
    from enact.stores.redis import make_client

    return _get("redis_bytes", lambda: make_client(config.redis_url(), decode_responses=False))

"""Per-process connections: the object store and the Redis state.

Each worker process (and each client) opens one ``Store`` and one
``RedisState`` from configuration, on first use, and shares them between
threads; after a fork the child opens its own.
"""

from __future__ import annotations

import os
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
    """The store named by ``ENACT_STORE_URL`` (default: the local file store)."""
    return _get("store", Store)  # type: ignore[no-any-return]


def state() -> Any:
    """The ``RedisState`` at ``ENACT_REDIS_URL`` under ``ENACT_REDIS_PREFIX``."""
    from enact.stores.redis import RedisState

    return _get("state", RedisState.from_url)


def reset() -> None:
    """Forget the cached connections (tests switch configurations with this)."""
    with _lock:
        _cached.clear()

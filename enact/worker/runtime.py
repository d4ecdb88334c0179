"""Per-process state of a worker (or a client): its settings and connections.

A process has one ``Settings`` (``configure(settings)``, or read once from the
environment on first use) and opens, from it, one ``Store``, one ``RedisState``
(named refs) and one ``FlowState`` (flows, input requests, map lists) on first
use, shared between threads; after a fork the child opens its own.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import Any, Callable

from enact.config import Settings, open_backend
from enact.store import Store
from enact.stores.cached import CachedBackend
from enact.stores.redis import RedisKeys, RedisState, make_client
from enact.worker.flowstate import FlowState

_lock = threading.Lock()
_settings: Settings | None = None
_cached: dict[str, Any] = {}


def settings() -> Settings:
    """This process's settings: as configured, else read from the environment once."""
    global _settings
    if _settings is None:
        with _lock:
            if _settings is None:
                _settings = Settings.from_env()
    return _settings


def configure(new: Settings | None = None) -> Settings:
    """Use ``new`` (default: read the environment now) and forget open connections."""
    global _settings
    with _lock:
        _settings = new or Settings.from_env()
        _cached.clear()
        return _settings


def reset() -> None:
    """Forget the settings and the connections (tests switch configurations with this)."""
    global _settings
    with _lock:
        _settings = None
        _cached.clear()


def _get(name: str, factory: Callable[[Settings], Any]) -> Any:
    key = f"{name}:{os.getpid()}"
    value = _cached.get(key)
    if value is None:
        current = settings()
        with _lock:
            value = _cached.get(key)
            if value is None:
                value = _cached[key] = factory(current)
    return value


def store() -> Store:
    """The store named by ``settings().store_url`` (default: the local file store).

    An S3 store gets the shared Redis object cache in front of it
    (``ENACT_CACHE_URL``, ``ENACT_CACHE_TTL_S``; see ``enact.stores.cached``).
    """
    return _get("store", _open_store)  # type: ignore[no-any-return]


def _open_store(s: Settings) -> Store:
    backend = open_backend(None, s)
    scheme = urllib.parse.urlsplit(s.store_url).scheme.lower()
    if s.cache_url and s.cache_ttl_s > 0 and scheme == "s3":
        client = make_client(s.cache_url, decode_responses=False, **redis_options(s))
        backend = CachedBackend(backend, client, RedisKeys(s.redis_prefix), ttl_s=s.cache_ttl_s)
    return Store(backend, settings=s)


def state() -> RedisState:
    """The ``RedisState`` at ``ENACT_REDIS_URL`` under ``ENACT_REDIS_PREFIX``."""
    return _get(  # type: ignore[no-any-return]
        "state", lambda s: RedisState.from_url(s.redis_url, settings=s, **redis_options(s))
    )


def redis_options(s: Settings) -> dict[str, Any]:
    """Client options with the settings' finite timeouts: a silent server fails in
    seconds (a read that timed out is not retried)."""
    return {
        "socket_timeout": s.redis_timeout_s,
        "socket_connect_timeout": s.redis_connect_timeout_s,
        "retry_timeouts": False,
    }


def flow_state() -> FlowState:
    """The ``FlowState`` at ``ENACT_REDIS_URL`` under ``ENACT_REDIS_PREFIX``, with the
    settings' timeouts, lease, redispatch and retention."""
    return _get("flow_state", FlowState.from_settings)  # type: ignore[no-any-return]

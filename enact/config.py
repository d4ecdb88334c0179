"""The one place that reads configuration: store URLs and ``ENACT_*`` variables.

Precedence everywhere: an explicit object, then an explicit URL, then the
``ENACT_*`` variable, then the default. Settings are read from a mapping
(``os.environ`` unless one is passed), never at import time, so tests pass a dict.

Store URLs:

==============================  ==============================================
``memory://``                   a process-local in-memory backend
``file:///abs/path``            a directory (``file:relative/path`` also works)
``s3://bucket/prefix``          S3 or any S3-compatible server (``enact[s3]``)
``redis://host:port/db``        objects kept in Redis itself (``enact[redis]``)
==============================  ==============================================
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from enact.errors import ConfigError
from enact.redaction import redact, redact_url

if TYPE_CHECKING:
    from enact.backend import Backend

ENV_STORE_URL = "ENACT_STORE_URL"
ENV_REDIS_URL = "ENACT_REDIS_URL"
ENV_BROKER_URL = "ENACT_BROKER_URL"
ENV_IMPORTS = "ENACT_IMPORTS"
ENV_REDIS_PREFIX = "ENACT_REDIS_PREFIX"
ENV_S3_ENDPOINT_URL = "ENACT_S3_ENDPOINT_URL"

DEFAULT_STORE_URL = "file:.enact"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_PREFIX = "enact"

STORE_SCHEMES = ("memory", "file", "s3", "redis", "rediss")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL."""

    scheme: str
    netloc: str
    path: str
    query: dict[str, str]
    raw: str


def parse_store_url(url: str) -> StoreURL:
    """Parse and validate a store URL; raise ``ConfigError`` naming what is wrong."""
    if not isinstance(url, str):
        raise ConfigError(f"store URL must be a string, got a {type(url).__qualname__}")
    if not url:
        raise ConfigError("store URL is empty; pass a URL such as file:.enact or memory://")
    shown = redact_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unbalanced "[" in the host, for instance
        raise ConfigError(f"store URL {shown!r} is malformed: {redact(exc)}") from None
    scheme = parts.scheme.lower()
    if scheme not in STORE_SCHEMES:
        raise ConfigError(
            f"store URL {shown!r} has unsupported scheme {parts.scheme!r}; "
            f"expected one of {', '.join(s + '://' for s in STORE_SCHEMES)}"
        )
    query = dict(urllib.parse.parse_qsl(parts.query))
    if scheme == "file":
        path = parts.path if not parts.netloc else parts.netloc + parts.path
        if not path:
            raise ConfigError(f"store URL {shown!r} names no directory")
        return StoreURL(scheme, "", path, query, url)
    if scheme == "s3" and not parts.netloc:
        raise ConfigError(f"store URL {shown!r} names no bucket (expected s3://bucket/prefix)")
    return StoreURL(scheme, parts.netloc, parts.path, query, url)


def store_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The store URL to use: ``url``, else ``$ENACT_STORE_URL``, else the default."""
    return url or _env(env).get(ENV_STORE_URL) or DEFAULT_STORE_URL


def open_backend(
    spec: Backend | str | None = None, env: Mapping[str, str] | None = None
) -> Backend:
    """Turn a backend object, a URL or the environment into a backend."""
    if spec is not None and not isinstance(spec, str):
        from enact.backend import Backend

        if not isinstance(spec, Backend):
            raise TypeError(
                f"expected a store URL or a backend (with has, get and put), got {spec!r} "
                f"of type {type(spec).__qualname__}"
            )
        return spec
    if spec == "":
        raise ConfigError("store URL is empty; pass a URL such as file:.enact or memory://")
    url = store_url(spec, env)
    parsed = parse_store_url(url)
    if parsed.scheme == "memory":
        from enact.stores.memory import MemoryBackend

        return MemoryBackend()
    if parsed.scheme == "file":
        from enact.stores.file import FileBackend

        return FileBackend(parsed.path)
    if parsed.scheme == "s3":
        from enact import stores

        return stores.S3Backend.from_url(url, env=_env(env))
    from enact import stores

    return stores.RedisBackend.from_url(url, env=_env(env))


def redis_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The Redis URL for refs and input requests."""
    return url or _env(env).get(ENV_REDIS_URL) or DEFAULT_REDIS_URL


def broker_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The Celery broker URL: ``$ENACT_BROKER_URL``, else the Redis URL."""
    return url or _env(env).get(ENV_BROKER_URL) or redis_url(env=env)


def redis_prefix(prefix: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The key prefix under which enact keeps everything in Redis."""
    return prefix or _env(env).get(ENV_REDIS_PREFIX) or DEFAULT_REDIS_PREFIX


def imports(env: Mapping[str, str] | None = None) -> list[str]:
    """User modules to import at worker start (comma or whitespace separated)."""
    raw = _env(env).get(ENV_IMPORTS, "")
    return [name for name in raw.replace(",", " ").split() if name]


def s3_endpoint_url(env: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint: ``$ENACT_S3_ENDPOINT_URL``, else ``$AWS_ENDPOINT_URL_S3`` or
    ``$AWS_ENDPOINT_URL``."""
    e = _env(env)
    return (
        e.get(ENV_S3_ENDPOINT_URL) or e.get("AWS_ENDPOINT_URL_S3") or e.get("AWS_ENDPOINT_URL")
    ) or None


def s3_settings(env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Endpoint, region and credentials for S3, from ``ENACT_S3_ENDPOINT_URL`` and ``AWS_*``.

    Keys match ``S3Backend``'s keyword arguments. A value left ``None`` lets boto3
    fall back to its own chain (shared config files, instance roles).
    """
    e = _env(env)
    return {
        "endpoint_url": s3_endpoint_url(env),
        "region_name": e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or None,
        "aws_access_key_id": e.get("AWS_ACCESS_KEY_ID") or None,
        "aws_secret_access_key": e.get("AWS_SECRET_ACCESS_KEY") or None,
        "aws_session_token": e.get("AWS_SESSION_TOKEN") or None,
        "profile_name": e.get("AWS_PROFILE") or None,
    }


ENV_VISIBILITY_TIMEOUT_S = "ENACT_VISIBILITY_TIMEOUT_S"
ENV_WORKER_CONCURRENCY = "ENACT_WORKER_CONCURRENCY"
ENV_WORKER_POOL = "ENACT_WORKER_POOL"
ENV_CHECKPOINT_INTERVAL_S = "ENACT_CHECKPOINT_INTERVAL_S"
ENV_FLOW_LOCK_TTL_S = "ENACT_FLOW_LOCK_TTL_S"

DEFAULT_VISIBILITY_TIMEOUT_S = 3600.0
DEFAULT_WORKER_CONCURRENCY = 16
DEFAULT_WORKER_POOL = "threads"
DEFAULT_CHECKPOINT_INTERVAL_S = 0.0
DEFAULT_FLOW_LOCK_TTL_S = 30.0


def _number(env: Mapping[str, str] | None, name: str, default: float) -> float:
    raw = _env(env).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


def visibility_timeout_s(env: Mapping[str, str] | None = None) -> float:
    """Seconds before the Redis broker redelivers an unacknowledged task."""
    return _number(env, ENV_VISIBILITY_TIMEOUT_S, DEFAULT_VISIBILITY_TIMEOUT_S)


def worker_concurrency(env: Mapping[str, str] | None = None) -> int:
    return int(_number(env, ENV_WORKER_CONCURRENCY, DEFAULT_WORKER_CONCURRENCY)) or 1


def worker_pool(env: Mapping[str, str] | None = None) -> str:
    return _env(env).get(ENV_WORKER_POOL) or DEFAULT_WORKER_POOL


def checkpoint_interval_s(env: Mapping[str, str] | None = None) -> float:
    """Minimum seconds between two checkpoints of a running flow (0: every step)."""
    return _number(env, ENV_CHECKPOINT_INTERVAL_S, DEFAULT_CHECKPOINT_INTERVAL_S)


def flow_lock_ttl_s(env: Mapping[str, str] | None = None) -> float:
    """How long a dead worker's claim on a flow outlives it."""
    return _number(env, ENV_FLOW_LOCK_TTL_S, DEFAULT_FLOW_LOCK_TTL_S) or DEFAULT_FLOW_LOCK_TTL_S


ENV_CACHE_URL = "ENACT_CACHE_URL"
ENV_CACHE_TTL_S = "ENACT_CACHE_TTL_S"
DEFAULT_CACHE_TTL_S = 3600.0


def cache_url(env: Mapping[str, str] | None = None) -> str | None:
    """Redis for the shared object cache: ``$ENACT_CACHE_URL``, else the Redis URL.

    ``ENACT_CACHE_URL=none`` turns the cache off.
    """
    raw = _env(env).get(ENV_CACHE_URL)
    if raw and raw.lower() in ("none", "off", "0"):
        return None
    return raw or redis_url(env=env)


def cache_ttl_s(env: Mapping[str, str] | None = None) -> float:
    """How long a cached object lives in the shared cache (0 turns the cache off)."""
    return _number(env, ENV_CACHE_TTL_S, DEFAULT_CACHE_TTL_S)


ENV_GC_GRACE_S = "ENACT_GC_GRACE_S"
DEFAULT_GC_GRACE_S = 3600.0


def gc_grace_s(env: Mapping[str, str] | None = None) -> float:
    """How old an unreachable object must be before gc deletes it (seconds)."""
    return _number(env, ENV_GC_GRACE_S, DEFAULT_GC_GRACE_S)

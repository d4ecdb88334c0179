"""Configuration: one frozen ``Settings`` object, read once from the environment.

``Settings.from_env()`` reads every ``ENACT_*`` (and ``AWS_*``) variable, validates it
(``ConfigError`` naming the variable) and returns a frozen object; constructors take
it explicitly (``Store``, ``open_backend``, the worker, the CLI), and a constructor
given none reads the environment once, when it runs. Nothing reads the environment
at import time or on every call, so tests pass a mapping: ``Settings.from_env({...})``.

Precedence everywhere: an explicit object, then an explicit URL, then the ``ENACT_*``
variable, then the default.

Store URLs (the backends are looked up in ``enact.backend``'s scheme table):

==============================  ==============================================
``memory://``                   a process-local in-memory backend
``file:///abs/path``            a directory (``file:relative/path`` also works)
``s3://bucket/prefix``          S3 or any S3-compatible server (``enact[s3]``)
``redis://host:port/db``        objects kept in Redis itself (``enact[redis]``)
==============================  ==============================================

To add a setting: one field (with its default) on ``Settings``, one line in
``from_env``, one row in the README's table of variables.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping

from enact.backend import Backend, backend_class, schemes
from enact.errors import ConfigError
from enact.redaction import redact, redact_url

ENV_STORE_URL = "ENACT_STORE_URL"
ENV_REDIS_URL = "ENACT_REDIS_URL"
ENV_BROKER_URL = "ENACT_BROKER_URL"
ENV_IMPORTS = "ENACT_IMPORTS"
ENV_REDIS_PREFIX = "ENACT_REDIS_PREFIX"
ENV_S3_ENDPOINT_URL = "ENACT_S3_ENDPOINT_URL"
ENV_VISIBILITY_TIMEOUT_S = "ENACT_VISIBILITY_TIMEOUT_S"
ENV_WORKER_CONCURRENCY = "ENACT_WORKER_CONCURRENCY"
ENV_WORKER_POOL = "ENACT_WORKER_POOL"
ENV_CHECKPOINT_INTERVAL_S = "ENACT_CHECKPOINT_INTERVAL_S"
ENV_FLOW_LOCK_TTL_S = "ENACT_FLOW_LOCK_TTL_S"
ENV_CACHE_URL = "ENACT_CACHE_URL"
ENV_CACHE_TTL_S = "ENACT_CACHE_TTL_S"
ENV_GC_GRACE_S = "ENACT_GC_GRACE_S"
# Durable flows (enact.worker.flowstate): leases, recovery, retention, timeouts.
ENV_FLOW_REDISPATCH_S = "ENACT_FLOW_REDISPATCH_S"
ENV_FLOW_RETENTION_S = "ENACT_FLOW_RETENTION_S"
ENV_RECOVERY_INTERVAL_S = "ENACT_RECOVERY_INTERVAL_S"
ENV_REDIS_TIMEOUT_S = "ENACT_REDIS_TIMEOUT_S"
ENV_REDIS_CONNECT_TIMEOUT_S = "ENACT_REDIS_CONNECT_TIMEOUT_S"
ENV_BROKER_TIMEOUT_S = "ENACT_BROKER_TIMEOUT_S"
ENV_MAP_TIMEOUT_S = "ENACT_MAP_TIMEOUT_S"

DEFAULT_STORE_URL = "file:.enact"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_PREFIX = "enact"
DEFAULT_VISIBILITY_TIMEOUT_S = 3600.0
DEFAULT_WORKER_CONCURRENCY = 16
DEFAULT_WORKER_POOL = "threads"
DEFAULT_CHECKPOINT_INTERVAL_S = 0.0
DEFAULT_FLOW_LOCK_TTL_S = 15.0  # a running flow's lease; renewed every third of it
DEFAULT_CACHE_TTL_S = 3600.0
DEFAULT_GC_GRACE_S = 3600.0
DEFAULT_FLOW_REDISPATCH_S = 30.0  # a queued flow's task is sent again if not started by then
DEFAULT_FLOW_RETENTION_S = 7 * 24 * 3600.0  # a finished flow's Redis state expires after
DEFAULT_RECOVERY_INTERVAL_S = 2.0  # each worker's recovery loop period
DEFAULT_REDIS_TIMEOUT_S = 5.0  # a Redis command without a reply fails after this
DEFAULT_REDIS_CONNECT_TIMEOUT_S = 2.0
DEFAULT_BROKER_TIMEOUT_S = 5.0  # sending a task gives up after about this
DEFAULT_MAP_TIMEOUT_S = 3600.0  # enact.worker.map / replay_many without a timeout

_FOLLOW_REDIS = ""  # cache_url: use redis_url


@dataclass(frozen=True)
class Settings:
    """Every setting enact reads, resolved. Build it with ``from_env`` or by hand.

    ``broker_url=None`` follows ``redis_url``; ``cache_url=""`` follows ``redis_url``
    and ``cache_url=None`` turns the shared object cache off.
    """

    store_url: str = DEFAULT_STORE_URL
    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str | None = None
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    imports: tuple[str, ...] = ()
    s3_endpoint_url: str | None = None
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    aws_session_token: str | None = dataclasses.field(default=None, repr=False)
    aws_profile: str | None = None
    visibility_timeout_s: float = DEFAULT_VISIBILITY_TIMEOUT_S
    worker_concurrency: int = DEFAULT_WORKER_CONCURRENCY
    worker_pool: str = DEFAULT_WORKER_POOL
    checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S
    flow_lock_ttl_s: float = DEFAULT_FLOW_LOCK_TTL_S
    cache_url: str | None = _FOLLOW_REDIS
    cache_ttl_s: float = DEFAULT_CACHE_TTL_S
    gc_grace_s: float = DEFAULT_GC_GRACE_S
    flow_redispatch_s: float = DEFAULT_FLOW_REDISPATCH_S
    flow_retention_s: float = DEFAULT_FLOW_RETENTION_S
    recovery_interval_s: float = DEFAULT_RECOVERY_INTERVAL_S
    redis_timeout_s: float = DEFAULT_REDIS_TIMEOUT_S
    redis_connect_timeout_s: float = DEFAULT_REDIS_CONNECT_TIMEOUT_S
    broker_timeout_s: float = DEFAULT_BROKER_TIMEOUT_S
    map_timeout_s: float = DEFAULT_MAP_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.broker_url is None:
            object.__setattr__(self, "broker_url", self.redis_url)
        if self.cache_url == _FOLLOW_REDIS:
            object.__setattr__(self, "cache_url", self.redis_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default ``os.environ``), once."""
        e = os.environ if env is None else env

        def text(name: str) -> str | None:
            return e.get(name) or None

        redis_url = text(ENV_REDIS_URL) or DEFAULT_REDIS_URL
        cache_raw = text(ENV_CACHE_URL)
        cache_off = cache_raw is not None and cache_raw.lower() in ("none", "off", "0")
        return cls(
            store_url=text(ENV_STORE_URL) or DEFAULT_STORE_URL,
            redis_url=redis_url,
            broker_url=text(ENV_BROKER_URL) or redis_url,
            redis_prefix=text(ENV_REDIS_PREFIX) or DEFAULT_REDIS_PREFIX,
            imports=tuple(n for n in (e.get(ENV_IMPORTS) or "").replace(",", " ").split() if n),
            s3_endpoint_url=(
                text(ENV_S3_ENDPOINT_URL) or text("AWS_ENDPOINT_URL_S3") or text("AWS_ENDPOINT_URL")
            ),
            aws_region=text("AWS_REGION") or text("AWS_DEFAULT_REGION"),
            aws_access_key_id=text("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=text("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=text("AWS_SESSION_TOKEN"),
            aws_profile=text("AWS_PROFILE"),
            visibility_timeout_s=_number(e, ENV_VISIBILITY_TIMEOUT_S, DEFAULT_VISIBILITY_TIMEOUT_S),
            worker_concurrency=int(_number(e, ENV_WORKER_CONCURRENCY, DEFAULT_WORKER_CONCURRENCY))
            or 1,
            worker_pool=text(ENV_WORKER_POOL) or DEFAULT_WORKER_POOL,
            checkpoint_interval_s=_number(
                e, ENV_CHECKPOINT_INTERVAL_S, DEFAULT_CHECKPOINT_INTERVAL_S
            ),
            flow_lock_ttl_s=_number(e, ENV_FLOW_LOCK_TTL_S, DEFAULT_FLOW_LOCK_TTL_S)
            or DEFAULT_FLOW_LOCK_TTL_S,
            cache_url=None if cache_off else (cache_raw or redis_url),
            cache_ttl_s=_number(e, ENV_CACHE_TTL_S, DEFAULT_CACHE_TTL_S),
            gc_grace_s=_number(e, ENV_GC_GRACE_S, DEFAULT_GC_GRACE_S),
            flow_redispatch_s=_positive(e, ENV_FLOW_REDISPATCH_S, DEFAULT_FLOW_REDISPATCH_S),
            flow_retention_s=_positive(e, ENV_FLOW_RETENTION_S, DEFAULT_FLOW_RETENTION_S),
            recovery_interval_s=_positive(e, ENV_RECOVERY_INTERVAL_S, DEFAULT_RECOVERY_INTERVAL_S),
            redis_timeout_s=_positive(e, ENV_REDIS_TIMEOUT_S, DEFAULT_REDIS_TIMEOUT_S),
            redis_connect_timeout_s=_positive(
                e, ENV_REDIS_CONNECT_TIMEOUT_S, DEFAULT_REDIS_CONNECT_TIMEOUT_S
            ),
            broker_timeout_s=_positive(e, ENV_BROKER_TIMEOUT_S, DEFAULT_BROKER_TIMEOUT_S),
            map_timeout_s=_positive(e, ENV_MAP_TIMEOUT_S, DEFAULT_MAP_TIMEOUT_S),
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if isinstance(value, str) and "://" in value:
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0 or value != value:
        raise ConfigError(f"{name}={raw!r} must be a non-negative number")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number where 0 means the default (a zero timeout is never meant)."""
    return _number(env, name, default) or default


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
    if scheme not in schemes():
        raise ConfigError(
            f"store URL {shown!r} has unsupported scheme {parts.scheme!r}; "
            f"expected one of {', '.join(s + '://' for s in schemes())}"
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


def open_backend(spec: Backend | str | None = None, settings: Settings | None = None) -> Backend:
    """Turn a backend object, a URL or the settings' store URL into a backend."""
    if spec is not None and not isinstance(spec, str):
        if not isinstance(spec, Backend):
            raise TypeError(
                f"expected a store URL or a backend (with has, get and put), got {spec!r} "
                f"of type {type(spec).__qualname__}"
            )
        return spec
    if spec == "":
        raise ConfigError("store URL is empty; pass a URL such as file:.enact or memory://")
    settings = settings or Settings.from_env()
    url = spec or settings.store_url
    parsed = parse_store_url(url)
    backend: Backend = backend_class(parsed.scheme).from_url(url, settings)
    return backend

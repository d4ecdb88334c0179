"""Redis for the mutable side of enact: named refs, and optionally objects.

``RedisState`` keeps what changes: refs (a name pointing at a digest, with
atomic compare-and-set and a history). ``RedisBackend`` is the object
``Backend`` protocol on Redis, for deployments without S3. (Flows and their
input requests live in ``enact.worker.flowstate``, which uses this module's
client factory and error translation.)

Invariants:

* Every key comes from ``enact.stores._keys`` under one prefix; the schema is
  written out there.
* Every multi-key change is one Lua script (the ``.lua`` files beside this
  module), so it is atomic and a client that dies half-way leaves nothing
  half-done. Times come from the server's clock.
* Connection errors are retried with exponential backoff (a Redis restart
  between two operations is invisible); after the retries they raise
  ``StoreUnavailable`` naming ``host:port``, never the password.

The scripts touch only the keys passed to them, but keys of one call do not
share a hash slot: this targets standalone Redis (or a primary with replicas),
not Redis Cluster.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.parse
from contextlib import contextmanager
from importlib import resources
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

import redis
from redis.backoff import EqualJitterBackoff
from redis.retry import Retry

from enact.backend import (
    LOCK_TTL_S,
    REUSE_HORIZON_S,
    BackendSettings,
    Copy,
    Plan,
    SweepResult,
    is_digest,
    redact,
    redact_url,
    safe_cause,
)
from enact.errors import (
    ConfigError,
    ConflictError,
    StoreError,
    StoreUnavailable,
)
from enact.stores._keys import DEFAULT_PREFIX, RedisKeys
from enact.stores._timed import TimedObjects

__all__ = [
    "BATCH", "HISTORY_LIMIT", "RedisBackend", "RedisKeys", "RedisState", "make_client",
    "redis_errors", "server_seconds", "split_url",
]  # fmt: skip

RETRIES = 6  # backoff 0.05 s doubling, capped at 1 s: about 3 s before giving up
HEALTH_CHECK_INTERVAL_S = 15
SOCKET_TIMEOUT_S = 10.0
SOCKET_CONNECT_TIMEOUT_S = 2.0
HISTORY_LIMIT = 1000
BATCH = 500  # keys per pipeline round trip
QUARANTINE_TTL_MS = 7 * 24 * 3600 * 1000

log = logging.getLogger(__name__)

_SCHEMES = ("redis", "rediss", "unix")
_CLIENT_OPTIONS = {
    "retries": int,
    "health_check_interval": int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
}


def _load_script(name: str) -> str:
    return resources.files("enact.stores").joinpath(name).read_text(encoding="utf-8")


def _where(url: str) -> str:
    """``host:port/db`` of a Redis URL, without user or password."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "localhost"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379  # reported as malformed elsewhere
    db = parts.path.lstrip("/")
    return f"{host}:{port}" + (f"/{db}" if db else "")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Check a Redis URL; return it without enact's own query parameters, and those.

    ``prefix`` and the client options (``retries``, ``health_check_interval``,
    ``socket_timeout``, ``socket_connect_timeout``) are ours; any other query
    parameter is left for redis-py. Raises ``ConfigError`` naming the problem.
    """
    if not isinstance(url, str) or not url:
        raise ConfigError(f"Redis URL must be a non-empty string, got {url!r}")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unbalanced "[" in the host, for instance
        raise ConfigError(f"Redis URL {redact_url(url)!r} is malformed: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(
            f"Redis URL {redact_url(url)!r} must start with redis://, rediss:// or unix://"
        )
    if parts.scheme != "unix":
        if not parts.hostname:
            raise ConfigError(f"Redis URL {redact_url(url)!r} names no host")
        try:
            _ = parts.port
        except ValueError:
            raise ConfigError(f"Redis URL {redact_url(url)!r} has an invalid port") from None
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ConfigError(f"Redis URL {redact_url(url)!r}: database {db!r} is not a number")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k == "prefix" or k in _CLIENT_OPTIONS}
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in ours])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), ours


class _NotRetried(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class _Retry(Retry):
    """Retries connection errors with backoff, but not refused credentials.

    redis-py's ``AuthenticationError`` is a ``ConnectionError``; retrying it only
    delays the error a user must fix.
    """

    def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        def guarded() -> Any:
            try:
                return do()
            except redis.exceptions.AuthenticationError as exc:
                raise _NotRetried(exc) from exc

        try:
            return super().call_with_retry(guarded, fail, *args, **kwargs)
        except _NotRetried as wrapped:
            raise wrapped.error from None


def make_client(
    url: str,
    *,
    decode_responses: bool,
    retries: int = RETRIES,
    health_check_interval: int = HEALTH_CHECK_INTERVAL_S,
    socket_timeout: float = SOCKET_TIMEOUT_S,
    socket_connect_timeout: float = SOCKET_CONNECT_TIMEOUT_S,
    retry_timeouts: bool = True,
) -> redis.Redis:
    """A redis-py client that reconnects with backoff and health-checks idle connections.

    With ``retry_timeouts=False`` a read that times out is not tried again: a
    server that accepts connections and never answers costs ``socket_timeout``
    seconds, not that times the retries (refused connections are still retried).
    """
    plain, ours = split_url(url)
    options: dict[str, Any] = {
        "retries": retries,
        "health_check_interval": health_check_interval,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
    }
    for name, raw in ours.items():
        if name != "prefix":
            try:
                options[name] = _CLIENT_OPTIONS[name](raw)
            except ValueError:
                raise ConfigError(f"Redis URL option {name}={raw!r} is not a number") from None
    retried: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError,)
    if retry_timeouts:
        retried += (redis.exceptions.TimeoutError, TimeoutError)
    retry = _Retry(
        EqualJitterBackoff(cap=1.0, base=0.05), options.pop("retries"), supported_errors=retried
    )
    try:
        from_url: Any = redis.Redis.from_url  # the stubs' overloads want a literal bool
        return from_url(  # type: ignore[no-any-return]
            plain,
            decode_responses=decode_responses,
            retry=retry,
            retry_on_error=list(retried),
            **options,
        )
    except (ValueError, TypeError) as exc:
        message = f"invalid Redis URL {redact_url(url)!r}: {redact(exc)}"
        raise ConfigError(message) from safe_cause(exc)


def _prefix(url: str, prefix: str | None, settings: BackendSettings | None) -> str:
    """The key prefix: explicit, else the URL's ``?prefix=``, else the settings'."""
    _, ours = split_url(url)
    return prefix or ours.get("prefix") or (settings.redis_prefix if settings else DEFAULT_PREFIX)


def _client_where(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def redis_errors(client: redis.Redis, action: str) -> Any:
    """A context manager translating redis-py errors of ``client`` into ours
    (``StoreUnavailable`` for an unreachable or silent server), naming the server
    but never the password."""
    return _errors(_client_where(client), action)


def server_seconds(server_time: Any) -> float:
    """A Redis ``TIME`` reply as unix seconds."""
    return _seconds(server_time)


@contextmanager
def _errors(where: str, action: str) -> Iterator[None]:
    """Translate redis-py errors into ours, naming the server but not the password."""
    try:
        yield
    except redis.exceptions.AuthenticationError as exc:
        error = StoreError(f"Redis at {where} refused the credentials while {action}")
        raise error from safe_cause(exc)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        error = StoreUnavailable(f"Redis at {where} unreachable while {action}: {redact(exc)}")
        raise error from safe_cause(exc)
    except redis.exceptions.RedisError as exc:
        text = redact(exc)
        if "NOAUTH" in text or "WRONGPASS" in text or "NOPERM" in text:
            error = StoreError(f"Redis at {where} refused access while {action}: {text}")
        else:
            error = StoreError(f"Redis at {where} failed while {action}: {text}")
        raise error from safe_cause(exc)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBackend:
    """The object ``Backend`` on Redis: ``P:obj:<digest>`` strings, batched writes.

    Each object's last write time (server clock) is kept in ``P:objtime``, so
    gc can tell old objects from young ones; see ``redis_obj_put.lua``.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str | None = None,
        *,
        url: str | None = None,
        reuse_horizon_s: float = REUSE_HORIZON_S,
    ) -> None:
        self._client = client
        self.keys = RedisKeys(prefix or DEFAULT_PREFIX)
        self._where = _client_where(client)
        self._url = redact_url(url) if url else f"redis://{self._where}"
        self.reuse_horizon_s = reuse_horizon_s
        self._put_script = client.register_script(_load_script("redis_obj_put.lua"))
        self._delete_script = client.register_script(_load_script("redis_obj_delete.lua"))
        self._quarantine_script = client.register_script(_load_script("redis_obj_quarantine.lua"))
        self._lock_script = client.register_script(_load_script("redis_gc_lock.lua"))
        self._unlock_script = client.register_script(_load_script("redis_gc_unlock.lua"))

    @classmethod
    def from_url(
        cls, url: str, settings: BackendSettings | None = None, prefix: str | None = None
    ) -> RedisBackend:
        """Open ``redis://[user:password@]host:port/db?prefix=...`` (also ``rediss://``).

        The prefix comes from ``prefix``, else the URL, else ``settings.redis_prefix``
        (``ENACT_REDIS_PREFIX``), else ``enact``.
        """
        return cls(
            make_client(url, decode_responses=False), _prefix(url, prefix, settings), url=url
        )

    @property
    def url(self) -> str:
        return self._url

    @property
    def client(self) -> redis.Redis:
        return self._client

    def has(self, digests: Sequence[str]) -> list[bool]:
        out: list[bool] = []
        with _errors(self._where, "checking objects"):
            for start in range(0, len(digests), BATCH):
                pipe = self._client.pipeline(transaction=False)
                for digest in digests[start : start + BATCH]:
                    pipe.exists(self.keys.object(digest))
                out += [bool(n) for n in pipe.execute()]
        return out

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        with _errors(self._where, "reading objects"):
            for start in range(0, len(digests), BATCH):
                keys = [self.keys.object(d) for d in digests[start : start + BATCH]]
                found: list[Any] = self._client.mget(keys)
                out += found
        return out

    def put(self, objects: Mapping[str, bytes]) -> None:
        """Store objects; one written within the reuse horizon is trusted, not rewritten."""
        items = list(objects.items())
        times = self.keys.object_times()
        with _errors(self._where, "writing objects"):
            for start in range(0, len(items), BATCH):
                chunk = items[start : start + BATCH]
                args: list[Any] = [repr(self.reuse_horizon_s)]
                for digest, data in chunk:
                    args += [digest, data]
                keys = [times, *(self.keys.object(d) for d, _ in chunk)]
                self._put_script(keys=keys, args=args)

    # -- containment ----------------------------------------------------------

    def quarantine(self, damaged: Mapping[str, bytes]) -> list[str]:
        """Move objects still holding these damaged bytes to ``P:quarantine:<digest>``.

        The digest then reads as missing, so the next put, from any process,
        writes a good copy. Quarantined bytes expire after a week.
        """
        done = []
        for digest, data in damaged.items():
            keys = [
                self.keys.object_times(),
                self.keys.object(digest),
                self.keys.quarantine(digest),
            ]
            args: list[Any] = [digest, hashlib.sha1(data).hexdigest(), QUARANTINE_TTL_MS]
            with _errors(self._where, f"moving damaged object {digest} aside"):
                moved = self._quarantine_script(keys=keys, args=args)
            if moved:
                log.warning("moved damaged object %s to %s", digest, keys[2])
                done.append(f"moved damaged {keys[1]} to {keys[2]}")
        return done

    # -- maintenance (enact.gc) ------------------------------------------------

    def inventory(self, cutoff_s: float, *, dry_run: bool = False) -> RedisInventory:
        return RedisInventory(self, cutoff_s, dry_run)

    def delete_condemned(self, digests: Sequence[str], cutoff_s: float) -> tuple[int, int, int]:
        """Delete the objects among ``digests`` still last written before ``cutoff_s``.

        Returns (objects deleted, bytes reclaimed, objects kept because fresh).
        """
        with _errors(self._where, "deleting objects"):
            keys = [self.keys.object_times(), *(self.keys.object(d) for d in digests)]
            deleted, size, fresh = self._delete_script(keys=keys, args=[repr(cutoff_s), *digests])
        return int(deleted), int(size), int(fresh)

    def pins(self) -> dict[str, str]:
        with _errors(self._where, "reading pins"):
            raw = self._client.hgetall(self.keys.pins())
        return {_text(k): _text(v) for k, v in raw.items()}

    def set_pin(self, name: str, digest: str) -> None:
        with _errors(self._where, f"setting pin {name!r}"):
            self._client.hset(self.keys.pins(), name, digest)

    def remove_pin(self, name: str) -> bool:
        with _errors(self._where, f"removing pin {name!r}"):
            return bool(self._client.hdel(self.keys.pins(), name))

    def lock_maintenance(self, owner: str, ttl_s: float = LOCK_TTL_S) -> None:
        with _errors(self._where, "taking the gc lock"):
            holder = _text(
                self._lock_script(
                    keys=[self.keys.gc_lock()], args=[owner, max(1000, int(ttl_s * 1000))]
                )
            )
        if holder:
            raise ConflictError(
                f"another gc or fsck ({holder}) holds {self.keys.gc_lock()} on {self._where}; "
                "wait for it, or delete that key if it crashed"
            )

    def unlock_maintenance(self, owner: str) -> None:
        with _errors(self._where, "releasing the gc lock"):
            self._unlock_script(keys=[self.keys.gc_lock()], args=[owner])

    def server_time(self) -> float:
        """The Redis server's clock (unix seconds): the clock of every object time here."""
        with _errors(self._where, "reading the server time"):
            return _seconds(self._client.time())

    def __repr__(self) -> str:
        return f"RedisBackend({self.url!r}, prefix={self.keys.prefix!r})"


class RedisInventory(TimedObjects):
    """A snapshot of a Redis store's objects with their write times and sizes.

    Objects with no recorded time (written before times were kept) are given the
    current time, unless this is a dry run: they are young now and collectable
    one grace period later.
    """

    def __init__(self, backend: RedisBackend, cutoff_s: float, dry_run: bool) -> None:
        self.backend = backend
        self.cutoff_s = cutoff_s
        client, keys = backend.client, backend.keys
        prefix_len = len(keys.object(""))
        self.objects: dict[str, tuple[float, int]] = {}  # digest -> (time, size)
        self._problems: list[str] = []
        with _errors(backend._where, "listing objects"):
            names = []
            for key in client.scan_iter(match=keys.objects_pattern(), count=1000):
                name = _text(key)[prefix_len:]
                if is_digest(name):
                    names.append(name)
                else:
                    self._problems.append(f"stray key {_text(key)}")
            times = {
                _text(d): float(score)
                for d, score in client.zscan_iter(keys.object_times(), count=1000)
            }
            now = backend.server_time()
            untimed = [d for d in names if d not in times]
            if untimed and not dry_run:
                for start in range(0, len(untimed), BATCH):
                    pipe = client.pipeline(transaction=False)
                    pipe.zadd(
                        keys.object_times(),
                        {d: now for d in untimed[start : start + BATCH]},
                        nx=True,
                    )
                    pipe.execute()
            for start in range(0, len(names), BATCH):
                chunk = names[start : start + BATCH]
                pipe = client.pipeline(transaction=False)
                for digest in chunk:
                    pipe.strlen(keys.object(digest))
                for digest, size in zip(chunk, pipe.execute()):
                    self.objects[digest] = (times.get(digest, now), int(size))
        present = set(self.objects)
        self.stale_times = [d for d in times if d not in present]

    def read(self, digests: Sequence[str]) -> list[bytes | None]:
        return self.backend.get(digests)

    def copies(self) -> Iterator[Copy]:
        names = list(self.objects)
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            for digest, data in zip(chunk, self.backend.get(chunk)):
                yield Copy(digest, self.backend.keys.object(digest), data)

    def problems(self) -> list[str]:
        return list(self._problems)

    def sweep(self, plan: Plan, progress: Callable[[str, int], None] | None = None) -> SweepResult:
        result = SweepResult()
        condemned: list[str] = list(plan.detail) + self.stale_times
        for start in range(0, len(condemned), BATCH):
            deleted, size, fresh = self.backend.delete_condemned(
                condemned[start : start + BATCH], self.cutoff_s
            )
            result.deleted_objects += deleted
            result.reclaimed_bytes += size
            result.kept_fresh += fresh
            if progress is not None:
                progress("sweep", min(start + BATCH, len(condemned)))
        return result

    def repair(self, damaged: Collection[str]) -> list[str]:
        wanted = list(damaged)
        bad = {}
        for digest, data in zip(wanted, self.backend.get(wanted)):
            if data is not None and hashlib.sha256(data).hexdigest() != digest:
                bad[digest] = data
        return self.backend.quarantine(bad)


class RedisState:
    """Named refs in Redis, all under one key prefix."""

    def __init__(
        self, client: redis.Redis, prefix: str | None = None, *, history_limit: int = HISTORY_LIMIT
    ) -> None:
        self._client = client
        self.keys = RedisKeys(prefix or DEFAULT_PREFIX)
        self.history_limit = history_limit
        self._where = _client_where(client)
        self._ref_set = client.register_script(_load_script("redis_ref_set.lua"))

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str | None = None,
        settings: BackendSettings | None = None,
        **options: Any,
    ) -> RedisState:
        """Connect to ``url`` (``redis://[user:password@]host:port/db?prefix=...``).

        The prefix comes from ``prefix``, else the URL's ``?prefix=``, else
        ``settings.redis_prefix`` (``ENACT_REDIS_PREFIX``), else ``enact``.
        ``options`` go to ``make_client`` (``retries``, ``health_check_interval``,
        ``socket_timeout``, ...). Connecting is lazy: an unreachable server raises
        ``StoreUnavailable`` on the first operation.
        """
        client = make_client(url, decode_responses=True, **options)
        return cls(client, _prefix(url, prefix, settings))

    @property
    def client(self) -> redis.Redis:
        return self._client

    def ping(self) -> None:
        """Check the server answers; raise ``StoreUnavailable`` if it does not."""
        with _errors(self._where, "pinging"):
            self._client.ping()

    def close(self) -> None:
        """Close the connections (the object can still be used; it reconnects)."""
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisState({self._where!r}, prefix={self.keys.prefix!r})"

    # -- refs -------------------------------------------------------------------

    def get_ref(self, name: str) -> str | None:
        """The digest ``name`` points at, ``None`` if it is not set."""
        with _errors(self._where, f"reading ref {name!r}"):
            value = self._client.hget(self.keys.refs(), _check_name(name))
        return None if value is None else _text(value)

    def set_ref(self, name: str, digest: str) -> None:
        """Point ``name`` at ``digest`` unconditionally, recording the change in its history."""
        self._set(name, digest, "any", "")

    def compare_and_set_ref(self, name: str, expected: str | None, new: str) -> bool:
        """Point ``name`` at ``new`` only if it points at ``expected`` (``None``: unset).

        Atomic: of several clients racing from the same ``expected``, exactly one
        gets ``True``. Returns ``False``, changing nothing, if the ref moved.
        """
        return self._set(name, new, "absent" if expected is None else "equals", expected or "")

    def ref_history(self, name: str, limit: int = 100) -> list[tuple[str, float]]:
        """The digests ``name`` pointed at, with the server time of each change; newest first."""
        with _errors(self._where, f"reading the history of ref {name!r}"):
            rows = self._client.lrange(self.keys.ref_history(_check_name(name)), 0, limit - 1)
        out = []
        for row in rows:
            digest, _, stamp = _text(row).partition(" ")
            out.append((digest, float(stamp)))
        return out

    def delete_ref(self, name: str) -> bool:
        """Remove ``name`` and its history; ``False`` if it was not set."""
        with _errors(self._where, f"deleting ref {name!r}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hdel(self.keys.refs(), _check_name(name))
            pipe.delete(self.keys.ref_history(name))
            removed, _ = pipe.execute()
        return bool(removed)

    def list_refs(self) -> list[str]:
        """Every ref name, sorted."""
        with _errors(self._where, "listing refs"):
            return sorted(_text(n) for n in self._client.hkeys(self.keys.refs()))

    def refs(self) -> dict[str, str]:
        """Every ref: name -> the digest it points at (one round trip)."""
        with _errors(self._where, "listing refs"):
            raw = self._client.hgetall(self.keys.refs())
        return {_text(k): _text(v) for k, v in raw.items()}

    def gc_roots(self) -> Iterator[tuple[str, str]]:
        """What named refs keep alive, as ``(digest, why)``: every ref's target and
        every digest in its history (the way back to an earlier value)."""
        refs = self.refs()
        for name, digest in sorted(refs.items()):
            yield digest, f"ref {name}"
        names = sorted(refs)
        with _errors(self._where, "reading ref histories"):
            for start in range(0, len(names), BATCH):
                chunk = names[start : start + BATCH]
                pipe = self._client.pipeline(transaction=False)
                for name in chunk:
                    pipe.lrange(self.keys.ref_history(name), 0, -1)
                for name, rows in zip(chunk, pipe.execute()):
                    for row in rows:
                        yield _text(row).partition(" ")[0], f"ref {name} (history)"

    def _set(self, name: str, digest: str, mode: str, expected: str) -> bool:
        if not isinstance(digest, str) or not digest:
            raise ValueError(f"ref {name!r} must point at a digest, got {digest!r}")
        keys = [self.keys.refs(), self.keys.ref_history(_check_name(name))]
        args: list[Any] = [name, digest, mode, expected, self.history_limit]
        with _errors(self._where, f"setting ref {name!r}"):
            return bool(self._ref_set(keys=keys, args=args))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"ref name must be a non-empty string, got {name!r}")
    return name


def _seconds(server_time: Any) -> float:
    seconds, micros = server_time
    return int(seconds) + int(micros) / 1e6

"""Content-addressed objects on S3 or any S3-compatible server (MinIO, SeaweedFS, moto).

Invariants:

* Every write of data is create-only (``If-None-Match: *``) under a key that is
  never reused: packs and indexes have unique, time-ordered ids. A 412 means the
  key already holds the bytes we meant to write, so it counts as success. A
  server that rejects the header is written to without it.
* Objects are packed (see ``enact.stores._packs`` for the format): one ``put()``
  costs one PUT per pack (usually one), one PUT per large object (a pack of its
  own; the biggest go up in parallel multipart uploads) and one PUT for the
  index, never one request per small object.
* Every object the backend wrote is listed in an index, so ``has`` answers from
  the indexes held in memory, listing only indexes newer than the ones it holds
  when a digest is not found. ``get`` reads packed objects with whole-pack or
  range GETs, several objects per request, and falls back to the loose key
  ``PREFIX/v1/sha256/ab/cd/<digest>``, so objects put there by another tool (or
  by enact before 0.5) are still found.
* When several copies of an object are indexed, the newest wins. A ``put``
  trusts a copy only if it was written within ``REUSE_HORIZON_S``; an older one
  is written again. So a re-commit supersedes a damaged copy, and gc (which
  deletes only copies older than its grace, see ``enact.stores.s3_inventory``)
  never deletes a copy a writer relies on.
* Damage is contained. Bytes that do not hash to their digest raise
  ``ObjectCorrupt`` naming the bucket, key and byte range, and that copy is
  forgotten, so committing the value again writes a good one. An index that
  cannot be decoded is skipped with a warning (``corrupt_indexes``): it costs
  only the objects it lists. A pack that has gone is looked for again in newer
  indexes (gc moved its objects) before its objects read as missing.
* One boto3 client per process and settings, rebuilt after ``fork``; standard
  retry mode with a bounded number of attempts, so an unreachable endpoint
  raises ``StoreUnavailable`` naming it within seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from enact.backend import (
    LOCK_TTL_S,
    REUSE_HORIZON_S,
    BackendSettings,
    is_digest,
    redact,
    redact_url,
    safe_cause,
    verify,
)
from enact.errors import ConfigError, ConflictError, ObjectCorrupt, StoreError, StoreUnavailable
from enact.stores import _packs
from enact.stores.s3_inventory import S3Inventory

log = logging.getLogger(__name__)

POOL_CONNECTIONS = 16
WORKERS = 8
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 30.0
PACK_OBJECT_MAX_BYTES = 1 << 20  # smaller objects are packed
MULTIPART_THRESHOLD_BYTES = 8 << 20  # larger objects go up in parts
MULTIPART_CHUNK_BYTES = 8 << 20
PACK_MAX_BYTES = 32 << 20
WHOLE_PACK_READ_MAX_BYTES = 4 << 20  # smaller packs are read whole and cached
PACK_CACHE_BYTES = 64 << 20
RANGE_GAP_BYTES = 256 << 10  # wanted objects closer than this share one range GET
# An index written up to this long before the newest one a reader holds (clock
# skew between writers, a slow PUT) is still found: refreshes re-list that window.
INDEX_RELIST_WINDOW_S = 60.0

_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")
_URL_OPTIONS = {
    "endpoint_url": str,
    "region": str,
    "max_pool_connections": int,
    "max_attempts": int,
    "connect_timeout_s": float,
    "read_timeout_s": float,
    "workers": int,
}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "403"}
_T = TypeVar("_T")
_R = TypeVar("_R")

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _forget_clients_after_fork() -> None:
    # A client's connection pool (and a lock held by another thread at fork time)
    # must not cross into the child; it builds its own on first use.
    global _clients_lock
    _clients_lock = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_forget_clients_after_fork)


def shared_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    profile_name: str | None = None,
    max_pool_connections: int = POOL_CONNECTIONS,
    max_attempts: int = MAX_ATTEMPTS,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> Any:
    """The process's boto3 S3 client for these settings, created on first use.

    Clients are thread-safe and costly to build, so every backend with the same
    endpoint, credentials and settings in one process shares one.
    """
    secret = hashlib.sha256((aws_secret_access_key or "").encode()).hexdigest()
    token = hashlib.sha256((aws_session_token or "").encode()).hexdigest()
    key = (
        os.getpid(), endpoint_url, region_name, aws_access_key_id, secret, token, profile_name,
        max_pool_connections, max_attempts, connect_timeout_s, read_timeout_s,
    )  # fmt: skip
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            return client
        cfg = Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            max_pool_connections=max_pool_connections,
            tcp_keepalive=True,
            # S3-compatible servers (SeaweedFS, moto, older MinIO) reject or
            # mishandle the CRC trailers boto3 sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        try:
            session = boto3.session.Session(
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
                region_name=region_name,
                profile_name=profile_name,
            )
            region = region_name or session.region_name or "us-east-1"
            client = session.client("s3", endpoint_url=endpoint_url, region_name=region, config=cfg)
        except ProfileNotFound as exc:
            message = f"AWS profile {profile_name!r} not found: {redact(exc)}"
            raise ConfigError(message) from safe_cause(exc)
        except ValueError as exc:  # botocore rejects a malformed endpoint URL this way
            shown = redact_url(str(endpoint_url))
            raise ConfigError(f"invalid S3 endpoint URL {shown!r}: {redact(exc)}") from safe_cause(
                exc
            )
        _clients[key] = client
        return client


def _copy_time(pack_name: str, default_ns: int) -> int:
    """When the copies in a pack were written: the time in its name (ns)."""
    created = _packs.id_time_ns(pack_name)
    return default_ns if created is None else created


def _error_code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


class S3Backend:
    """Stores packed objects in an S3 bucket under ``prefix``; see the module docstring."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile_name: str | None = None,
        max_pool_connections: int = POOL_CONNECTIONS,
        max_attempts: int = MAX_ATTEMPTS,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        workers: int = WORKERS,
        verify_reads: bool = True,
        pack_object_max_bytes: int = PACK_OBJECT_MAX_BYTES,
        multipart_threshold_bytes: int = MULTIPART_THRESHOLD_BYTES,
        multipart_chunk_bytes: int = MULTIPART_CHUNK_BYTES,
        pack_max_bytes: int = PACK_MAX_BYTES,
        whole_pack_read_max_bytes: int = WHOLE_PACK_READ_MAX_BYTES,
        pack_cache_bytes: int = PACK_CACHE_BYTES,
        index_relist_window_s: float = INDEX_RELIST_WINDOW_S,
        reuse_horizon_s: float = REUSE_HORIZON_S,
    ) -> None:
        if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket):
            raise ConfigError(f"invalid S3 bucket name {bucket!r}")
        if endpoint_url is not None and not re.match(r"^https?://[^/\s]+", endpoint_url):
            raise ConfigError(
                f"invalid S3 endpoint URL {redact_url(endpoint_url)!r} (expected http://host:port)"
            )
        if max_attempts < 1 or workers < 1 or max_pool_connections < 1:
            raise ConfigError("max_attempts, workers and max_pool_connections must be >= 1")
        if multipart_chunk_bytes < 5 << 20:
            raise ConfigError("multipart_chunk_bytes must be at least 5 MiB (an S3 limit)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._root = f"{self.prefix}/v1/" if self.prefix else "v1/"
        self.max_attempts = max_attempts
        self.workers = workers
        self.verify_reads = verify_reads
        self.pack_object_max_bytes = pack_object_max_bytes
        self.multipart_threshold_bytes = max(multipart_threshold_bytes, pack_object_max_bytes)
        self.multipart_chunk_bytes = multipart_chunk_bytes
        self.pack_max_bytes = pack_max_bytes
        self.whole_pack_read_max_bytes = whole_pack_read_max_bytes
        self.pack_cache_bytes = pack_cache_bytes
        self.index_relist_window_s = index_relist_window_s
        self.reuse_horizon_s = reuse_horizon_s
        self._client = client or shared_client(
            endpoint_url=endpoint_url,
            region_name=region_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            profile_name=profile_name,
            max_pool_connections=max_pool_connections,
            max_attempts=max_attempts,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        # Shown in messages: never with the credentials an endpoint URL may carry.
        self.endpoint = redact_url(
            str(getattr(self._client.meta, "endpoint_url", endpoint_url or "S3"))
        )
        self._conditional_writes = True
        # The pack indexes held in memory: raw digest -> (pack number, offset,
        # length) of its newest copy; pack number -> (key, size, time the copies
        # in it were written, in ns). Key "" is a pseudo pack of legacy loose
        # objects, read at their loose key.
        self._index: dict[bytes, tuple[int, int, int]] = {}
        self._packs: list[tuple[str, int, int]] = []
        self._seen_indexes: set[str] = set()
        # Packs found missing when read, and indexes that could not be decoded.
        self._gone_packs: set[str] = set()
        self.corrupt_indexes: dict[str, str] = {}
        self._newest_index_ns = 0
        self._listed = False
        # How many refreshes have begun, and the number of the last that succeeded.
        self._refreshes_started = 0
        self._refresh_completed = 0
        self._index_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._pack_cache: OrderedDict[str, bytes] = OrderedDict()
        self._pack_cache_size = 0
        self._pack_cache_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        self._executor_lock = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, settings: BackendSettings | None = None, **options: Any
    ) -> S3Backend:
        """Open ``s3://bucket/prefix?endpoint_url=...&region=...``.

        The endpoint comes from the URL, else ``settings.s3_endpoint_url``
        (``ENACT_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``);
        credentials and region from ``settings`` (the ``AWS_*`` variables), else
        boto3's own chain. Other query parameters: ``max_pool_connections``,
        ``max_attempts``, ``connect_timeout_s``, ``read_timeout_s``, ``workers``.
        Raises ``ConfigError`` for a malformed URL.
        """
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        shown = redact_url(url) if isinstance(url, str) else repr(url)
        if parts is None or parts.scheme.lower() != "s3":
            raise ConfigError(f"not an S3 store URL: {shown!r}")
        if not parts.netloc:
            raise ConfigError(f"store URL {shown!r} names no bucket (expected s3://bucket/prefix)")
        if "@" in parts.netloc or ":" in parts.netloc:
            raise ConfigError(
                f"S3 store URL {shown!r} must be s3://bucket/prefix; pass credentials "
                "through AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the endpoint "
                "through ENACT_S3_ENDPOINT_URL or ?endpoint_url="
            )
        kwargs: dict[str, Any] = {}
        if settings is not None:
            kwargs.update(
                endpoint_url=settings.s3_endpoint_url,
                region_name=settings.aws_region,
                aws_access_key_id=settings.aws_access_key_id,
                aws_secret_access_key=settings.aws_secret_access_key,
                aws_session_token=settings.aws_session_token,
                profile_name=settings.aws_profile,
            )
        for name, raw in urllib.parse.parse_qsl(parts.query):
            kind = _URL_OPTIONS.get(name)
            if kind is None:
                raise ConfigError(
                    f"S3 store URL {shown!r} has unknown parameter {name!r}; "
                    f"known: {', '.join(sorted(_URL_OPTIONS))}"
                )
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(
                    f"S3 store URL {shown!r}: {name}={raw!r} is not a valid {kind.__name__}"
                ) from None
            kwargs["region_name" if name == "region" else name] = value
        kwargs.update(options)
        return cls(parts.netloc, parts.path, **kwargs)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Backend({self.url!r}, endpoint={self.endpoint!r})"

    # -- the Backend protocol -------------------------------------------------

    def has(self, digests: Sequence[str]) -> list[bool]:
        """Whether each digest is listed in an index; lists new indexes on a miss.

        Every object this backend writes is indexed, so no request is made per
        digest. An object copied into the bucket by another tool is found by
        ``get`` but not ``has`` (which only makes the next ``put`` write it again).
        """
        if not digests:
            return []
        raws = [self._raw(d) for d in digests]
        refreshed = self._ensure_listed()
        found = self._found(raws)
        if not all(found) and not refreshed:
            self.refresh()  # may return 0 when a concurrent refresh did the work
            found = self._found(raws)
        return found

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        """The verified bytes of each digest, ``None`` where missing.

        Packed objects are read with one whole-pack GET (cached) or a few range
        GETs per pack; unindexed objects with one GET of their loose key each, in
        parallel. Raises ``ObjectCorrupt`` naming bucket and key if stored bytes
        are damaged. A pack that has gone (gc moved its objects) makes the
        backend list new indexes once and read the objects where they are now.
        """
        if not digests:
            return []
        wanted = list(dict.fromkeys(digests))
        raws = {d: self._raw(d) for d in wanted}
        refreshed = self._ensure_listed()
        where = self._locations(raws)
        if not refreshed and len(where) < len(wanted):
            self.refresh()
            refreshed = True
            where = self._locations(raws)
        found = self._read_at(wanted, where)
        lost = [d for d in wanted if d in where and found.get(d) is None]
        if lost:
            # Packs listed in an index but gone: gc rewrote them (their objects
            # are in a newer index) or they were lost. Look again, once.
            self.refresh(force=True)
            retry = {d: loc for d, loc in self._locations({d: raws[d] for d in lost}).items()}
            if retry:
                found.update(self._read_at(list(retry), retry))
            for digest in lost:
                if found.get(digest) is None:
                    log.warning(
                        "object %s is listed in an index of %s but its pack is missing",
                        digest, self.url,
                    )  # fmt: skip
        return [found.get(d) for d in digests]

    def put(self, objects: Mapping[str, bytes]) -> None:
        """Store objects; a copy written within the reuse horizon is trusted, not rewritten.

        Small objects go into packs, each large one into a pack of its own
        (multipart above ``multipart_threshold_bytes``), then one index lists
        them all. The index is written last, so readers never see an object
        whose bytes are not there. An older copy is written again, so that gc
        (which deletes only copies older than its grace) never takes one a
        writer relies on.
        """
        if not objects:
            return
        self._ensure_listed()
        started = time.time()
        todo, trusted = self._untrusted(objects, started)
        if not todo:
            return
        infos, entries = self.write_packs(todo)
        if trusted and time.time() - started > self.reuse_horizon_s / 2:
            # A put this slow may no longer rely on the copies it trusted at its
            # start: they could be getting old enough for gc. Write those too.
            more, _ = self._untrusted({d: objects[d] for d in trusted}, time.time())
            more_infos, more_entries = self.write_packs(more, first=len(infos))
            infos += more_infos
            entries += more_entries
        self.write_index(infos, entries)

    def _untrusted(
        self, objects: Mapping[str, bytes], now_s: float
    ) -> tuple[list[tuple[str, bytes]], list[str]]:
        """Split objects into those to write and those with a trusted copy."""
        trusted_ns = int((now_s - self.reuse_horizon_s) * 1e9)
        todo: list[tuple[str, bytes]] = []
        trusted: list[str] = []
        with self._index_lock:
            for digest, data in objects.items():
                location = self._index.get(self._raw(digest))
                if location is not None and self._usable(location, trusted_ns):
                    trusted.append(digest)
                else:
                    todo.append((digest, bytes(data)))
        return todo, trusted

    def write_packs(
        self, todo: Sequence[tuple[str, bytes]], first: int = 0, created_ns: int | None = None
    ) -> tuple[list[_packs.PackInfo], list[tuple[str, int, int, int]]]:
        """Upload packs holding ``todo``; return their infos and index entries.

        Pack numbers in the entries start at ``first``. ``created_ns`` dates the
        copies (gc moving old copies keeps their age); it defaults to now.
        """
        small = [(d, b) for d, b in todo if len(b) < self.pack_object_max_bytes]
        large = [(d, b) for d, b in todo if len(b) >= self.pack_object_max_bytes]
        packs = _packs.build_packs(small, self.pack_max_bytes)
        pack_id = _packs.new_id() if created_ns is None else _packs.new_id(created_ns)
        infos: list[_packs.PackInfo] = []
        entries: list[tuple[str, int, int, int]] = []
        jobs: list[Callable[[], None]] = []
        big: list[tuple[str, bytes]] = []
        for body, members in packs:
            info = _packs.PackInfo(f"{pack_id}-{first + len(infos)}.pack", len(body))
            entries += [(d, first + len(infos), o, n) for d, o, n in members]
            infos.append(info)
            jobs.append(partial(self._put_object, self._pack_key(info.name), body))
        head = _packs.PACK_MAGIC
        for digest, data in large:
            info = _packs.PackInfo(f"{pack_id}-{first + len(infos)}.pack", len(head) + len(data))
            entries.append((digest, first + len(infos), len(head), len(data)))
            infos.append(info)
            if len(data) >= self.multipart_threshold_bytes:
                big.append((self._pack_key(info.name), data))
            else:
                jobs.append(partial(self._put_object, self._pack_key(info.name), head + data))
        futures = [self._pool().submit(job) for job in jobs[1:]]
        try:
            if jobs:
                jobs[0]()
            for key, data in big:
                self._put_multipart(key, data, head=head)
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()
        return infos, entries

    # -- indexes --------------------------------------------------------------

    def refresh(self, force: bool = False) -> int:
        """List and load the indexes written since the last refresh; return how many.

        Called on a miss. Concurrent callers share listings: a caller that waited
        while a refresh ran which *started after its call* (and so saw every index
        written before it) returns 0 without listing again, unless ``force``.

        An index that cannot be decoded is skipped with a warning (it costs only
        the objects it lists; ``corrupt_indexes`` names it). An index deleted
        between LIST and GET was merged into a newer one by gc: the listing is
        repeated to find it.
        """
        ticket = self._refreshes_started
        with self._refresh_lock:
            if self._refresh_completed > ticket and not force:
                return 0
            self._refreshes_started += 1
            sequence = self._refreshes_started
            prefix = f"{self._root}index/"
            loaded = 0
            for _ in range(5):
                kwargs = {"Bucket": self.bucket, "Prefix": prefix}
                if self._listed:
                    window_ns = int(self.index_relist_window_s * 1e9)
                    floor = _packs.time_floor(self._newest_index_ns - window_ns)
                    kwargs["StartAfter"] = prefix + floor
                keys: list[str] = []
                with self._boundary("list", prefix):
                    for page in self._client.get_paginator("list_objects_v2").paginate(**kwargs):
                        keys += [o["Key"] for o in page.get("Contents", ())]
                new = [key for key in keys if key not in self._seen_indexes]
                vanished = False
                for key, body in zip(new, self._map(self._get_bytes, new)):
                    if body is None:
                        vanished = True
                        continue
                    try:
                        index = _packs.decode_index(body, f"s3://{self.bucket}/{key}")
                    except ObjectCorrupt as exc:
                        self._skip_corrupt_index(key, exc)
                        continue
                    self._add_index(key, index)
                    loaded += 1
                if not vanished:
                    break
            self._listed = True
            self._refresh_completed = sequence
            self._forget_old_index_names()
            return loaded

    def _skip_corrupt_index(self, key: str, exc: ObjectCorrupt) -> None:
        with self._index_lock:
            self._seen_indexes.add(key)
            self.corrupt_indexes[key] = str(exc)
        log.warning(
            "%s; the objects it lists read as missing until it is repaired "
            "(run `enact fsck`); everything else reads on",
            exc,
        )

    def locate(self, digest: str) -> tuple[str, int | None, int | None] | None:
        """Where an object is: ``(key, offset, length)`` in a pack, ``(key, None, None)`` loose.

        A diagnostic (``None`` if the object is nowhere); ``get`` does not use it.
        """
        raw = self._raw(digest)
        self._ensure_listed()
        if raw not in self._index:
            self.refresh()
        with self._index_lock:
            location = self._index.get(raw)
            if location is not None:
                key = self._packs[location[0]][0]
                if key:
                    return key, location[1], location[2]
        key = self._loose_key(digest)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc)[0] in _NOT_FOUND:
                return None
            raise self._translate(exc, "head", key) from safe_cause(exc)
        except BotoCoreError as exc:
            raise self._translate(exc, "head", key) from safe_cause(exc)
        return key, None, None

    def close(self) -> None:
        """Stop the worker threads and drop cached packs; the client stays shared."""
        with self._executor_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
        with self._pack_cache_lock:
            self._pack_cache.clear()
            self._pack_cache_size = 0

    def __enter__(self) -> S3Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ensure_listed(self) -> bool:
        """Load the indexes once per instance; True if this call listed them."""
        if self._listed:
            return False
        self.refresh()
        return True

    def _add_index(self, key: str, index: _packs.Index) -> None:
        created = _packs.id_time_ns(key) or 0
        with self._index_lock:
            if key in self._seen_indexes:
                return
            packs = self._packs
            base = len(packs)
            for pack in index.packs:
                packs.append((self._pack_key(pack.name), pack.size, _copy_time(pack.name, created)))
            loose_no = -1
            table = self._index
            for raw, pack_no, offset, length in index.entries:
                if pack_no == _packs.LOOSE:
                    if loose_no < 0:  # legacy loose objects: a pseudo pack per index
                        loose_no = len(packs)
                        packs.append(("", 0, created))
                    number = loose_no
                else:
                    number = base + pack_no
                old = table.get(raw)
                # The newest copy wins: a repair or a gc rewrite supersedes older copies.
                if old is None or packs[old[0]][2] <= packs[number][2]:
                    table[raw] = (number, offset, length)
            self._seen_indexes.add(key)
            if created > self._newest_index_ns:
                self._newest_index_ns = created

    def _forget_old_index_names(self) -> None:
        # Names older than the relist window are never listed again, so the set
        # of names already loaded need not remember them.
        horizon = self._newest_index_ns - int(self.index_relist_window_s * 1e9)
        with self._index_lock:
            self._seen_indexes = {
                k for k in self._seen_indexes if (_packs.id_time_ns(k) or horizon) >= horizon
            }

    def _usable(self, location: tuple[int, int, int], trusted_ns: int = 0) -> bool:
        """Whether a location may be relied on (its pack not known gone, new enough)."""
        key, _, created = self._packs[location[0]]
        return created >= trusted_ns and not (self._gone_packs and key in self._gone_packs)

    def _found(self, raws: Sequence[bytes]) -> list[bool]:
        with self._index_lock:
            index = self._index
            return [raw in index and self._usable(index[raw]) for raw in raws]

    def _locations(self, raws: Mapping[str, bytes]) -> dict[str, tuple[int, int, int]]:
        with self._index_lock:
            index = self._index
            return {
                d: index[r] for d, r in raws.items() if r in index and self._usable(index[r])
            }

    def forget(self, digests: Sequence[str]) -> None:
        """Drop digests from the indexes held in memory: ``has`` says no, ``put`` writes them."""
        with self._index_lock:
            for digest in digests:
                self._index.pop(self._raw(digest), None)

    def _forget(self, digest: str, location: tuple[int, int, int]) -> None:
        """Drop a damaged copy from memory, so ``has`` says no and ``put`` writes it again."""
        raw = self._raw(digest)
        with self._index_lock:
            if self._index.get(raw) == location:
                del self._index[raw]

    # -- reads ----------------------------------------------------------------

    def _read_at(
        self, wanted: Sequence[str], where: Mapping[str, tuple[int, int, int]]
    ) -> dict[str, bytes | None]:
        by_pack: dict[int, list[tuple[str, int, int]]] = {}
        loose: list[str] = []
        with self._index_lock:
            packs = self._packs
            for digest in wanted:
                location = where.get(digest)
                if location is None or not packs[location[0]][0]:
                    loose.append(digest)
                else:
                    by_pack.setdefault(location[0], []).append(
                        (digest, location[1], location[2])
                    )
        jobs: list[Callable[[], dict[str, bytes | None]]] = [
            partial(self._read_packed, pack_no, members) for pack_no, members in by_pack.items()
        ]
        jobs += [partial(self._read_loose, digest) for digest in loose]
        found: dict[str, bytes | None] = {}
        for result in self._map(lambda job: job(), jobs):
            found.update(result)
        return found

    def _read_packed(
        self, pack_no: int, members: list[tuple[str, int, int]]
    ) -> dict[str, bytes | None]:
        """The members' bytes; ``None`` for each if the pack is gone."""
        with self._index_lock:
            key, size, _ = self._packs[pack_no]
        out: dict[str, bytes | None] = {}
        body = self._cached_pack(key)
        if body is None and size <= self.whole_pack_read_max_bytes:
            body = self._get_bytes(key)
            if body is None:
                return self._pack_gone(key, members)
            self._cache_pack(key, body)
        if body is not None:
            try:
                pieces = _packs.read_members(body, size, members, f"s3://{self.bucket}/{key}")
            except ObjectCorrupt:
                for digest, offset, length in members:  # so that committing again repairs
                    self._forget(digest, (pack_no, offset, length))
                raise
            for digest, offset, length in members:
                location = (pack_no, offset, length)
                out[digest] = self._checked(digest, pieces[digest], key, offset, location)
            return out
        spans = [(offset, length, i) for i, (_, offset, length) in enumerate(members)]
        for start, end, group in _packs.merge_ranges(spans, RANGE_GAP_BYTES, self.pack_max_bytes):
            chunk = self._get_bytes(key, byte_range=(start, end))
            if chunk is None:
                return self._pack_gone(key, members)
            for offset, length, i in group:
                piece = chunk[offset - start : offset - start + length]
                digest = members[i][0]
                out[digest] = self._checked(digest, piece, key, offset, (pack_no, offset, length))
        return out

    def _pack_gone(self, key: str, members: list[tuple[str, int, int]]) -> dict[str, bytes | None]:
        with self._index_lock:
            self._gone_packs.add(key)
        return {digest: None for digest, _, _ in members}

    def _read_loose(self, digest: str) -> dict[str, bytes | None]:
        key = self._loose_key(digest)
        body = self._get_bytes(key)
        return {digest: None if body is None else self._checked(digest, body, key, None)}

    def _checked(
        self,
        digest: str,
        data: bytes,
        key: str,
        offset: int | None,
        location: tuple[int, int, int] | None = None,
    ) -> bytes:
        if self.verify_reads:
            span = "" if offset is None else f" bytes {offset}-{offset + len(data) - 1}"
            try:
                verify(digest, data, where=f"s3://{self.bucket}/{key}{span}")
            except ObjectCorrupt as exc:
                if location is not None:
                    self._forget(digest, location)
                raise ObjectCorrupt(
                    f"{exc}; committing the value again writes a good copy"
                ) from None
        return data

    def _get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes | None:
        """The body of ``key`` (or of ``[start, end)`` in it); ``None`` if it does not exist."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range is not None:
            kwargs["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
        try:
            return bytes(self._client.get_object(**kwargs)["Body"].read())
        except ClientError as exc:
            if _error_code(exc)[0] in _NOT_FOUND:
                return None
            raise self._translate(exc, "get", key) from safe_cause(exc)
        except BotoCoreError as exc:
            raise self._translate(exc, "get", key) from safe_cause(exc)

    def _cached_pack(self, key: str) -> bytes | None:
        with self._pack_cache_lock:
            body = self._pack_cache.get(key)
            if body is not None:
                self._pack_cache.move_to_end(key)
            return body

    def _cache_pack(self, key: str, body: bytes) -> None:
        with self._pack_cache_lock:
            if key in self._pack_cache or len(body) > self.pack_cache_bytes:
                return
            self._pack_cache[key] = body
            self._pack_cache_size += len(body)
            while self._pack_cache_size > self.pack_cache_bytes:
                _, dropped = self._pack_cache.popitem(last=False)
                self._pack_cache_size -= len(dropped)

    # -- writes ---------------------------------------------------------------

    def _put_object(self, key: str, body: bytes, create_only: bool = True) -> None:
        """Create ``key`` unless it exists; an existing key holds the same bytes.

        With ``create_only=False`` (pins, the gc lock), overwrite it.
        """
        for _ in range(self.max_attempts):
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
            if self._conditional_writes and create_only:
                kwargs["IfNoneMatch"] = "*"
            try:
                self._client.put_object(**kwargs)
                return
            except ClientError as exc:
                if create_only and self._written_anyway(exc):
                    return
                if self._conditional_retry(exc):
                    continue
                raise self._translate(exc, "put", key) from safe_cause(exc)
            except BotoCoreError as exc:
                raise self._translate(exc, "put", key) from safe_cause(exc)
        # Several ConditionalRequestConflicts in a row: another writer keeps
        # racing us on this key, and it writes the same bytes.

    def _put_multipart(self, key: str, data: bytes, head: bytes = b"") -> None:
        """Upload ``head + data`` in parallel parts; create-only like ``_put_object``.

        ``head`` is prepended without copying ``data`` as a whole.
        """
        client, chunk = self._client, self.multipart_chunk_bytes
        total = len(head) + len(data)
        view = memoryview(data)

        def part(start: int) -> bytes:
            end = min(start + chunk, total)
            if start >= len(head):
                return bytes(view[start - len(head) : end - len(head)])
            return head[start:end] + bytes(view[0 : max(0, end - len(head))])

        with self._boundary("start multipart upload of", key):
            upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        completed = False
        try:
            starts = range(0, total, chunk)

            def upload(number_start: tuple[int, int]) -> dict[str, Any]:
                number, start = number_start
                with self._boundary(f"upload part {number} of", key):
                    response = client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        Body=part(start),
                    )  # fmt: skip
                return {"ETag": response["ETag"], "PartNumber": number}

            parts = self._map(upload, list(enumerate(starts, start=1)))
            for _ in range(self.max_attempts):
                kwargs: dict[str, Any] = {
                    "Bucket": self.bucket, "Key": key, "UploadId": upload_id,
                    "MultipartUpload": {"Parts": parts},
                }  # fmt: skip
                if self._conditional_writes:
                    kwargs["IfNoneMatch"] = "*"
                try:
                    client.complete_multipart_upload(**kwargs)
                    completed = True
                    return
                except ClientError as exc:
                    if self._written_anyway(exc):
                        return
                    if self._conditional_retry(exc):
                        continue
                    error = self._translate(exc, "complete multipart upload of", key)
                    raise error from safe_cause(exc)
                except BotoCoreError as exc:
                    error = self._translate(exc, "complete multipart upload of", key)
                    raise error from safe_cause(exc)
        finally:
            if not completed:
                try:
                    client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except (ClientError, BotoCoreError):
                    pass  # the bucket's lifecycle rules clean up what we could not

    def _written_anyway(self, exc: ClientError) -> bool:
        code, status = _error_code(exc)
        return status == 412 or code == "PreconditionFailed"

    def _conditional_retry(self, exc: ClientError) -> bool:
        """Whether to write again: a conflicting conditional write, or no support for one."""
        code, status = _error_code(exc)
        if status == 409 and code in ("ConditionalRequestConflict", "OperationAborted"):
            return True
        message = str(exc.response.get("Error", {}).get("Message", "")).lower()
        unsupported = (
            status == 501
            or code == "NotImplemented"
            or (
                code in ("InvalidArgument", "InvalidRequest", "BadRequest")
                and ("match" in message or "condition" in message)
            )
        )
        if self._conditional_writes and unsupported:
            self._conditional_writes = False  # this server cannot; write unconditionally
            return True
        return False

    # -- raw keys and maintenance (enact.gc, enact.stores.s3_inventory) --------

    @property
    def root(self) -> str:
        """The key prefix of everything this backend writes: ``PREFIX/v1/``."""
        return self._root

    def pack_key(self, name: str) -> str:
        return self._pack_key(name)

    def loose_key(self, digest: str) -> str:
        return self._loose_key(digest)

    def read_key(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes | None:
        """The body of ``key`` (or ``[start, end)`` of it), ``None`` if there is none."""
        return self._get_bytes(key, byte_range)

    def write_key(self, key: str, body: bytes, *, create_only: bool = True) -> None:
        self._put_object(key, body, create_only=create_only)

    def write_index(
        self, infos: Sequence[_packs.PackInfo], entries: Sequence[tuple[str, int, int, int]]
    ) -> str:
        """Write an index over packs already uploaded; return its key.

        Its id is taken now, after the packs are up, so that its time is as
        close as possible to the moment readers can list it.
        """
        body = _packs.encode_index(infos, entries)
        key = f"{self._root}index/{_packs.new_id()}.idx"
        self._put_object(key, body)
        self._add_index(key, _packs.decode_index(body, key))
        return key

    def list_keys(self, prefix: str) -> list[tuple[str, int, float]]:
        """``(key, size, last modified as unix time)`` of every key under ``prefix``."""
        out = []
        with self._boundary("list", prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    out.append((item["Key"], int(item["Size"]), item["LastModified"].timestamp()))
        return out

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete keys, up to 1,000 per request; a key already gone is no error."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            with self._boundary("delete keys under", self._root):
                reply = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
            errors = [e for e in reply.get("Errors", ()) if e.get("Code") not in _NOT_FOUND]
            if errors:
                first = errors[0]
                raise StoreError(
                    f"cannot delete {len(errors)} keys in s3://{self.bucket} at {self.endpoint}, "
                    f"first {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
        with self._pack_cache_lock:
            for key in keys:
                body = self._pack_cache.pop(key, None)
                if body is not None:
                    self._pack_cache_size -= len(body)

    def parallel(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[fn(x) for x in items]`` on the backend's worker threads."""
        return self._map(fn, items)

    def inventory(self, cutoff_s: float, *, dry_run: bool = False) -> S3Inventory:
        return S3Inventory(self, cutoff_s)

    def pins(self) -> dict[str, str]:
        keys = [k for k, _, _ in self.list_keys(f"{self._root}pins/")]
        bodies = self._map(self._get_bytes, keys)
        prefix_len = len(f"{self._root}pins/")
        return {
            k[prefix_len:]: body.decode().strip() for k, body in zip(keys, bodies) if body
        }

    def set_pin(self, name: str, digest: str) -> None:
        self._put_object(f"{self._root}pins/{name}", digest.encode(), create_only=False)

    def remove_pin(self, name: str) -> bool:
        key = f"{self._root}pins/{name}"
        if self._get_bytes(key) is None:
            return False
        self.delete_keys([key])
        return True

    def lock_maintenance(self, owner: str, ttl_s: float = LOCK_TTL_S) -> None:
        key = f"{self._root}gc.lock"
        body = json.dumps({"owner": owner, "expires": time.time() + ttl_s}).encode()
        for _ in range(3):
            if self._create(key, body):
                return
            raw = self._get_bytes(key)
            if raw is None:
                continue  # released meanwhile
            try:
                holder = json.loads(raw)
                holder_owner, expires = str(holder["owner"]), float(holder["expires"])
            except (ValueError, KeyError, TypeError):
                holder_owner, expires = "?", 0.0
            if holder_owner == owner:
                self._put_object(key, body, create_only=False)  # renew
                return
            if expires < time.time():
                log.warning("breaking the expired gc lock s3://%s/%s of %s", self.bucket, key,
                            holder_owner)  # fmt: skip
                self.delete_keys([key])
                continue
            raise ConflictError(
                f"another gc or fsck ({holder_owner}) holds s3://{self.bucket}/{key} until "
                f"{time.ctime(expires)}; wait for it, or delete that key if it crashed"
            )
        raise ConflictError(f"could not take the gc lock s3://{self.bucket}/{key}")

    def unlock_maintenance(self, owner: str) -> None:
        key = f"{self._root}gc.lock"
        raw = self._get_bytes(key)
        try:
            mine = raw is not None and json.loads(raw).get("owner") == owner
        except ValueError:
            mine = False
        if mine:
            self.delete_keys([key])

    def _create(self, key: str, body: bytes) -> bool:
        """Create ``key``; False if it exists (without conditional writes: GET, then PUT)."""
        if not self._conditional_writes:
            if self._get_bytes(key) is not None:
                return False
            self._put_object(key, body, create_only=False)
            return True
        for _ in range(self.max_attempts):
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
                return True
            except ClientError as exc:
                if self._written_anyway(exc):
                    return False
                if self._conditional_retry(exc):
                    if not self._conditional_writes:
                        return self._create(key, body)
                    continue
                raise self._translate(exc, "put", key) from exc
            except BotoCoreError as exc:
                raise self._translate(exc, "put", key) from exc
        return False

    # -- plumbing -------------------------------------------------------------

    def _raw(self, digest: str) -> bytes:
        if not is_digest(digest):
            raise StoreError(f"invalid digest {digest!r} for S3 store {self.url}")
        return bytes.fromhex(digest)

    def _loose_key(self, digest: str) -> str:
        return f"{self._root}sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def _pack_key(self, name: str) -> str:
        return f"{self._root}packs/{name}"

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None or self._executor_pid != os.getpid():
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="enact-s3")
                self._executor_pid = os.getpid()
            return self._executor

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[fn(x) for x in items]`` on the worker threads; the first error cancels the rest."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        futures: list[Future[_R]] = [self._pool().submit(fn, item) for item in items]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()

    @contextmanager
    def _boundary(self, action: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, action, key) from safe_cause(exc)

    def _translate(self, exc: Exception, action: str, key: str | None) -> StoreError:
        """Our error for a boto3 one, naming the bucket, key and endpoint."""
        where = f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"
        if isinstance(exc, ClientError):
            code, status = _error_code(exc)
            message = exc.response.get("Error", {}).get("Message", "") or str(exc)
            if code == "NoSuchBucket":
                return StoreError(f"S3 bucket {self.bucket!r} does not exist at {self.endpoint}")
            if code in _DENIED or status == 403:
                return StoreError(
                    f"access to {where} at {self.endpoint} denied ({code}): "
                    "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                )
            if status >= 500 or code in _UNAVAILABLE:
                return StoreUnavailable(
                    f"S3 endpoint {self.endpoint} failed to {action} {where} "
                    f"after {self.max_attempts} attempts: {code} {redact(message)}"
                )
            return StoreError(
                f"cannot {action} {where} at {self.endpoint}: {code} {redact(message)}"
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return StoreError(
                f"no usable AWS credentials to {action} {where}: set AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            )
        if isinstance(exc, (BotoConnectionError, HTTPClientError)):
            return StoreUnavailable(
                f"S3 endpoint {self.endpoint} unreachable after {self.max_attempts} attempts "
                f"to {action} {where}: {redact(exc)}"
            )
        return StoreError(f"cannot {action} {where} at {self.endpoint}: {redact(exc)}")

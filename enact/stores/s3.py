"""Content-addressed objects on S3 or any S3-compatible server (MinIO, SeaweedFS, moto).

Invariants:

* Every write is create-only (``If-None-Match: *``). A 412 means the key already
  holds the bytes we meant to write, because keys are digests or unique ids, so
  it counts as success. A server that rejects the header is written to without it.
* Small objects are packed (see ``enact.stores._packs`` for the format): one
  ``put()`` costs one PUT per pack (usually one), one PUT per large object and
  one PUT for the index, never one request per small object. Large objects stay
  loose under ``PREFIX/v1/sha256/ab/cd/<digest>``; the biggest go up in parallel
  multipart uploads.
* Every object the backend wrote is listed in an index, so ``has`` answers from
  the indexes held in memory, listing only indexes newer than the ones it holds
  when a digest is not found. ``get`` reads packed objects with whole-pack or
  range GETs, several objects per request, and falls back to the loose key, so
  objects put into the bucket by another tool are still found.
* Every read is verified: bytes that do not hash to their digest raise
  ``ObjectCorrupt`` naming the bucket, key and byte range.
* One boto3 client per process and settings, rebuilt after ``fork``; standard
  retry mode with a bounded number of attempts, so an unreachable endpoint
  raises ``StoreUnavailable`` naming it within seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
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

from enact import config
from enact.digests import is_digest, verify
from enact.errors import ConfigError, StoreError, StoreUnavailable
from enact.redaction import redact, redact_url, safe_cause
from enact.stores import _packs

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
        # length), pack number -1 for a loose object; pack number -> (key, size).
        self._index: dict[bytes, tuple[int, int, int]] = {}
        self._packs: list[tuple[str, int]] = []
        self._seen_indexes: set[str] = set()
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
    def from_url(cls, url: str, env: Mapping[str, str] | None = None, **options: Any) -> S3Backend:
        """Open ``s3://bucket/prefix?endpoint_url=...&region=...``.

        The endpoint comes from the URL, else ``ENACT_S3_ENDPOINT_URL``, else
        ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``; credentials and region from
        the ``AWS_*`` variables of ``env``, else boto3's own chain. Other query
        parameters: ``max_pool_connections``, ``max_attempts``,
        ``connect_timeout_s``, ``read_timeout_s``, ``workers``. Raises
        ``ConfigError`` for a malformed URL.
        """
        parsed = config.parse_store_url(url)
        shown = redact_url(url)
        if parsed.scheme != "s3":
            raise ConfigError(f"not an S3 store URL: {shown!r}")
        if "@" in parsed.netloc or ":" in parsed.netloc:
            raise ConfigError(
                f"S3 store URL {shown!r} must be s3://bucket/prefix; pass credentials "
                "through AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the endpoint "
                "through ENACT_S3_ENDPOINT_URL or ?endpoint_url="
            )
        settings: dict[str, Any] = dict(config.s3_settings(env))
        for name, raw in parsed.query.items():
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
            settings["region_name" if name == "region" else name] = value
        settings.update(options)
        return cls(parsed.netloc, parsed.path, **settings)

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
        with self._index_lock:
            found = [raw in self._index for raw in raws]
        if not all(found) and not refreshed:
            self.refresh()  # may return 0 when a concurrent refresh did the work
            with self._index_lock:
                found = [raw in self._index for raw in raws]
        return found

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        """The verified bytes of each digest, ``None`` where missing.

        Packed objects are read with one whole-pack GET (cached) or a few range
        GETs per pack; loose and unindexed objects with one GET each, in parallel.
        Raises ``ObjectCorrupt`` naming bucket and key if stored bytes are damaged.
        """
        if not digests:
            return []
        wanted = list(dict.fromkeys(digests))
        raws = {d: self._raw(d) for d in wanted}
        refreshed = self._ensure_listed()
        where = self._locations(raws)
        if not refreshed and len(where) < len(wanted):
            self.refresh()
            where = self._locations(raws)

        by_pack: dict[int, list[tuple[str, int, int]]] = {}
        loose: list[str] = []
        for digest in wanted:
            location = where.get(digest)
            if location is None or location[0] < 0:
                loose.append(digest)
            else:
                by_pack.setdefault(location[0], []).append((digest, location[1], location[2]))
        jobs: list[Callable[[], dict[str, bytes | None]]] = [
            partial(self._read_packed, pack_no, members) for pack_no, members in by_pack.items()
        ]
        jobs += [partial(self._read_loose, digest) for digest in loose]
        found: dict[str, bytes | None] = {}
        for result in self._map(lambda job: job(), jobs):
            found.update(result)
        return [found.get(d) for d in digests]

    def put(self, objects: Mapping[str, bytes]) -> None:
        """Store objects, skipping those already indexed; idempotent.

        Small objects go into packs, larger ones loose (multipart above
        ``multipart_threshold_bytes``), then one index lists them all. The index
        is written last, so readers never see an object whose bytes are not there.
        """
        if not objects:
            return
        with self._index_lock:
            todo = [(d, bytes(b)) for d, b in objects.items() if self._raw(d) not in self._index]
        if not todo:
            return
        small = [(d, b) for d, b in todo if len(b) < self.pack_object_max_bytes]
        large = [(d, b) for d, b in todo if len(b) >= self.pack_object_max_bytes]
        packs = _packs.build_packs(small, self.pack_max_bytes)
        pack_id = _packs.new_id()
        infos = [
            _packs.PackInfo(f"{pack_id}-{n}.pack", len(body)) for n, (body, _) in enumerate(packs)
        ]
        jobs = [
            partial(self._put_object, self._pack_key(info.name), body)
            for info, (body, _) in zip(infos, packs)
        ]
        jobs += [
            partial(self._put_object, self._loose_key(d), b)
            for d, b in large
            if len(b) < self.multipart_threshold_bytes
        ]
        futures = [self._pool().submit(job) for job in jobs[1:]]
        try:
            if jobs:
                jobs[0]()
            for digest, data in large:
                if len(data) >= self.multipart_threshold_bytes:
                    self._put_multipart(self._loose_key(digest), data)
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()
        entries = [
            (d, n, offset, length)
            for n, (_, members) in enumerate(packs)
            for d, offset, length in members
        ]
        entries += [(d, _packs.LOOSE, 0, len(b)) for d, b in large]
        index_body = _packs.encode_index(infos, entries)
        # The index id is taken only now, after the packs are up, so that its
        # time is as close as possible to the moment readers can list it.
        index_key = f"{self._root}index/{_packs.new_id()}.idx"
        self._put_object(index_key, index_body)
        self._add_index(index_key, _packs.decode_index(index_body, index_key))

    # -- indexes --------------------------------------------------------------

    def refresh(self) -> int:
        """List and load the indexes written since the last refresh; return how many.

        Called on a miss. Concurrent callers share listings: a caller that waited
        while a refresh ran which *started after its call* (and so saw every index
        written before it) returns 0 without listing again.
        """
        ticket = self._refreshes_started
        with self._refresh_lock:
            if self._refresh_completed > ticket:
                return 0
            self._refreshes_started += 1
            sequence = self._refreshes_started
            prefix = f"{self._root}index/"
            kwargs = {"Bucket": self.bucket, "Prefix": prefix}
            if self._listed:
                window_ns = int(self.index_relist_window_s * 1e9)
                kwargs["StartAfter"] = prefix + _packs.time_floor(self._newest_index_ns - window_ns)
            keys: list[str] = []
            with self._boundary("list", prefix):
                for page in self._client.get_paginator("list_objects_v2").paginate(**kwargs):
                    keys += [o["Key"] for o in page.get("Contents", ())]
            new = [key for key in keys if key not in self._seen_indexes]
            for key, body in zip(new, self._map(self._get_bytes, new)):
                if body is not None:  # removed between LIST and GET
                    self._add_index(key, _packs.decode_index(body, f"s3://{self.bucket}/{key}"))
            self._listed = True
            self._refresh_completed = sequence
            self._forget_old_index_names()
            return len(new)

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
            if location is not None and location[0] >= 0:
                return self._packs[location[0]][0], location[1], location[2]
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
        with self._index_lock:
            if key in self._seen_indexes:
                return
            base = len(self._packs)
            self._packs.extend((self._pack_key(p.name), p.size) for p in index.packs)
            for raw, pack_no, offset, length in index.entries:
                pack = -1 if pack_no == _packs.LOOSE else base + pack_no
                self._index.setdefault(raw, (pack, offset, length))
            self._seen_indexes.add(key)
            created = _packs.id_time_ns(key)
            if created is not None and created > self._newest_index_ns:
                self._newest_index_ns = created

    def _forget_old_index_names(self) -> None:
        # Names older than the relist window are never listed again, so the set
        # of names already loaded need not remember them.
        horizon = self._newest_index_ns - int(self.index_relist_window_s * 1e9)
        with self._index_lock:
            self._seen_indexes = {
                k for k in self._seen_indexes if (_packs.id_time_ns(k) or horizon) >= horizon
            }

    def _locations(self, raws: Mapping[str, bytes]) -> dict[str, tuple[int, int, int]]:
        with self._index_lock:
            index = self._index
            return {d: index[r] for d, r in raws.items() if r in index}

    # -- reads ----------------------------------------------------------------

    def _read_packed(
        self, pack_no: int, members: list[tuple[str, int, int]]
    ) -> dict[str, bytes | None]:
        with self._index_lock:
            key, size = self._packs[pack_no]
        out: dict[str, bytes | None] = {}
        body = self._cached_pack(key)
        if body is None and size <= self.whole_pack_read_max_bytes:
            body = self._get_bytes(key)
            if body is None:
                raise StoreError(
                    f"pack s3://{self.bucket}/{key} is listed in an index but missing "
                    f"(it holds {members[0][0]} and {len(members) - 1} other wanted objects)"
                )
            self._cache_pack(key, body)
        if body is not None:
            pieces = _packs.read_members(body, size, members, f"s3://{self.bucket}/{key}")
            for digest, offset, _ in members:
                out[digest] = self._checked(digest, pieces[digest], key, offset)
            return out
        spans = [(offset, length, i) for i, (_, offset, length) in enumerate(members)]
        for start, end, group in _packs.merge_ranges(spans, RANGE_GAP_BYTES, self.pack_max_bytes):
            chunk = self._get_bytes(key, byte_range=(start, end))
            if chunk is None:
                raise StoreError(f"pack s3://{self.bucket}/{key} is listed in an index but missing")
            for offset, length, i in group:
                piece = chunk[offset - start : offset - start + length]
                out[members[i][0]] = self._checked(members[i][0], piece, key, offset)
        return out

    def _read_loose(self, digest: str) -> dict[str, bytes | None]:
        key = self._loose_key(digest)
        body = self._get_bytes(key)
        return {digest: None if body is None else self._checked(digest, body, key, None)}

    def _checked(self, digest: str, data: bytes, key: str, offset: int | None) -> bytes:
        if self.verify_reads:
            span = "" if offset is None else f" bytes {offset}-{offset + len(data) - 1}"
            verify(digest, data, where=f"s3://{self.bucket}/{key}{span}")
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

    def _put_object(self, key: str, body: bytes) -> None:
        """Create ``key`` unless it exists; an existing key holds the same bytes."""
        for _ in range(self.max_attempts):
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
            if self._conditional_writes:
                kwargs["IfNoneMatch"] = "*"
            try:
                self._client.put_object(**kwargs)
                return
            except ClientError as exc:
                if self._written_anyway(exc):
                    return
                if self._conditional_retry(exc):
                    continue
                raise self._translate(exc, "put", key) from safe_cause(exc)
            except BotoCoreError as exc:
                raise self._translate(exc, "put", key) from safe_cause(exc)
        # Several ConditionalRequestConflicts in a row: another writer keeps
        # racing us on this key, and it writes the same bytes.

    def _put_multipart(self, key: str, data: bytes) -> None:
        """Upload a large object in parallel parts; create-only like ``_put_object``."""
        client, chunk = self._client, self.multipart_chunk_bytes
        with self._boundary("start multipart upload of", key):
            upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        completed = False
        try:
            starts = range(0, len(data), chunk)

            def upload(number_start: tuple[int, int]) -> dict[str, Any]:
                number, start = number_start
                with self._boundary(f"upload part {number} of", key):
                    response = client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        Body=data[start : start + chunk],
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

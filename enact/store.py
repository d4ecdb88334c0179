"""``Store``: commit values, check them out, and be the current store.

A store wraps a ``Backend`` (opaque bytes by digest) and does everything that
must be done exactly once: canonical encoding, hashing, verifying every object
it reads against its digest, caching verified bytes, and batching writes. Use it
as a context manager to make it the current store for the code inside; the
current store lives in a context variable, so it follows ``asyncio`` tasks
(threads you start yourself need it passed along, e.g. with
``contextvars.copy_context().run``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from enact import context
from enact.backend import KNOWN_DIGESTS_TTL_S, Backend, backend_class, describe
from enact.config import Settings, open_backend
from enact.context import active_store, current_store
from enact.digests import digest_bytes, is_digest, verify
from enact.errors import ObjectCorrupt, ObjectMissing, StoreError
from enact.inspection import dependency_graph, distribution_keys, transitive_type_keys
from enact.redaction import redact, safe_cause
from enact.refs import PackedResource, Ref
from enact.registry import Registry, shown
from enact.resources import ResourceBase
from enact.serialization import (
    Encoder,
    pack_value,
    packed_links,
    remembering_ext_hook,
    unpack_value,
)

if TYPE_CHECKING:
    import os

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "FileStore",
    "InMemoryStore",
    "Store",
    "active_store",
    "checkout",
    "checkout_async",
    "commit",
    "commit_async",
    "current_store",
    "iter_links",
    "resource_digest",
]

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
VALUES_LIMIT = 100_000
# How many digests a store remembers having written (see ``recently_written``).
KNOWN_DIGESTS_LIMIT = 100_000
# Memory a byte-cache entry costs beyond its data: the digest string (113 bytes),
# the bytes object's header (33) and the dict's slot and hash table (about 50).
_CACHE_ENTRY_OVERHEAD = 200
_MISSING = object()
_SHAREABLE = frozenset({int, float, str, bytes, bool, type(None)})


class Store:
    """Commits and checks out values through a backend.

    ``Store()`` with no backend opens the one named by ``settings.store_url``
    (``$ENACT_STORE_URL``, read once here when no ``settings`` are given), or the
    default file store in ``.enact``; a URL string is accepted too.
    """

    def __init__(
        self,
        backend: Backend | str | None = None,
        registry: Registry | None = None,
        ref_type: type[Ref[Any]] = Ref,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        settings: Settings | None = None,
    ) -> None:
        self.backend: Backend = open_backend(backend, settings)
        if not (isinstance(ref_type, type) and issubclass(ref_type, Ref)):
            raise TypeError(f"ref_type must be Ref or a subclass of it, got {ref_type!r}")
        # ``registry`` is accepted for enact 0.4; types always resolve through the
        # process-wide registry.
        self.ref_type = ref_type
        self._packs = _packs(ref_type)
        # Refs this store decodes remember it (see enact.refs).
        self._ext_hook = remembering_ext_hook(self)
        # Backends that keep type metadata learn each type once per store.
        self._typed_backend = callable(getattr(self.backend, "register_type", None))
        self._registered_types: set[type] = set()
        self._cache: dict[str, bytes] = {}
        self._cache_size = 0
        self._cache_limit = cache_bytes
        # Write-behind buffer (see ``stage``): readable at once, written with the
        # next ``put_objects``.
        self._staged: dict[str, bytes] = {}
        self._values: dict[str, Any] = {}
        # Digests known to be in the backend, so they are not written twice. They
        # are forgotten every KNOWN_DIGESTS_TTL_S: a record may link an object
        # without writing it only if this store wrote it lately, which is what keeps
        # a concurrent gc from deleting it (enact.backend); and past KNOWN_DIGESTS_LIMIT,
        # so a long-lived process's memory stays bounded.
        self.known_digests: set[str] = set()
        self._known_since = time.monotonic()
        self._lock = threading.Lock()
        #: The backend keeps the very bytes it is given in this process (no I/O).
        self.in_process: bool = bool(getattr(self.backend, "in_process", False))
        # Caching what an in-process backend holds would only double the memory.
        self._use_cache = cache_bytes > 0 and not self.in_process

    @property
    def _backend(self) -> Backend:  # enact 0.4's attribute name
        return self.backend

    @classmethod
    def get_current(cls) -> Store | None:
        """The innermost active store, or ``None`` (0.4's context API)."""
        return active_store()

    @classmethod
    def current(cls) -> Store:
        """The innermost active store; ``NoActiveStore`` if none is active."""
        return current_store()

    # Context -----------------------------------------------------------------

    def __enter__(self) -> Store:
        context.push(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        context.pop(self)

    # Values ------------------------------------------------------------------

    def commit(self, value: Any) -> Ref[Any]:
        """Store ``value``; return its ref (remembering this store). Equal values give
        equal refs."""
        if self._packs:
            return self._commit_packed(value)
        encoder = Encoder(collect_classes=self._typed_backend)
        data, _ = pack_value(value, encoder)
        digest = digest_bytes(data)
        self.put_objects({digest: data})
        if encoder.classes is not None:
            self._register_types(value, encoder.classes)
        ref = self.ref_type(digest)
        ref._store = self
        return ref

    def checkout(self, ref: Ref[Any] | str) -> Any:
        """Decode the value behind ``ref`` afresh, verifying its digest."""
        if isinstance(ref, str):
            return unpack_value(self.get_object(ref), self._ext_hook)
        if _packs(type(ref)):
            return self._checkout_packed(ref)
        return unpack_value(self.get_object(ref.digest), self._ext_hook)

    def has(self, ref: Ref[Any] | str) -> bool:
        digest = ref if isinstance(ref, str) else ref.digest
        return self.has_objects([digest])[0]

    async def has_async(self, ref: Ref[Any] | str) -> bool:
        if self.in_process:
            return self.has(ref)
        return await asyncio.to_thread(self.has, ref)

    # Ref types with their own packing (0.4's custom refs) ----------------------

    def _commit_packed(self, value: Any) -> Ref[Any]:
        """Store what ``ref_type.pack`` makes of ``value``, under the digest of those bytes.

        The packed form is what is stored and verified, so a ref type that, say,
        encrypts keeps its plaintext out of the store.
        """
        _, packed = self.ref_type.pack(Registry.get().wrap(value))
        data, _ = pack_value(packed.data)
        digest = digest_bytes(data)
        self.put_objects({digest: data})
        ref = self.ref_type(digest)
        ref._store = self
        return ref

    def _checkout_packed(self, ref: Ref[Any]) -> Any:
        stored = unpack_value(self.get_object(ref.digest), self._ext_hook)
        packed = PackedResource(
            stored.to_resource_dict(), ref.to_resource_dict(), set(), {type(stored).type_key()}
        )
        return ref.unpack(packed)

    # Type metadata -------------------------------------------------------------

    def _register_types(self, value: Any, classes: set[type[ResourceBase]]) -> None:
        """Tell the backend the field types of each resource type ``value`` uses."""
        if not isinstance(value, ResourceBase) and not isinstance(value, Ref):
            wrapper = Registry.get().get_type_wrapper(type(value))
            if wrapper is not None:
                classes.add(wrapper)
        for cls in classes - self._registered_types:
            self.register_type(cls)

    def register_type(self, resource: Any) -> None:
        """Record the field types of a resource class (or of the wrapper of a type or value)."""
        registry = Registry.get()
        if isinstance(resource, type):
            cls = registry.wrap_type(resource)
        else:
            cls = type(registry.wrap(resource))
        if self._typed_backend:
            fields = dict(zip(cls.field_names(), cls.field_descriptors()))
            self.backend.register_type(cls.type_key(), fields)  # type: ignore[attr-defined]
        self._registered_types.add(cls)

    # 0.4's store queries ---------------------------------------------------------

    def get_dependency_graph(
        self, refs: Iterable[Ref[Any]]
    ) -> dict[Ref[Any], set[Ref[Any]] | None]:
        """Each object reachable from ``refs`` and the refs it links to (``None``: missing)."""
        given = {r.digest: r for r in refs}
        graph = dependency_graph(self.get_available, list(given))
        return {
            given.get(d) or Ref(d): None if links is None else {Ref(x) for x in links}
            for d, links in graph.items()
        }

    def get_transitive_type_requirements(self, ref: Ref[Any]) -> set[Any]:
        """The type keys needed to read ``ref`` and all it links to (``ObjectMissing`` if
        something is not stored)."""
        return transitive_type_keys(self.get_available, ref.digest)

    def get_distribution_requirements(
        self, ref: Ref[Any], expect_distribution_key: bool = True
    ) -> set[Any]:
        """The distributions of those types (see ``enact.inspection.distribution_keys``)."""
        return distribution_keys(
            self.get_transitive_type_requirements(ref), expect_distribution_key
        )

    async def get_dependency_graph_async(
        self, refs: Iterable[Ref[Any]]
    ) -> dict[Ref[Any], set[Ref[Any]] | None]:
        return await self._off_loop(self.get_dependency_graph, list(refs))

    async def get_transitive_type_requirements_async(self, ref: Ref[Any]) -> set[Any]:
        return await self._off_loop(self.get_transitive_type_requirements, ref)

    async def get_distribution_requirements_async(
        self, ref: Ref[Any], expect_distribution_key: bool = True
    ) -> set[Any]:
        return await self._off_loop(
            self.get_distribution_requirements, ref, expect_distribution_key
        )

    async def _off_loop(self, fn: Any, *args: Any) -> Any:
        if self.in_process:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    def get_available(self, digests: Sequence[str]) -> list[bytes | None]:
        """Verified bytes of each object, ``None`` where missing (or not a digest)."""
        valid = [d for d in digests if is_digest(d)]
        found = dict(zip(valid, self.backend.get(valid))) if valid else {}
        where = describe(self.backend)
        return [
            None if found.get(d) is None else verify(d, found[d], where)  # type: ignore[arg-type]
            for d in digests
        ]

    async def commit_async(self, value: Any) -> Ref[Any]:
        if self.in_process:
            return self.commit(value)
        return await asyncio.to_thread(self.commit, value)

    async def checkout_async(self, ref: Ref[Any] | str) -> Any:
        if self.in_process:
            return self.checkout(ref)
        return await asyncio.to_thread(self.checkout, ref)

    def checkout_value(self, digest: str) -> Any:
        """Like ``checkout``, but shares decoded immutable scalars between calls."""
        value = self._values.get(digest, _MISSING)
        if value is _MISSING:
            value = unpack_value(self.get_object(digest), self._ext_hook)
            if type(value) in _SHAREABLE and (
                not isinstance(value, (str, bytes)) or len(value) < 1024
            ):
                if len(self._values) > VALUES_LIMIT:
                    self._values.clear()
                self._values[digest] = value
        return value

    # Objects -----------------------------------------------------------------

    def stage(self, objects: Mapping[str, bytes]) -> None:
        """Hold objects to be written with the next ``put_objects`` (one batch, not two).

        Staged objects can be read at once. Use it for records that only matter
        once something that refers to them is written anyway.
        """
        with self._lock:
            self._staged.update(objects)

    def put_objects(self, objects: Mapping[str, bytes]) -> None:
        """Write packed objects (digest -> bytes), and any staged ones, in one batch."""
        staged: dict[str, bytes] = {}
        if self._staged:
            with self._lock:
                staged, self._staged = self._staged, {}
            objects = {**staged, **objects}
        if not objects:
            return
        try:
            self.backend.put(objects)
        except BaseException:
            self.stage(staged)  # keep the staged objects for the next write
            raise
        if self._use_cache:
            for digest, data in objects.items():
                self._remember(digest, data)

    def get_object(self, digest: str) -> bytes:
        """Verified bytes of one object; ``ObjectMissing`` or ``ObjectCorrupt``."""
        return self.get_objects([digest])[0]

    def get_objects(self, digests: Sequence[str]) -> list[bytes]:
        """Verified bytes of several objects, aligned; raises on the first missing."""
        out: list[bytes | None] = (
            [self._cache.get(d) for d in digests] if self._use_cache else [None] * len(digests)
        )
        if self._staged:
            for i, digest in enumerate(digests):
                if out[i] is None:
                    out[i] = self._staged.get(digest)
        wanted = [i for i, data in enumerate(out) if data is None]
        if wanted:
            for i in wanted:
                if not is_digest(digests[i]):
                    raise ObjectMissing(
                        f"{shown(digests[i])} is not a digest (64 lowercase hex digits), so "
                        "no object has it"
                    )
            try:
                fetched = self.backend.get([digests[i] for i in wanted])
            except StoreError:
                raise
            except Exception as exc:
                error = StoreError(
                    f"backend {describe(self.backend)} failed to read objects: {redact(exc)}"
                )
                raise error from safe_cause(exc)
            for i, data in zip(wanted, fetched):
                digest = digests[i]
                if data is None:
                    raise ObjectMissing(f"no object {digest} in store {describe(self.backend)}")
                try:
                    verify(digest, data, describe(self.backend))
                except ObjectCorrupt as exc:
                    raise ObjectCorrupt(f"{exc}{self._contain(digest, data)}") from None
                out[i] = data
                if self._use_cache:
                    self._remember(digest, data)
        return out  # type: ignore[return-value]

    def recently_written(self) -> set[str]:
        """Digests this store wrote (or staged) within ``KNOWN_DIGESTS_TTL_S``.

        A record may link these without writing them again. The set is emptied
        (in place) when it gets older than that, or very large.
        """
        now = time.monotonic()
        if (
            now - self._known_since > KNOWN_DIGESTS_TTL_S
            or len(self.known_digests) > KNOWN_DIGESTS_LIMIT
        ):
            self.known_digests.clear()
            self._known_since = now
        return self.known_digests

    def _contain(self, digest: str, data: bytes) -> str:
        """Move a damaged copy aside if the backend can; a note for the error message."""
        quarantine = getattr(self.backend, "quarantine", None)
        if quarantine is None:
            return ""
        try:
            quarantine({digest: data})
        except Exception as exc:  # containment is best effort; the error still stands
            log.warning("could not move damaged object %s aside: %s", digest, exc)
            return ""
        return "; the damaged copy was moved aside, so committing the value again repairs it"

    def has_objects(self, digests: Sequence[str]) -> list[bool]:
        valid = [d for d in digests if is_digest(d)]
        if len(valid) == len(digests):
            return self.backend.has(digests)
        found = dict(zip(valid, self.backend.has(valid))) if valid else {}
        return [found.get(d, False) for d in digests]

    def _remember(self, digest: str, data: bytes) -> None:
        # An entry costs its bytes plus the key, the bytes object and the dict slot:
        # for the small records a run writes, more than the data itself.
        size = len(data) + _CACHE_ENTRY_OVERHEAD
        if size > self._cache_limit // 8:
            return
        with self._lock:
            if digest in self._cache:
                return
            self._cache[digest] = data
            self._cache_size += size
            if self._cache_size > self._cache_limit:
                # Drop the oldest half: cheap, and good enough for a read cache.
                for old in list(self._cache)[: len(self._cache) // 2]:
                    self._cache_size -= len(self._cache.pop(old)) + _CACHE_ENTRY_OVERHEAD

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self.backend)})"


def _packs(ref_type: type) -> bool:
    """Whether a ref type brings its own packing (overrides ``Ref.pack``/``unpack``)."""
    return ref_type is not Ref and (
        ref_type.pack.__func__ is not Ref.pack.__func__  # type: ignore[attr-defined]
        or getattr(ref_type, "unpack", None) is not Ref.unpack
    )


class InMemoryStore(Store):
    """A store whose objects live in this process's memory."""

    def __init__(self) -> None:
        super().__init__(backend_class("memory")())


class FileStore(Store):
    """A store in a directory; objects are written atomically."""

    def __init__(self, root_dir: str | os.PathLike[str]) -> None:
        super().__init__(backend_class("file")(root_dir))


def commit(value: Any) -> Ref[Any]:
    """Commit ``value`` to the current store."""
    return current_store().commit(value)


def checkout(ref: Ref[Any]) -> Any:
    """Check ``ref`` out (of the current store, else of the store it came from)."""
    return ref.checkout()


async def commit_async(value: Any) -> Ref[Any]:
    return await current_store().commit_async(value)


async def checkout_async(ref: Ref[Any]) -> Any:
    return await ref.checkout_async()


def resource_digest(value: Any) -> str:
    """The digest ``value`` would have in any store, without storing it."""
    return digest_bytes(pack_value(value)[0])


def iter_links(store: Store, roots: Iterable[str]) -> Iterable[str]:
    """Every digest reachable from ``roots`` (each once), without decoding values."""
    seen: set[str] = set()
    frontier = [d for d in roots]
    while frontier:
        batch = [d for d in dict.fromkeys(frontier) if d not in seen]
        frontier = []
        if not batch:
            break
        seen.update(batch)
        for digest, data in zip(batch, store.get_objects(batch)):
            yield digest
            frontier.extend(packed_links(data))

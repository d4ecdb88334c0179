"""Questions about stored objects that need no decoding: their links and their types.

A packed object lists the digests it links to, and names each resource type in
its body by type id, so a store can answer "what does this object refer to" and
"which types does reading it need" without building any value (and so without
running any code). These are enact 0.4's store queries (dependency graphs,
type and distribution requirements), answered from our encoding.

``BackendQueries`` gives a backend (anything with ``get``) 0.4's per-backend query
methods, by ref id; ``enact.backend`` hands it to the backends.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable, Mapping, Sequence

import msgpack

from enact.digests import is_digest
from enact.errors import ObjectMissing, RefError, RegistryError, UnregisteredResource
from enact.refs import Ref
from enact.registry import Registry
from enact.serialization import EXT_BIGINT, EXT_CLASS, EXT_RESOURCE, FORMAT, packed_links
from enact.types import DistributionKey, TypeDescriptor, TypeKey

GetObjects = Callable[[Sequence[str]], Sequence[bytes | None]]


class DistributionKeyError(RegistryError):
    """A type needed by a stored object has no registered distribution."""


def _type_key(type_id: str) -> TypeKey:
    try:
        return Registry.get().lookup(type_id).type_key()
    except UnregisteredResource:
        return TypeKey(type_id, None)


def _top_level_wrapper(body: Any) -> TypeKey | None:
    """The field-value wrapper 0.4 would have stored a plain top-level value as."""
    value_type: type = type(body)
    if isinstance(body, msgpack.ExtType):
        value_type = {EXT_BIGINT: int, EXT_CLASS: type}.get(body.code, Ref)
    elif (
        isinstance(body, list)
        and len(body) == 2
        and isinstance(body[0], msgpack.ExtType)
        and body[0].code == EXT_RESOURCE
    ):
        return None  # a resource: its own type is in the body
    if value_type is Ref:
        return None
    wrapper = Registry.get().get_type_wrapper(value_type)
    return None if wrapper is None else wrapper.type_key()


def _scan(data: bytes) -> tuple[Any, set[str]]:
    """The body of a packed object and the type ids it names."""
    names: set[str] = set()

    def collect(code: int, payload: bytes) -> Any:
        if code in (EXT_RESOURCE, EXT_CLASS):
            names.add(payload.decode())
        return msgpack.ExtType(code, payload)

    obj = msgpack.unpackb(data, ext_hook=collect, raw=False, strict_map_key=False)
    body = obj[2] if isinstance(obj, list) and len(obj) == 3 and obj[0] == FORMAT else None
    return body, names


def type_keys(data: bytes) -> set[TypeKey]:
    """The types a packed object names (plus ``Ref``'s: every object is reached by one)."""
    body, names = _scan(data)
    keys = {_type_key(name) for name in names}
    keys.add(Ref.type_key())
    top = _top_level_wrapper(body)
    if top is not None:
        keys.add(top)
    return keys


def get_type_keys(get: GetObjects, digests: Sequence[str]) -> list[set[TypeKey] | None]:
    """``type_keys`` of each object, ``None`` where missing, aligned with ``digests``."""
    wanted = [d for d in digests if is_digest(d)]
    found = dict(zip(wanted, get(wanted))) if wanted else {}
    out: list[set[TypeKey] | None] = []
    for digest in digests:
        data = found.get(digest)
        out.append(None if data is None else type_keys(data))
    return out


def dependency_graph(
    get: GetObjects, roots: Iterable[str], max_depth: int | None = None
) -> dict[str, set[str] | None]:
    """Each object reachable from ``roots`` (within ``max_depth`` links) and the digests
    it links to; ``None`` for an object that is not stored."""
    graph: dict[str, set[str] | None] = {}
    frontier = list(dict.fromkeys(roots))
    depth = 0
    while frontier and (max_depth is None or depth <= max_depth):
        batch = [d for d in frontier if d not in graph]
        valid = [d for d in batch if is_digest(d)]
        fetched = dict(zip(valid, get(valid))) if valid else {}
        frontier = []
        for digest in batch:
            data = fetched.get(digest)
            if data is None:
                graph[digest] = None
                continue
            links = set(packed_links(data))
            graph[digest] = links
            frontier.extend(links)
        frontier = list(dict.fromkeys(frontier))
        depth += 1
    return graph


def transitive_type_keys(get: GetObjects, root: str) -> set[TypeKey]:
    """The types needed to read ``root`` and everything it links to.

    ``ObjectMissing`` (0.4's ``NotFound``) names an object that is not stored.
    """
    graph = dependency_graph(get, [root])
    missing = sorted(d for d, links in graph.items() if links is None)
    if missing:
        raise ObjectMissing(f"object {missing[0]} (reached from {root}) is not in the store")
    keys: set[TypeKey] = set()
    for found in get_type_keys(get, list(graph)):
        keys |= found or set()
    return keys


def distribution_keys(
    keys: Iterable[TypeKey], expect_distribution_key: bool = True
) -> set[DistributionKey]:
    """The distributions of ``keys``; ``DistributionKeyError`` names a type without one
    unless ``expect_distribution_key`` is false (such types are then left out)."""
    out: set[DistributionKey] = set()
    for key in keys:
        if key.distribution_key is not None:
            out.add(key.distribution_key)
        elif expect_distribution_key:
            raise DistributionKeyError(
                f"type {key.name} has no registered distribution; register its package "
                "with enact.register_distribution, or pass expect_distribution_key=False"
            )
    return out


# 0.4's per-backend queries --------------------------------------------------------


def digest_of_id(ref_id: str) -> str:
    """The digest a ref id names ('' for an id that names none, which no store holds)."""
    try:
        return Ref.from_id(ref_id).digest
    except RefError:
        return ""


class BackendQueries:
    """Mixin: 0.4's per-backend queries over ``self.get``."""

    def get(self, digests: Sequence[str]) -> list[bytes | None]:  # pragma: no cover
        raise NotImplementedError

    def register_type(
        self, type_key: TypeKey, field_types: Mapping[str, TypeDescriptor | None]
    ) -> None:  # pragma: no cover - each backend implements it
        raise NotImplementedError

    def get_type(self, type_key: TypeKey) -> dict[str, TypeDescriptor | None] | None:
        raise NotImplementedError  # pragma: no cover

    def get_type_keys(self, ref_ids: Sequence[str]) -> list[set[TypeKey] | None]:
        """The types each object names, ``None`` where missing, aligned with ``ref_ids``."""
        return get_type_keys(self.get, [digest_of_id(i) for i in ref_ids])

    def get_dependency_graph(
        self, ref_ids: Sequence[str], max_depth: int | None = None
    ) -> dict[str, set[str] | None]:
        """Objects reachable from ``ref_ids`` and the ids they link to (``None``: missing)."""
        graph = dependency_graph(self.get, [digest_of_id(i) for i in ref_ids], max_depth)
        aliases = {digest_of_id(i): i for i in ref_ids}
        return {aliases.get(d, d): links for d, links in graph.items()}

    async def get_type_keys_async(self, ref_ids: Sequence[str]) -> list[set[TypeKey] | None]:
        return await _off_loop(self, self.get_type_keys, ref_ids)

    async def get_dependency_graph_async(
        self, ref_ids: Sequence[str], max_depth: int | None = None
    ) -> dict[str, set[str] | None]:
        return await _off_loop(self, self.get_dependency_graph, ref_ids, max_depth)

    async def register_type_async(
        self, type_key: TypeKey, field_types: Mapping[str, TypeDescriptor | None]
    ) -> None:
        await _off_loop(self, self.register_type, type_key, field_types)

    async def get_type_async(self, type_key: TypeKey) -> dict[str, TypeDescriptor | None] | None:
        return await _off_loop(self, self.get_type, type_key)


async def _off_loop(backend: object, fn: Any, *args: Any) -> Any:
    # In-memory work is quick; anything touching disk or network runs off the loop.
    if getattr(backend, "url", "") == "memory://":
        return fn(*args)
    return await asyncio.to_thread(fn, *args)

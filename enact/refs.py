"""``Ref``: a pointer to a committed value, by digest.

A ref is itself a resource with one field, ``digest``. Refs nested in a value
are encoded as links, so committed data forms a Merkle DAG. Equality and hash go
by digest. Checking a ref out goes through a store, which verifies the bytes
against the digest before decoding them.

Which store: the one passed in, else the active one (``with store:``), else the
store the ref came from. Every ref a store hands out (``commit``) or decodes
(``checkout``) remembers that store, so objects obtained inside a ``with store:``
block keep working after it; if the active store lacks the object, the
remembered one is asked.

The 0.4 packing API (``pack``/``unpack``/``verify``, ``PackedResource``) is kept:
a ``Ref`` subclass that overrides ``pack`` and ``unpack`` can transform objects
before they are stored (see ``Store(ref_type=...)``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Iterator, Mapping, NamedTuple, TypeVar

from enact import digests
from enact.context import NO_STORE_HELP, active_store
from enact.digests import is_digest
from enact.errors import DeserializationError, InvalidRef, NoActiveStore, ObjectMissing, RefError
from enact.registry import Registry
from enact.resources import Resource, ResourceBase, ResourceDict, check_fields
from enact.types import TypeKey

if TYPE_CHECKING:
    from enact.store import Store

T = TypeVar("T")
R = TypeVar("R", bound="Ref[Any]")


class PackedResource(NamedTuple):
    """A resource as it goes to storage: its data, its ref, the ids it links to and the
    types it uses (0.4's packing API)."""

    data: ResourceDict
    ref_dict: ResourceDict
    links: set[str]
    type_keys: set[TypeKey]

    def ref(self) -> Ref[Any]:
        ref = Registry.get().from_resource_dict(self.ref_dict)
        if not isinstance(ref, Ref):
            raise RefError(f"the packed ref_dict {self.ref_dict!r} is not a Ref")
        return ref

    def unpack(self) -> Any:
        return self.ref().unpack(self)


@dataclass(eq=False)
class Ref(Resource, Generic[T]):
    """A reference to a committed value of type ``T``."""

    digest: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Ref[Any]:
        check_fields(cls, fields, {"digest": str})
        if not is_digest(fields["digest"]):
            raise DeserializationError(
                f"stored ref holds {fields['digest'][:80]!r}, not a digest"
            )
        return cls(fields["digest"])

    def __post_init__(self) -> None:
        if not isinstance(self.digest, str):
            raise InvalidRef(
                f"a Ref needs a string digest, got {self.digest!r} "
                f"({type(self.digest).__qualname__})"
            )
        # The store this ref came from, if any (not a field: never stored or compared).
        self._store: Store | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Ref({self.digest[:12]}…)" if len(self.digest) > 12 else f"Ref({self.digest})"

    @property
    def id(self) -> str:
        """A string that ``Ref.from_id`` accepts: the digest itself.

        A ref built by hand around something that is not a digest gets 0.4's
        id form instead, ``{"digest": "..."}``.
        """
        if is_digest(self.digest):
            return self.digest
        return json.dumps({"digest": self.digest}, sort_keys=True)

    @classmethod
    def from_id(cls: type[R], ref_id: str) -> R:
        """The ref for an id: a digest, or 0.4's ``{"digest": "..."}``; ``RefError`` otherwise."""
        if is_digest(ref_id):
            return cls(ref_id)
        if isinstance(ref_id, str) and ref_id.lstrip().startswith("{"):
            try:
                parsed = json.loads(ref_id)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and set(parsed) == {"digest"}:
                if isinstance(parsed["digest"], str):
                    return cls(parsed["digest"])
        raise RefError(
            f"{ref_id!r} is not a ref id (expected 64 lowercase hex digits, or "
            '{"digest": "..."})'
        )

    # Checkout ----------------------------------------------------------------

    def _stores(self, store: Store | None) -> tuple[Store, Store | None]:
        """The store to read from, and a fallback to try if the object is missing there."""
        if store is not None:
            return store, None
        active = active_store()
        remembered = self._store
        if active is None:
            if remembered is None:
                raise NoActiveStore(NO_STORE_HELP.format(what=repr(self)))
            return remembered, None
        return active, remembered if remembered is not active else None

    def checkout(self, store: Store | None = None) -> T:
        """The committed value, decoded afresh (edits to it do not touch the store)."""
        first, fallback = self._stores(store)
        try:
            return first.checkout(self)  # type: ignore[no-any-return]
        except ObjectMissing:
            if fallback is None:
                raise
            return fallback.checkout(self)  # type: ignore[no-any-return]

    __call__ = checkout

    async def checkout_async(self, store: Store | None = None) -> T:
        first, fallback = self._stores(store)
        try:
            return await first.checkout_async(self)  # type: ignore[no-any-return]
        except ObjectMissing:
            if fallback is None:
                raise
            return await fallback.checkout_async(self)  # type: ignore[no-any-return]

    def is_cached(self) -> bool:
        """Whether this ref can be checked out with no store active (it remembers one)."""
        return self._store is not None

    def _clear_cache(self) -> None:
        """Forget the remembered store: checkouts then need an active store."""
        self._store = None

    def set(self, value: T, store: Store | None = None) -> None:
        """Commit ``value`` and point this ref at it."""
        target = store or self._stores(None)[0]
        self.digest = target.commit(value).digest
        self._store = target

    @contextlib.contextmanager
    def modify(self, store: Store | None = None) -> Iterator[T]:
        """Check out, let the caller edit, then commit and re-point this ref."""
        target = store or self._stores(None)[0]
        value = target.checkout(self)
        yield value
        self.digest = target.commit(value).digest
        self._store = target

    # 0.4's packing API -------------------------------------------------------

    @classmethod
    def from_resource(cls: type[R], resource: Any) -> R:
        """The ref a store would give ``resource`` (a resource or any storable value)."""
        return cls(digests.digest(resource))

    @classmethod
    def from_resource_dict(cls: type[R], resource_dict: ResourceDict) -> R:
        return cls(digests.digest(resource_dict))

    def verify(self, resource_dict: ResourceDict) -> None:
        """``RefError`` unless ``resource_dict`` has this ref's digest."""
        if self.from_resource_dict(resource_dict) != self:
            raise RefError(f"{self!r} does not match the resource dict {resource_dict!r}")

    def unpack(self, packed: PackedResource) -> Any:
        """The value a packed resource holds (verified against this ref)."""
        self.verify(packed.data)
        registry = Registry.get()
        return registry.unwrap(registry.from_resource_dict(packed.data))

    @classmethod
    def pack(cls: type[R], resource: ResourceBase) -> tuple[R, PackedResource]:
        """The ref to ``resource`` and the resource packed for storage: its resource
        dict, the ids of the refs in it, and the keys of the types it uses."""
        data = resource.to_resource_dict()
        links: set[str] = set()
        type_keys: set[TypeKey] = set()
        stack: list[Any] = [data]
        while stack:
            value = stack.pop()
            if isinstance(value, ResourceDict):
                if value.type_info.name == Ref.type_id():
                    links.add(Ref(value["digest"]).id)
                    continue
                type_keys.add(value.type_info)
                stack.extend(value.values())
            elif isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, type) and issubclass(value, ResourceBase):
                type_keys.add(value.type_key())
        ref = cls.from_resource(resource)
        return ref, PackedResource(data, ref.to_resource_dict(), links, type_keys)


Registry.get().register_type(Ref)

"""``Ref``: a pointer to a committed value, by digest.

A ref is itself a resource with one field, ``digest``. Refs nested in a value
are encoded as links, so committed data forms a Merkle DAG. Equality and hash go
by digest. Checking a ref out goes through the current store, which verifies
the bytes against the digest before decoding them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Iterator, Mapping, TypeVar

from enact.context import current_store
from enact.digests import is_digest
from enact.errors import DeserializationError, RefError
from enact.registry import Registry
from enact.resources import Resource, check_fields

if TYPE_CHECKING:
    from enact.store import Store

T = TypeVar("T")


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

    def __eq__(self, other: object) -> bool:
        return type(other) is Ref and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Ref({self.digest[:12]}…)" if len(self.digest) > 12 else f"Ref({self.digest})"

    @property
    def id(self) -> str:
        """The digest, as a string that ``Ref.from_id`` accepts."""
        return self.digest

    @classmethod
    def from_id(cls, ref_id: str) -> Ref[Any]:
        """The ref for an id (a digest); ``RefError`` if it is not one."""
        if not is_digest(ref_id):
            raise RefError(f"{ref_id!r} is not a ref id (expected 64 lowercase hex digits)")
        return cls(ref_id)

    def checkout(self, store: Store | None = None) -> T:
        """The committed value, decoded afresh (edits to it do not touch the store)."""
        return (store or current_store()).checkout(self)

    __call__ = checkout

    async def checkout_async(self, store: Store | None = None) -> T:
        return await (store or current_store()).checkout_async(self)

    def set(self, value: T, store: Store | None = None) -> None:
        """Commit ``value`` and point this ref at it."""
        self.digest = (store or current_store()).commit(value).digest

    @contextlib.contextmanager
    def modify(self, store: Store | None = None) -> Iterator[T]:
        """Check out, let the caller edit, then commit and re-point this ref."""
        target = store or current_store()
        value = target.checkout(self)
        yield value
        self.digest = target.commit(value).digest


Registry.get().register_type(Ref)

"""Type wrappers: make values of foreign types storable.

A ``TypeWrapper[T]`` is a resource that stands in for a ``T`` in storage:
``wrap`` turns a ``T`` into the wrapper, ``unwrap`` turns it back. Built-in
wrappers cover tuples, sets, frozensets, types, functions, modules and enum
members. Types, functions and modules are stored by name; loading one looks the
name up in the registry (and the fixed table of built-in types) only: nothing
is imported, and nothing merely imported can be named (see ``enact.registry``).
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from enact.errors import DeserializationError
from enact.registry import Registry, register
from enact.resources import ImmutableResource, Resource, TypeWrapperBase
from enact.serialization import canonical_bytes, pack_value, unpack_value

T = TypeVar("T")


@dataclass
class TypeWrapper(TypeWrapperBase[T], Resource):
    """Base class for wrappers of non-enact types: a dataclass with no fields.

    Subclasses add their fields with ``@dataclass`` (one without inherits none).
    """

    # Built-in wrappers set this so that, e.g., a namedtuple is not silently
    # stored as a plain tuple.
    exact_type_only = False


class _Elements:
    """What the tuple and set wrappers share: one field, ``values``, the elements
    (sets in canonical order).

    enact 0.4 named this field ``value``. The name is part of the stored record, and
    so of the digest of every tuple and set ever stored, so it stays ``values``;
    ``value`` reads it as in 0.4, and ``pformat`` prints it as 0.4 did.
    """

    values: list

    @property
    def value(self) -> list:
        """The elements (enact 0.4's name for ``values``)."""
        return self.values


@register
@dataclass(frozen=True)
class TupleWrapper(_Elements, TypeWrapper[tuple], ImmutableResource):  # type: ignore[misc]
    values: list

    exact_type_only = True

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrapped_type(cls) -> type[tuple]:
        return tuple

    @classmethod
    def wrap(cls, value: tuple) -> TupleWrapper:
        return cls(list(value))

    _enact_field_types = {"values": list}

    def unwrap(self) -> tuple:
        return tuple(self.values)


def _canonical_order(values: Any) -> list:
    """Sort set elements by their canonical encoding, so equal sets digest equally."""
    return [v for _, v in sorted(((canonical_bytes(v), v) for v in values), key=lambda p: p[0])]


@register
@dataclass(frozen=True)
class SetWrapper(_Elements, TypeWrapper[set], ImmutableResource):  # type: ignore[misc]
    values: list

    exact_type_only = True

    @classmethod
    def wrapped_type(cls) -> type[set]:
        return set

    @classmethod
    def wrap(cls, value: set) -> SetWrapper:
        return cls(_canonical_order(value))

    _enact_field_types = {"values": list}

    def unwrap(self) -> set:
        return set(self.values)

    @classmethod
    def set_wrapped_value(cls, target: set, src: set) -> None:
        target.clear()
        target.update(src)


@register
@dataclass(frozen=True)
class FrozenSetWrapper(_Elements, TypeWrapper[frozenset], ImmutableResource):  # type: ignore[misc]
    values: list

    exact_type_only = True

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrapped_type(cls) -> type[frozenset]:
        return frozenset

    @classmethod
    def wrap(cls, value: frozenset) -> FrozenSetWrapper:
        return cls(_canonical_order(value))

    _enact_field_types = {"values": list}

    def unwrap(self) -> frozenset:
        return frozenset(self.values)


@register
@dataclass(frozen=True)
class TypeReference(TypeWrapper[type], ImmutableResource):  # type: ignore[misc]
    """A Python type, stored by module and qualified name."""

    module: str
    qualname: str

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrapped_type(cls) -> type[type]:
        return type

    @classmethod
    def wrap(cls, value: type) -> TypeReference:
        return cls(value.__module__, value.__qualname__)

    _enact_field_types = {"module": str, "qualname": str}

    def unwrap(self) -> type:
        """The built-in or registered class; ``UnregisteredResource`` for any other."""
        return Registry.get().lookup_class(self.module, self.qualname)


@register
@dataclass(frozen=True)
class GenericAliasReference(TypeWrapper[types.GenericAlias], ImmutableResource):  # type: ignore[misc]
    """A parameterized type such as ``list[str]`` or ``dict[str, int]``."""

    origin: Any
    args: list

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrapped_type(cls) -> type[types.GenericAlias]:
        return types.GenericAlias

    @classmethod
    def wrap(cls, value: Any) -> GenericAliasReference:
        return cls(typing.get_origin(value), list(typing.get_args(value)))

    _enact_field_types = {"origin": type, "args": list}

    def unwrap(self) -> Any:
        return types.GenericAlias(self.origin, tuple(self.args))


@register
@dataclass(frozen=True)
class UnionReference(TypeWrapper[Any], ImmutableResource):  # type: ignore[misc]
    """A union of types: ``int | str``, ``typing.Optional[int]``, ``typing.Union[...]``."""

    args: list

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrapped_type(cls) -> Any:
        return types.UnionType

    @classmethod
    def wrap(cls, value: Any) -> UnionReference:
        return cls(list(typing.get_args(value)))

    _enact_field_types = {"args": list}

    def unwrap(self) -> Any:
        try:
            return typing.Union[tuple(self.args)]  # noqa: UP007  (the args are values here)
        except TypeError as exc:
            raise DeserializationError(f"stored union of {len(self.args)} invalid: {exc}") from None


def function_id(fn: Any) -> str:
    """The stable name of a function: ``module.QualName``."""
    return f"{fn.__module__}.{fn.__qualname__}"


@register
@dataclass(frozen=True)
class FunctionReference(TypeWrapper[types.FunctionType], ImmutableResource):  # type: ignore[misc]
    """A function, stored by module and qualified name."""

    module: str
    qualname: str

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrapped_type(cls) -> type[types.FunctionType]:
        return types.FunctionType

    @classmethod
    def wrap(cls, value: Any) -> FunctionReference:
        return cls(value.__module__, value.__qualname__)

    _enact_field_types = {"module": str, "qualname": str}

    def unwrap(self) -> Any:
        """The registered (tracked) function; ``UnregisteredResource`` for any other."""
        return Registry.get().function(f"{self.module}.{self.qualname}")

    def __str__(self) -> str:
        return self.qualname


@register
@dataclass(frozen=True)
class BuiltinFunctionReference(FunctionReference):  # type: ignore[misc]
    @classmethod
    def wrapped_type(cls) -> type[types.BuiltinFunctionType]:  # type: ignore[override]
        return types.BuiltinFunctionType


@register
@dataclass(frozen=True)
class ModuleReference(TypeWrapper[types.ModuleType], ImmutableResource):  # type: ignore[misc]
    """A module, stored by name; loads only modules registered with ``enact.register``."""

    name: str

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrapped_type(cls) -> type[types.ModuleType]:
        return types.ModuleType

    @classmethod
    def wrap(cls, value: types.ModuleType) -> ModuleReference:
        return cls(value.__name__)

    _enact_field_types = {"name": str}

    def unwrap(self) -> types.ModuleType:
        """The registered module; ``UnregisteredResource`` for any other."""
        return Registry.get().lookup_module(self.name)


@register
@dataclass(frozen=True)
class EnumWrapper(TypeWrapper[enum.Enum], ImmutableResource):  # type: ignore[misc]
    """A member of an ``Enum``, stored by its class (which must be registered) and name."""

    enum_type: Any
    name: str

    @classmethod
    def wrapped_type(cls) -> type[enum.Enum]:
        return enum.Enum

    @classmethod
    def wrap(cls, value: enum.Enum) -> EnumWrapper:
        return cls(type(value), value.name)

    _enact_field_types = {"enum_type": type, "name": str}

    def unwrap(self) -> enum.Enum:
        if not issubclass(self.enum_type, enum.Enum):
            raise DeserializationError(
                f"stored enum member names the class {self.enum_type.__qualname__}, "
                "which is not an Enum"
            )
        try:
            return self.enum_type[self.name]  # type: ignore[no-any-return]
        except KeyError:
            raise DeserializationError(
                f"{self.enum_type.__qualname__} has no member {self.name[:100]!r}"
            ) from None


def deepcopy(value: Any) -> Any:
    """An independent copy, made by encoding and decoding (so it obeys storage rules)."""
    return unpack_value(pack_value(value)[0])


# ``typing.Optional[int]`` and ``typing.Union[...]`` have a private class of their own.
Registry.get().register_wrapper(type(typing.Union[int, str]), UnionReference)  # noqa: UP007

"""Field values and resource dicts: enact 0.4's view of what a resource holds.

A *field value* is what a resource field holds once everything foreign is
wrapped: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, resources,
resource classes, and lists and ``str``-keyed dicts of field values. Any other
value is represented by its ``TypeWrapper`` instance, any other type by its
wrapper class. ``to_field_value``/``from_field_value`` convert, and a
``ResourceDict`` is a resource as a dict of field values, recursively.

``wrap`` returns a resource for *every* value, as 0.4 did: plain values get a
field-value wrapper (``IntWrapper(1)``, ``ListWrapper([...])``...). These
wrappers encode exactly as the value they hold, so ``wrap(x)`` and ``x`` have
the same digest and check out as the same value.

This is a view over the one encoding in ``enact.serialization``: nothing here
changes what is stored.
"""

from __future__ import annotations

import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Type, TypeVar, Union

from enact.errors import FieldTypeError
from enact.registry import Registry, register
from enact.resources import ResourceBase, ResourceDict, install_views
from enact.type_inference import from_annotation
from enact.types import PRIMITIVES, Primitives, TypeDescriptor
from enact.wrappers import TypeWrapper, deepcopy

T = TypeVar("T")

# What a resource field holds, and what a resource dict holds (0.4's names).
FieldValue = Union[
    Primitives, ResourceBase, Type[ResourceBase], List["FieldValue"], Dict[str, "FieldValue"]
]
ResourceDictValue = Union[
    Primitives, Type[ResourceBase], List["ResourceDictValue"], Dict[str, "ResourceDictValue"],
    ResourceDict,
]


@dataclass
class FieldValueWrapper(TypeWrapper[T]):
    """Wraps a plain field value; encodes as the value itself (same digest)."""

    value: Any

    encodes_as_value: ClassVar[bool] = True
    exact_type_only = True

    @classmethod
    def wrap(cls, value: Any) -> FieldValueWrapper[T]:
        if type(value) is not cls.wrapped_type():
            raise FieldTypeError(
                f"{cls.__qualname__} wraps {cls.wrapped_type().__qualname__} values, "
                f"not {type(value).__qualname__}"
            )
        return cls(to_field_value(value))

    def unwrap(self) -> Any:
        return from_field_value(self.value)


class PrimitiveWrapper(FieldValueWrapper[T]):
    """Wraps an immutable plain value."""

    @classmethod
    def is_immutable(cls) -> bool:
        return True


@register
@dataclass
class NoneWrapper(PrimitiveWrapper[None]):
    value: Any = None

    @classmethod
    def wrapped_type(cls) -> type[None]:
        return type(None)


@register
@dataclass
class BoolWrapper(PrimitiveWrapper[bool]):
    @classmethod
    def wrapped_type(cls) -> type[bool]:
        return bool


@register
@dataclass
class IntWrapper(PrimitiveWrapper[int]):
    @classmethod
    def wrapped_type(cls) -> type[int]:
        return int


@register
@dataclass
class FloatWrapper(PrimitiveWrapper[float]):
    @classmethod
    def wrapped_type(cls) -> type[float]:
        return float


@register
@dataclass
class StrWrapper(PrimitiveWrapper[str]):
    @classmethod
    def wrapped_type(cls) -> type[str]:
        return str


@register
@dataclass
class BytesWrapper(PrimitiveWrapper[bytes]):
    @classmethod
    def wrapped_type(cls) -> type[bytes]:
        return bytes


@register
@dataclass
class ListWrapper(FieldValueWrapper[list]):
    @classmethod
    def wrapped_type(cls) -> type[list]:
        return list

    @classmethod
    def set_wrapped_value(cls, target: list, src: list) -> None:
        target[:] = src


@register
@dataclass
class DictWrapper(FieldValueWrapper[dict]):
    @classmethod
    def wrapped_type(cls) -> type[dict]:
        return dict

    @classmethod
    def set_wrapped_value(cls, target: dict, src: dict) -> None:
        target.clear()
        target.update(src)


@register
@dataclass
class ResourceTypeWrapper(FieldValueWrapper[type]):
    """Wraps a type (a resource class, a built-in, or a type with a wrapper)."""

    @classmethod
    def wrapped_type(cls) -> type[type]:
        return type

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrap(cls, value: Any) -> ResourceTypeWrapper:
        Registry.get().wrap_type(value)  # MissingWrapperError for types enact cannot store
        return cls(value)

    def unwrap(self) -> Any:
        return self.value


@register
@dataclass
class TypeDescriptorWrapper(TypeWrapper[TypeDescriptor]):
    """Stores a ``TypeDescriptor`` as its JSON form."""

    json: Any

    @classmethod
    def wrapped_type(cls) -> type[TypeDescriptor]:
        return TypeDescriptor

    @classmethod
    def is_immutable(cls) -> bool:
        return True

    @classmethod
    def wrap(cls, value: TypeDescriptor) -> TypeDescriptorWrapper:
        return cls(value.to_json())

    def unwrap(self) -> TypeDescriptor:
        return TypeDescriptor.from_json(self.json)


# Conversions ---------------------------------------------------------------------


def wrap(value: Any) -> ResourceBase:
    """``value`` as a resource: itself if it is one, else its wrapper (see module doc)."""
    return Registry.get().wrap(value)


def unwrap(value: Any) -> Any:
    """The value a wrapper stands for; other values unchanged."""
    return Registry.get().unwrap(value)


def wrap_type(t: type) -> type[ResourceBase]:
    """The resource class that stands for ``t`` (``IntWrapper`` for ``int``...)."""
    return Registry.get().wrap_type(t)


def unwrap_type(t: type) -> type:
    return Registry.get().unwrap_type(t)


def to_field_value(value: Any) -> Any:
    """``value`` with every foreign value wrapped and every foreign type replaced by
    its wrapper class. ``MissingWrapperError`` names what has no wrapper."""
    t = type(value)
    if value is None or t in PRIMITIVES or isinstance(value, ResourceBase):
        return value
    if t is list:
        return [to_field_value(v) for v in value]
    if t is dict:
        for key in value:
            if type(key) is not str:
                raise FieldTypeError(f"dict keys must be str, got {type(key).__qualname__}")
        return {k: to_field_value(v) for k, v in value.items()}
    if isinstance(value, type):
        return wrap_type(value)
    return wrap(value)


def from_field_value(value: Any) -> Any:
    """Inverse of ``to_field_value``."""
    return Registry.get().from_field_value(value)


def to_resource_dict(resource: ResourceBase) -> ResourceDict:
    """``resource`` as a ``ResourceDict`` of field values, nested resources included."""
    return ResourceDict(
        type(resource),
        {name: _dict_value(to_field_value(v)) for name, v in resource.field_items()},
    )


def _dict_value(value: Any) -> Any:
    if isinstance(value, ResourceBase):
        return to_resource_dict(value)
    if type(value) is list:
        return [_dict_value(v) for v in value]
    if type(value) is dict:
        return {k: _dict_value(v) for k, v in value.items()}
    return value


def from_resource_dict(resource_dict: ResourceDict | ResourceBase) -> Any:
    """The resource a ``ResourceDict`` stands for (see ``Registry.from_resource_dict``)."""
    return Registry.get().from_resource_dict(resource_dict)


def field_descriptors(cls: type[ResourceBase]) -> list[TypeDescriptor | None]:
    """Descriptors of a dataclass resource's fields, from its (resolved) annotations."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: describe nothing
        return [None for _ in cls.field_names()]
    return [from_annotation(hints.get(name)) for name in cls.field_names()]


def set_field_from(target: Any, name: str, value: Any) -> None:
    """Set ``target.name`` to equal ``value`` without sharing it (``Resource.set_from``).

    A resource of the same type already there is updated in place, as is a
    mutable wrapped value; anything else is replaced by a copy.
    """
    current = getattr(target, name)
    if current is value:
        return
    if type(current) is type(value):
        if isinstance(current, ResourceBase):
            current.set_from(value)
            return
        wrapper = Registry.get().get_type_wrapper(type(current))
        if wrapper is not None and not wrapper.is_immutable():
            wrapper.set_wrapped_value(current, deepcopy(value))
            return
    object.__setattr__(target, name, _copy(value))


def _copy(value: Any) -> Any:
    if value is None or type(value) in PRIMITIVES or isinstance(value, (type, types.ModuleType)):
        return value
    return deepcopy(value)


install_views(sys.modules[__name__])  # type: ignore[arg-type]

"""Resources: the values enact records, stores and addresses by digest.

A resource is a typed record of named fields. Its identity in storage is its
type key (module and qualified name, never a package version, so data written by
one release stays readable by the next) plus its field values, encoded
canonically by ``enact.serialization``.

``Resource`` (and ``ImmutableResource``, its frozen sibling) are dataclasses
themselves, with no fields: a subclass decorated with ``@dataclass`` adds its
fields, and a subclass that is not simply inherits the fields it has (often
none), as in enact 0.4.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Iterable, Iterator, Mapping, Protocol, TypeVar

from enact.errors import DeserializationError, RegistryError
from enact.types import DistributionKey, TypeDescriptor, TypeKey

R = TypeVar("R", bound="ResourceBase")


class ResourceViews(Protocol):
    """What the resource base classes need from the modules above them (0.4's value
    model): installed once, at import, by ``enact.field_values``."""

    def to_resource_dict(self, resource: ResourceBase) -> ResourceDict: ...

    def field_descriptors(self, cls: type[ResourceBase]) -> list[TypeDescriptor | None]: ...

    def set_field_from(self, target: Any, name: str, value: Any) -> None: ...


_views: ResourceViews | None = None


def install_views(views: ResourceViews) -> None:
    """Set what ``to_resource_dict``, ``field_descriptors`` and ``Resource.set_from``
    delegate to (``enact.field_values`` installs it when it is imported)."""
    global _views
    _views = views


def views() -> ResourceViews:
    if _views is None:
        raise RegistryError("enact.field_values is not loaded: import enact first")
    return _views


class ResourceBase(abc.ABC):
    """The interface every storable record implements."""

    # Cached per class by ``type_id``; not a field.
    _enact_type_id: ClassVar[str]

    @classmethod
    def type_id(cls) -> str:
        """The stable name of this type in stored data: ``module.QualName``."""
        cached = cls.__dict__.get("_enact_type_id")
        if cached is None:
            cached = f"{cls.__module__}.{cls.__qualname__}"
            type.__setattr__(cls, "_enact_type_id", cached)
        return cached

    @classmethod
    def type_key(cls) -> TypeKey:
        """The type id and, if one was registered for it, the distribution it ships in."""
        return TypeKey(cls.type_id(), cls.type_distribution_key())

    @classmethod
    def type_distribution_key(cls) -> DistributionKey | None:
        """The distribution recorded for this class when it was registered, if any."""
        return cls.__dict__.get("_enact_distribution_key")  # type: ignore[no-any-return]

    @classmethod
    def set_type_distribution_key(cls, key: DistributionKey | None) -> None:
        type.__setattr__(cls, "_enact_distribution_key", key)

    @classmethod
    @abc.abstractmethod
    def field_names(cls) -> Iterable[str]:
        """Names of the fields, in declaration order."""

    @abc.abstractmethod
    def field_values(self) -> Iterable[Any]:
        """Values of the fields, aligned with ``field_names()``."""

    @classmethod
    def field_descriptors(cls) -> Iterable[TypeDescriptor | None]:
        """Type descriptors of the fields, aligned with ``field_names()``; ``None`` if untyped."""
        return [None for _ in cls.field_names()]

    @classmethod
    @abc.abstractmethod
    def from_fields(cls: type[R], fields: Mapping[str, Any]) -> R:
        """Build an instance from a mapping of field name to value."""

    def field_items(self) -> Iterator[tuple[str, Any]]:
        return zip(self.field_names(), self.field_values())

    def to_resource_dict(self) -> ResourceDict:
        """This resource as a ``ResourceDict`` of field values, recursively."""
        return views().to_resource_dict(self)

    @abc.abstractmethod
    def set_from(self, other: Any) -> None:
        """Make this object equal to ``other`` in place (used when replaying calls)."""


W = TypeVar("W")


class TypeWrapperBase(ResourceBase, Generic[W]):
    """A resource that stands in for a value of a foreign type ``W`` in storage."""

    @classmethod
    @abc.abstractmethod
    def wrapped_type(cls) -> type[W]:
        """The type this wrapper stores."""

    @classmethod
    @abc.abstractmethod
    def wrap(cls, value: W) -> TypeWrapperBase[W]:
        """Build the wrapper for ``value``."""

    @abc.abstractmethod
    def unwrap(self) -> W:
        """Build a fresh value from the wrapper."""

    @classmethod
    def is_immutable(cls) -> bool:
        """Whether wrapped values never change in place (so replay need not update them)."""
        return False

    @classmethod
    def set_wrapped_value(cls, target: W, src: W) -> None:
        """Update ``target`` in place to equal ``src`` (replay of mutating calls).

        The default handles objects with a ``__dict__``; override for others.
        """
        if hasattr(target, "__dict__") and hasattr(src, "__dict__"):
            target.__dict__.clear()
            target.__dict__.update(src.__dict__)
            return
        raise TypeError(
            f"{cls.__qualname__} cannot update a {type(target).__qualname__} in place; "
            "override set_wrapped_value"
        )


class ResourceDict(dict):  # type: ignore[type-arg]
    """A resource as a dict of its field values, tagged with its type (``type_info``).

    Nested resources are ``ResourceDict``s too; values of other types appear as
    field values (see ``enact.field_values``). A resource dict encodes, and so
    digests, exactly like the resource it stands for.
    """

    def __init__(
        self, resource_type: type[ResourceBase] | TypeKey, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.type_info: TypeKey = (
            resource_type if isinstance(resource_type, TypeKey) else resource_type.type_key()
        )

    def __repr__(self) -> str:
        return f"ResourceDict({self.type_info.name}, {dict.__repr__(self)})"


def dataclass_field_names(cls: type) -> tuple[str, ...]:
    """The names of a class's dataclass fields (none for a class that is not one),
    cached on the class itself (so a subclass gets its own)."""
    names = cls.__dict__.get("_enact_field_names")
    if names is None:
        names = (
            tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            if dataclasses.is_dataclass(cls)
            else ()
        )
        type.__setattr__(cls, "_enact_field_names", names)
    return names  # type: ignore[no-any-return]


class DataclassResource(ResourceBase):
    """Fields from ``dataclasses.fields``: what ``Resource`` and ``ImmutableResource`` share."""

    # Set by a subclass to have ``from_fields`` check stored field types first
    # (``check_fields``); enact's own records and wrappers do.
    _enact_field_types: ClassVar[Mapping[str, type | tuple[type, ...]] | None] = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return dataclass_field_names(cls)

    def field_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.field_names())

    @classmethod
    def field_descriptors(cls) -> list[TypeDescriptor | None]:
        """Descriptors inferred from the field annotations (forward references resolved)."""
        return views().field_descriptors(cls)

    @classmethod
    def from_fields(cls: type[R], fields: Mapping[str, Any]) -> R:
        expected = cls._enact_field_types  # type: ignore[attr-defined]
        if expected is not None:
            check_fields(cls, fields, expected)
        try:
            return cls(**fields)
        except TypeError:
            # Fields with init=False, or a custom __init__: set them directly, but
            # only if the names match exactly (stored data for another shape of
            # the class must not yield a half-built object).
            if set(fields) != set(cls.field_names()):
                raise TypeError(
                    f"cannot build {cls.__qualname__} from fields {sorted(fields)}; "
                    f"its fields are {sorted(cls.field_names())}"
                ) from None
            obj = cls.__new__(cls)
            for name, value in fields.items():
                object.__setattr__(obj, name, value)
            return obj

    def set_from(self, other: Any) -> None:  # pragma: no cover - both subclasses override
        raise NotImplementedError


@dataclass
class Resource(DataclassResource):
    """Base class for ``@dataclass`` resources."""

    def set_from(self, other: Any) -> None:
        """Make this resource equal to ``other``, in place; ``other`` is left unshared.

        Nested resources of the same type are updated in place (so objects that
        alias them see the change), mutable wrapped values through their
        wrapper's ``set_wrapped_value``; everything else gets a copy.
        """
        if type(other) is not type(self):
            raise TypeError(
                f"cannot set {type(self).__qualname__} from {type(other).__qualname__}"
            )
        set_field = views().set_field_from
        for name in self.field_names():
            set_field(self, name, getattr(other, name))


@dataclass(frozen=True)
class ImmutableResource(DataclassResource):
    """Base class for frozen resources (``@dataclass(frozen=True)``)."""

    def set_from(self, other: Any) -> None:
        if other != self:
            raise TypeError(
                f"{type(self).__qualname__} is immutable and cannot be set to a different "
                f"value ({other!r} != {self!r})"
            )


def check_fields(
    cls: type, fields: Mapping[str, Any], expected: Mapping[str, type | tuple[type, ...]]
) -> None:
    """Check decoded ``fields`` for ``cls``: exactly the ``expected`` names, each of
    its expected type. ``DeserializationError`` naming the field otherwise.

    For enact's own records and wrappers, whose ``from_fields`` runs on stored
    data: a record of the right type but with a field of the wrong type would
    otherwise fail later, far from the data, with an error not ours.
    """
    if not isinstance(fields, Mapping) or fields.keys() != expected.keys():
        got = (
            ", ".join(sorted(repr(k)[:40] for k in list(fields)[:12]))
            if isinstance(fields, Mapping)
            else f"a {type(fields).__qualname__}"
        )
        raise DeserializationError(
            f"stored {cls.__qualname__} has fields [{got}], expected {sorted(expected)}"
        )
    for name, kind in expected.items():
        if not isinstance(fields[name], kind):
            raise DeserializationError(
                f"stored {cls.__qualname__}.{name} is a {type(fields[name]).__qualname__}, "
                f"expected {_kind_name(kind)}"
            )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("None" if k is type(None) else k.__qualname__ for k in kinds)

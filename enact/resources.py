"""Resources: the values enact records, stores and addresses by digest.

A resource is a typed record of named fields. Its identity in storage is its
type key (module and qualified name, never a package version, so data written by
one release stays readable by the next) plus its field values, encoded
canonically by ``enact.serialization``. ``Resource`` is the base for ordinary
``@dataclass`` resources; ``ImmutableResource`` for frozen ones.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib.metadata
import os
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping, TypeVar

from enact.errors import DeserializationError, RegistryError

R = TypeVar("R", bound="ResourceBase")


@dataclass(frozen=True)
class DistributionKey:
    """A Python distribution (package name and version) that ships types.

    Informational only: it is never part of what is hashed, so upgrading a
    package does not orphan data stored by the previous version.
    """

    name: str
    version: str


@dataclass(frozen=True)
class TypeKey:
    """Names a registered type: ``module.QualifiedName`` (plus its distribution)."""

    name: str
    distribution: DistributionKey | None = None

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class TypeDescriptor:
    """A type key and the field names of a resource type."""

    type_key: TypeKey
    field_names: tuple[str, ...]


_distributions: dict[str, DistributionKey] = {}


def register_distribution(module_prefix: str, name: str, version: str) -> DistributionKey:
    """Declare that modules under ``module_prefix`` ship in distribution ``name``."""
    key = DistributionKey(name, version)
    _distributions[module_prefix] = key
    return key


def get_distribution_key(module: str) -> DistributionKey | None:
    """The declared distribution of ``module``, by longest matching prefix."""
    best: tuple[int, DistributionKey | None] = (-1, None)
    for prefix, key in _distributions.items():
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
            best = (len(prefix), key)
    return best[1]


def get_path_distribution_key(path: str) -> DistributionKey | None:
    """The installed distribution that contains the file at ``path``, if any."""
    target = os.path.realpath(path)
    name = os.path.basename(target)
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            # Compare names first: resolving every installed file takes seconds.
            if file.name == name and os.path.realpath(str(dist.locate_file(file))) == target:
                return DistributionKey(dist.metadata["Name"], dist.version)
    return None


# The plain view of a value is a view of its canonical encoding, which
# enact.serialization (above this module: it encodes resources) installs here.
_plain_view: Callable[[Any], Any] | None = None


def install_plain_view(view: Callable[[Any], Any]) -> None:
    """Set the function behind ``ResourceBase.to_resource_dict`` (enact.serialization's)."""
    global _plain_view
    _plain_view = view


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
        return TypeKey(cls.type_id(), get_distribution_key(cls.__module__))

    @classmethod
    def type_descriptor(cls) -> TypeDescriptor:
        return TypeDescriptor(cls.type_key(), tuple(cls.field_names()))

    @classmethod
    @abc.abstractmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the fields, in declaration order."""

    @abc.abstractmethod
    def field_values(self) -> tuple[Any, ...]:
        """Values of the fields, aligned with ``field_names()``."""

    @classmethod
    @abc.abstractmethod
    def from_fields(cls: type[R], fields: Mapping[str, Any]) -> R:
        """Build an instance from a mapping of field name to value."""

    def field_items(self) -> Iterator[tuple[str, Any]]:
        return zip(self.field_names(), self.field_values())

    def to_resource_dict(self) -> dict[str, Any]:
        """A plain-dict view: ``{"type": type id, "fields": {...}}``, recursively."""
        if _plain_view is None:
            raise RegistryError("enact.serialization is not loaded: import enact first")
        return _plain_view(self)  # type: ignore[no-any-return]

    @abc.abstractmethod
    def set_from(self, other: Any) -> None:
        """Make this object equal to ``other`` in place (used when replaying calls)."""


class Resource(ResourceBase):
    """Base class for ``@dataclass`` resources."""

    # Set by a subclass to have ``from_fields`` check stored field types first
    # (``check_fields``); enact's own records and wrappers do.
    _enact_field_types: ClassVar[Mapping[str, type | tuple[type, ...]] | None] = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        names = cls.__dict__.get("_enact_field_names")
        if names is None:
            if not dataclasses.is_dataclass(cls):
                raise RegistryError(
                    f"{cls.__qualname__} is not a dataclass; decorate it with "
                    "@dataclasses.dataclass below @enact.register"
                )
            names = tuple(f.name for f in dataclasses.fields(cls))
            type.__setattr__(cls, "_enact_field_names", names)
        return names

    def field_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.field_names())

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

    def set_from(self, other: Any) -> None:
        if type(other) is not type(self):
            raise TypeError(
                f"cannot set {type(self).__qualname__} from {type(other).__qualname__}"
            )
        for name, value in other.field_items():
            object.__setattr__(self, name, value)


class ImmutableResource(Resource):
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

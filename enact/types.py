"""Type keys and type descriptors: how enact names types and describes fields.

A ``TypeKey`` names a resource type: its ``module.QualName`` plus, when known,
the distribution (package name and version) that ships it. The distribution is
information only: stored data names a type by ``name`` alone, so a new release
of a package can read data written by an older one.

A ``TypeDescriptor`` describes the type of a field (``Int()``, ``List(Str())``,
``ResourceType(key)``...). Descriptors are plain frozen values with a JSON form
(``to_json``/``from_json``), the same shapes enact 0.4 used, so tools that kept
descriptors as JSON keep working.
"""

from __future__ import annotations

import dataclasses
import typing

JsonLeaf = typing.Union[int, float, str, bool, None]
Json = typing.Union[JsonLeaf, typing.List["Json"], typing.Dict[str, "Json"]]

PRIMITIVES = (int, float, str, bytes, bool, type(None))
Primitives = typing.Union[int, float, str, bytes, bool, None]


class DistributionKey(typing.NamedTuple):
    """A Python distribution (the name ``pip install`` takes) and its version."""

    name: str
    version: str

    def as_dict(self) -> dict[str, Json]:
        return {"name": self.name, "version": self.version}

    @staticmethod
    def from_dict(d: typing.Mapping[str, typing.Any]) -> DistributionKey:
        return DistributionKey(str(d["name"]), str(d["version"]))


class TypeKey(typing.NamedTuple):
    """Names a type: ``module.QualName`` and the distribution it ships in, if known."""

    name: str
    distribution_key: DistributionKey | None = None

    @property
    def distribution(self) -> DistributionKey | None:
        return self.distribution_key

    def type_id(self) -> str:
        """The name stored data uses for the type: ``name`` alone, never a version."""
        return self.name

    def as_dict(self) -> dict[str, Json]:
        dist = self.distribution_key
        return {"name": self.name, "distribution_key": None if dist is None else dist.as_dict()}

    @staticmethod
    def from_dict(d: typing.Mapping[str, typing.Any]) -> TypeKey:
        dist = d.get("distribution_key")
        return TypeKey(str(d["name"]), None if dist is None else DistributionKey.from_dict(dist))

    def __str__(self) -> str:
        return self.name


@dataclasses.dataclass(frozen=True)
class TypeDescriptor:
    """Describes the type of a field value. Subclasses are frozen dataclasses."""

    NAME: typing.ClassVar[str] = ""

    def to_json(self) -> Json:
        return self.NAME

    @staticmethod
    def from_json(value: Json) -> TypeDescriptor:
        """The descriptor for a JSON form; ``ValueError`` names a malformed one."""
        for cls in _SIMPLE:
            if value == cls.NAME:
                return cls()
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError(f"not a type descriptor: {value!r}")
        ((name, inner),) = value.items()
        if name == ResourceType.NAME and isinstance(inner, dict):
            return ResourceType(TypeKey.from_dict(inner))
        if name in (List.NAME, Dict.NAME):
            cls = List if name == List.NAME else Dict
            return cls(None if inner is None else TypeDescriptor.from_json(inner))
        if name == Union.NAME and isinstance(inner, list):
            return Union(tuple(TypeDescriptor.from_json(v) for v in inner))
        raise ValueError(f"not a type descriptor: {value!r}")

    def pformat(self) -> str:
        return self.NAME


@dataclasses.dataclass(frozen=True)
class Int(TypeDescriptor):
    NAME: typing.ClassVar[str] = "int"


@dataclasses.dataclass(frozen=True)
class Float(TypeDescriptor):
    NAME: typing.ClassVar[str] = "float"


@dataclasses.dataclass(frozen=True)
class Str(TypeDescriptor):
    NAME: typing.ClassVar[str] = "str"


@dataclasses.dataclass(frozen=True)
class Bool(TypeDescriptor):
    NAME: typing.ClassVar[str] = "bool"


@dataclasses.dataclass(frozen=True)
class Bytes(TypeDescriptor):
    NAME: typing.ClassVar[str] = "bytes"


@dataclasses.dataclass(frozen=True)
class NoneType(TypeDescriptor):
    NAME: typing.ClassVar[str] = "none"


@dataclasses.dataclass(frozen=True)
class _Container(TypeDescriptor):
    """A list or dict; ``value_type`` is ``None`` when the elements are untyped."""

    value_type: TypeDescriptor | None = None

    def to_json(self) -> Json:
        if self.value_type is None:
            return self.NAME
        return {self.NAME: self.value_type.to_json()}

    def pformat(self) -> str:
        if self.value_type is None:
            return self.NAME
        return f"{self.NAME}[{self.value_type.pformat()}]"


@dataclasses.dataclass(frozen=True)
class List(_Container):
    NAME: typing.ClassVar[str] = "list"


@dataclasses.dataclass(frozen=True)
class Dict(_Container):
    """A dict with ``str`` keys; ``value_type`` describes the values."""

    NAME: typing.ClassVar[str] = "dict"


@dataclasses.dataclass(frozen=True)
class Union(TypeDescriptor):
    """One of several types (``Optional[int]`` is ``Union((Int(), NoneType()))``)."""

    NAME: typing.ClassVar[str] = "optional"
    value_types: tuple[TypeDescriptor, ...]

    def to_json(self) -> Json:
        return {self.NAME: [t.to_json() for t in self.value_types]}

    def pformat(self) -> str:
        return f"{self.NAME}[{', '.join(t.pformat() for t in self.value_types)}]"


@dataclasses.dataclass(frozen=True)
class ResourceType(TypeDescriptor):
    """A resource (or a wrapped type, described by its wrapper's key)."""

    NAME: typing.ClassVar[str] = "resource"
    type_key: TypeKey

    def to_json(self) -> Json:
        return {self.NAME: self.type_key.as_dict()}

    def pformat(self) -> str:
        dist = self.type_key.distribution_key
        return self.type_key.name if dist is None else f"{self.type_key.name} ({dist.name})"


_SIMPLE: tuple[type[TypeDescriptor], ...] = (Int, Float, Str, Bool, Bytes, NoneType, List, Dict)

"""Canonical encoding of values into packed objects, and back.

A packed object is the msgpack array ``[FORMAT, links, body]``:

* ``FORMAT`` is the integer format version (1).
* ``links`` is the sorted list of raw 32-byte digests the body refers to, so a
  store can walk the object graph without decoding values.
* ``body`` is the value, encoded canonically: msgpack keeps ``None``, ``bool``,
  ``int``, ``float`` (always 64-bit), ``str`` and ``bytes`` apart, so ``True``,
  ``1`` and ``1.0`` encode (and digest) differently. Dict keys are sorted. A
  resource is the pair ``[Ext(1, type id), {field: value, ...}]`` with fields in
  sorted order; a ``Ref`` is ``Ext(2, digest)``; an integer beyond 64 bits is
  ``Ext(3, decimal)``; a resource class is ``Ext(4, type id)``. Other types go
  through their registered ``TypeWrapper``.

The same value always yields the same bytes, and the digest of an object is the
SHA-256 of those bytes. Decoding builds values only from registered types: it
never imports modules and never runs code named by the data.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any, Callable, Protocol

import msgpack

from enact import digests
from enact.digests import is_digest
from enact.errors import (
    CycleError,
    DeserializationError,
    EnactError,
    FieldTypeError,
    SerializationError,
    UnregisteredResource,
)
from enact.refs import Ref
from enact.registry import Registry
from enact.resources import ResourceBase, ResourceDict, TypeWrapperBase

FORMAT = 1

EXT_RESOURCE = 1
EXT_REF = 2
EXT_BIGINT = 3
EXT_CLASS = 4

# The JSON decoder refuses values nested deeper than this; msgpack's decoder
# stops at 1024 levels on its own. The encoder stops at Python's recursion
# limit, below either (about 490 levels of lists by default).
MAX_DEPTH = 512

_MIN_INT = -(1 << 63)
_MAX_INT = (1 << 64) - 1

_ExtType = msgpack.ExtType
_packer_pack = msgpack.Packer(use_bin_type=True, autoreset=True, datetime=False).pack


def _packb(obj: Any) -> bytes:
    try:
        return _packer_pack(obj)
    except UnicodeEncodeError as exc:
        # Strings are stored as UTF-8; a lone surrogate has no UTF-8 form.
        raise SerializationError(
            f"cannot store the str {exc.object[max(0, exc.start - 10) : exc.end + 10]!r}: "
            f"it is not valid Unicode text ({exc.reason}); store it as bytes instead"
        ) from None


class _Unsupported(Exception):
    """Internal: carries the path to an unstorable value up to the top level."""

    def __init__(self, value_type: type, reason: str = "") -> None:
        self.value_type = value_type
        self.reason = reason
        self.path: list[str] = []


def _sorted_field_names(cls: type[ResourceBase]) -> tuple[str, ...]:
    names = cls.__dict__.get("_enact_sorted_fields")
    if names is None:
        names = tuple(sorted(cls.field_names()))
        type.__setattr__(cls, "_enact_sorted_fields", names)
    return names


# The marker of field-value wrappers (``IntWrapper``...), which encode as the value
# they hold, so that ``wrap(x)`` and ``x`` have one digest.
_AS_VALUE = _ExtType(EXT_RESOURCE, b"")


def _marker(cls: type[ResourceBase]) -> msgpack.ExtType:
    marker = cls.__dict__.get("_enact_marker")
    if marker is None:
        registry = Registry.get()
        if not registry.is_registered(cls):
            raise _Unsupported(
                cls, "its class is not registered (decorate it with @enact.register)"
            )
        if getattr(cls, "encodes_as_value", False):
            marker = _AS_VALUE
        else:
            marker = _ExtType(EXT_RESOURCE, cls.type_id().encode())
        type.__setattr__(cls, "_enact_marker", marker)
    return marker


class Encoder:
    """Encodes one value; collects the digests it links to.

    With ``collect_classes``, also the resource classes it encoded (``classes``).
    """

    __slots__ = ("links", "classes", "_active", "_registry")

    def __init__(self, collect_classes: bool = False) -> None:
        self.links: set[str] = set()
        self.classes: set[type[ResourceBase]] | None = set() if collect_classes else None
        self._active: set[int] = set()
        self._registry = Registry.get()

    def encode(self, v: Any) -> Any:
        t = type(v)
        if t is str or t is float or t is bool or t is bytes or v is None:
            return v
        if t is int:
            return v if _MIN_INT <= v <= _MAX_INT else _ExtType(EXT_BIGINT, str(v).encode())
        if t is Ref:
            digest = v.digest
            if not is_digest(digest):
                raise _Unsupported(Ref, f"its digest {digest!r} is not 64 lowercase hex digits")
            self.links.add(digest)
            return _ExtType(EXT_REF, bytes.fromhex(digest))
        if t is list:
            return self._encode_list(v)
        if t is dict:
            return self._encode_dict(v)
        if isinstance(v, ResourceBase):
            return self._encode_resource(v)
        if isinstance(v, type) and issubclass(v, ResourceBase):
            if issubclass(v, TypeWrapperBase) and not getattr(v, "__abstractmethods__", None):
                # As in 0.4, a wrapper class as a value stands for the type it wraps
                # (so a resource and its resource dict encode alike).
                return self.encode(v.wrapped_type())
            _marker(v)  # refuses unregistered classes
            return _ExtType(EXT_CLASS, v.type_id().encode())
        if isinstance(v, ResourceDict):
            return self._encode_resource_dict(v)
        wrapper = self._registry.wrapper_for(t)
        if wrapper is None:
            raise _Unsupported(t)
        # Track the wrapped object itself: its wrapper is new on every visit, so an
        # object reachable from its own wrapper would otherwise recurse without end.
        key = self._enter(v)
        body = self._encode_resource(wrapper.wrap(v))
        self._active.discard(key)
        return body

    def _enter(self, v: Any) -> int:
        key = id(v)
        if key in self._active:
            raise CycleError(
                f"cannot store a {type(v).__qualname__} that contains itself; "
                "content-addressed values must form a DAG (use a Ref to share structure)"
            )
        self._active.add(key)
        return key

    def _encode_list(self, v: list) -> list:
        key = self._enter(v)
        encode = self.encode
        out: list = []
        try:
            for item in v:
                out.append(encode(item))
        except _Unsupported as exc:
            exc.path.append(f"[{len(out)}]")  # the index of the item that failed
            raise
        self._active.discard(key)
        return out

    def _encode_dict(self, v: dict) -> dict:
        key = self._enter(v)
        encode = self.encode
        out = {}
        try:
            keys = sorted(v)
        except TypeError:
            keys = list(v)
        name = ""
        try:
            for name in keys:
                if type(name) is not str:
                    raise _Unsupported(type(name), "dict keys must be str")
                out[name] = encode(v[name])
        except _Unsupported as exc:
            exc.path.append(f"[{name!r}]")
            raise
        self._active.discard(key)
        return out

    def _encode_resource(self, v: ResourceBase) -> Any:
        cls = type(v)
        marker = _marker(cls)
        if self.classes is not None:
            self.classes.add(cls)
        if marker is _AS_VALUE:
            return self.encode(v.value)  # type: ignore[attr-defined]
        key = self._enter(v)
        encode = self.encode
        fields = {}
        name = ""
        try:
            for name in _sorted_field_names(cls):
                fields[name] = encode(getattr(v, name))
        except _Unsupported as exc:
            exc.path.append(f".{name}")
            raise
        except AttributeError as exc:
            raise FieldTypeError(f"{cls.__qualname__} has no value for field {name!r}") from exc
        self._active.discard(key)
        return [marker, fields]

    def _encode_resource_dict(self, v: ResourceDict) -> Any:
        """A resource dict encodes exactly like the resource it stands for."""
        name = v.type_info.name
        try:
            cls = self._registry.lookup(name)
        except UnregisteredResource:
            raise _Unsupported(ResourceDict, f"its type {name} is not registered") from None
        marker = _marker(cls)
        if self.classes is not None:
            self.classes.add(cls)
        if marker is _AS_VALUE:
            return self.encode(v.get("value"))
        if set(v) != set(cls.field_names()):
            raise _Unsupported(
                ResourceDict,
                f"its fields {sorted(v)} are not those of {name}: {sorted(cls.field_names())}",
            )
        key = self._enter(v)
        fields = {}
        name = ""
        try:
            for name in sorted(v):
                fields[name] = self.encode(v[name])
        except _Unsupported as exc:
            exc.path.append(f"[{name!r}]")
            raise
        self._active.discard(key)
        return [marker, fields]


def _raise_field_error(exc: _Unsupported, value: Any) -> None:
    path = "".join(reversed(exc.path))
    if path.startswith("."):
        path = type(value).__qualname__ + path
    where = f" in field {path}" if path else ""
    reason = exc.reason or (
        "Please register a TypeWrapper for it, make it a Resource, or convert it to a "
        "supported type (None, bool, int, float, str, bytes, list, dict with str "
        "keys, tuple, set, resources)"
    )
    raise FieldTypeError(
        f"cannot store a value of type {exc.value_type.__qualname__}{where}: {reason}"
    ) from None


def encode_value(value: Any, encoder: Encoder | None = None) -> tuple[Any, set[str]]:
    """The canonical msgpack-ready structure of ``value`` and the digests it links to."""
    encoder = encoder or Encoder()
    try:
        body = encoder.encode(value)
    except _Unsupported as exc:
        _raise_field_error(exc, value)
    except RecursionError:
        raise SerializationError(
            f"value of type {type(value).__qualname__} is nested too deeply to encode"
        ) from None
    return body, encoder.links


def pack_value(value: Any, encoder: Encoder | None = None) -> tuple[bytes, set[str]]:
    """Pack ``value`` into object bytes; also return the digests it links to."""
    body, links = encode_value(value, encoder)
    link_list = sorted(bytes.fromhex(d) for d in links) if links else []
    return _packb([FORMAT, link_list, body]), links


def pack_encoded(body: Any, links: set[str] | list[str]) -> bytes:
    """Pack an already-encoded body (fast path for records built by enact itself)."""
    link_list = sorted(bytes.fromhex(d) for d in links) if links else []
    return _packb([FORMAT, link_list, body])


def canonical_bytes(value: Any) -> bytes:
    """The canonical encoding of ``value`` alone (used to order set elements)."""
    return _packb(encode_value(value)[0])


# Decoding ------------------------------------------------------------------


class _Marker:
    __slots__ = ("type_id",)

    def __init__(self, type_id: str) -> None:
        self.type_id = type_id


# Markers of registered types only, so the cache is bounded by the code, not by
# the data: stored data naming a million distinct type ids adds nothing here.
_markers: dict[bytes, _Marker] = {}


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_REF:
        if len(data) != 32:
            raise DeserializationError(f"a ref must hold a 32-byte digest, got {len(data)} bytes")
        return Ref(data.hex())
    if code == EXT_RESOURCE:
        marker = _markers.get(data)
        if marker is None:
            cls = Registry.get().lookup(data.decode())  # UnregisteredResource if unknown
            marker = _markers[data] = _Marker(cls.type_id())
        return marker
    if code == EXT_BIGINT:
        return int(data.decode("ascii"))
    if code == EXT_CLASS:
        return Registry.get().lookup(data.decode())
    raise DeserializationError(f"unknown msgpack extension code {code}")


def _build_resource(marker: _Marker, fields: Any) -> Any:
    registry = Registry.get()
    cls = registry.lookup(marker.type_id)
    if type(fields) is not dict:
        raise DeserializationError(
            f"stored {marker.type_id} holds a {type(fields).__qualname__} where its fields "
            "should be (a map of field names)"
        )
    obj = cls.from_fields(fields)
    if isinstance(obj, TypeWrapperBase):
        return obj.unwrap()
    return obj


def _list_hook(items: list) -> Any:
    if items and type(items[0]) is _Marker:
        if len(items) != 2:
            raise DeserializationError(
                f"stored {items[0].type_id} is a list of {len(items)} items, not [type, fields]"
            )
        return _build_resource(items[0], items[1])
    return items


def remembering_ext_hook(owner: Any) -> Callable[[int, bytes], Any]:
    """An ``ext_hook`` for ``unpack_value`` that makes each decoded ``Ref`` remember
    ``owner`` (the store that read it), so it works outside ``with store:``."""

    def hook(code: int, data: bytes) -> Any:
        obj = _ext_hook(code, data)
        if code == EXT_REF:
            obj._store = owner
        return obj

    return hook


def unpack_value(data: bytes, ext_hook: Callable[[int, bytes], Any] = _ext_hook) -> Any:
    """Decode packed object bytes into a value.

    Raises only enact errors, whatever the bytes: ``UnregisteredResource`` for
    a type, function or module that is not registered, ``DeserializationError``
    for anything malformed (msgpack bounds nesting and lengths by the input).
    """
    try:
        obj = msgpack.unpackb(
            data, ext_hook=ext_hook, list_hook=_list_hook, raw=False, strict_map_key=True
        )
    except EnactError:
        raise
    except Exception as exc:
        raise DeserializationError(
            f"cannot decode object of {_size(data)}: {type(exc).__name__}: {exc}"
        ) from exc
    if type(obj) is not list or len(obj) != 3 or obj[0] != FORMAT or type(obj[0]) is not int:
        raise DeserializationError(
            f"not an enact object (expected [{FORMAT}, links, body], got {type(obj).__name__})"
        )
    return obj[2]


def _size(data: object) -> str:
    return f"{len(data)} bytes" if isinstance(data, (bytes, bytearray, memoryview)) else (
        f"type {type(data).__qualname__}"
    )


def packed_links(data: bytes) -> list[str]:
    """The digests an object links to, read without decoding its body."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1))
    try:
        unpacker.feed(data)
        if unpacker.read_array_header() != 3 or unpacker.unpack() != FORMAT:
            raise DeserializationError("not an enact object")
        links = unpacker.unpack()
    except DeserializationError:
        raise
    except Exception as exc:
        raise DeserializationError(f"cannot read links of object: {exc}") from exc
    if type(links) is not list or any(type(d) is not bytes or len(d) != 32 for d in links):
        raise DeserializationError("the links of an object must be a list of 32-byte digests")
    return [d.hex() for d in links]


# Plain views and pluggable serializers ------------------------------------


class Serializer(Protocol):
    """Turns values (resources and everything storable) into bytes and back."""

    def serialize(self, value: Any) -> bytes: ...

    def deserialize(self, data: bytes) -> Any: ...


class MsgpackSerializer:
    """The canonical binary encoding used by stores."""

    def serialize(self, value: Any) -> bytes:
        return pack_value(value)[0]

    def deserialize(self, data: bytes) -> Any:
        return unpack_value(data)


class JsonSerializer:
    """A human-readable JSON encoding with the same type distinctions.

    ``serialize`` takes any storable value, ``ResourceDict``s included;
    ``deserialize`` returns values (resources for resources). The optional
    ``registry`` argument of enact 0.4 is accepted; types always resolve through
    the process-wide registry.

    Tagged objects keep what JSON would blur: ``{"$b": base64}`` for bytes,
    ``{"$f": repr}`` for floats (``{"$fx": hex of the 8 bytes}`` for NaNs, whose
    bits repr drops), ``{"$r": digest}`` for refs, ``{"$t": type id, "$v":
    fields}`` for resources, ``{"$c": type id}`` for resource classes, ``{"$i":
    decimal}`` for big integers and ``{"$d": {...}}`` for dicts.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry

    def serialize(self, value: Any) -> bytes:
        body, _ = encode_value(value)
        return json.dumps(self._to_json(body), sort_keys=True, separators=(",", ":")).encode()

    def _to_json(self, v: Any) -> Any:
        t = type(v)
        if t is bytes:
            return {"$b": base64.b64encode(v).decode()}
        if t is float:
            if v != v:  # NaN: keep its exact bits, which repr() does not
                return {"$fx": struct.pack(">d", v).hex()}
            return {"$f": repr(v)}
        if t is dict:
            return {"$d": {k: self._to_json(x) for k, x in v.items()}}
        if t is list:
            if len(v) == 2 and type(v[0]) is _ExtType and v[0].code == EXT_RESOURCE:
                return {"$t": v[0].data.decode(), "$v": self._to_json(v[1])["$d"]}
            return [self._to_json(x) for x in v]
        if t is _ExtType:
            tag = {EXT_REF: "$r", EXT_BIGINT: "$i", EXT_CLASS: "$c"}[v.code]
            return {tag: v.data.hex() if v.code == EXT_REF else v.data.decode()}
        return v

    def deserialize(self, data: bytes) -> Any:
        """Decode JSON made by ``serialize``; only enact errors escape, whatever ``data`` is."""
        try:
            tree = json.loads(data)
        except RecursionError:
            raise DeserializationError(
                f"JSON nested more deeply than this process can decode (limit {MAX_DEPTH})"
            ) from None
        except (ValueError, TypeError) as exc:  # TypeError: data is not text or bytes
            raise DeserializationError(f"invalid JSON: {exc}") from exc
        try:
            return self._from_json(tree, 0)
        except EnactError:
            raise
        except RecursionError:
            raise DeserializationError(f"JSON nested more than {MAX_DEPTH} levels") from None
        except Exception as exc:
            raise DeserializationError(
                f"malformed enact JSON: {type(exc).__name__}: {str(exc)[:200]}"
            ) from exc

    def _from_json(self, v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise DeserializationError(f"JSON nested more than {MAX_DEPTH} levels")
        depth += 1
        if type(v) is list:
            return [self._from_json(x, depth) for x in v]
        if type(v) is not dict:
            return v
        if "$d" in v:
            return {k: self._from_json(x, depth) for k, x in v["$d"].items()}
        if "$t" in v:
            fields = {k: self._from_json(x, depth) for k, x in v["$v"].items()}
            return _build_resource(_Marker(v["$t"]), fields)
        if "$b" in v:
            return base64.b64decode(v["$b"], validate=True)
        if "$f" in v:
            return float(v["$f"])
        if "$fx" in v:
            return struct.unpack(">d", bytes.fromhex(v["$fx"]))[0]
        if "$r" in v:
            if not is_digest(v["$r"]):
                raise DeserializationError(f"a ref must hold a digest, got {str(v['$r'])[:80]!r}")
            return Ref(v["$r"])
        if "$i" in v:
            return int(v["$i"])
        if "$c" in v:
            return Registry.get().lookup(v["$c"])
        raise DeserializationError(f"unknown JSON tag in {sorted(v)[:8]}")


digests.install_value_packer(lambda value: pack_value(value)[0])

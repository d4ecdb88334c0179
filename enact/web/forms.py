"""Answers typed by what a request asks for: the form field to show, and the value a
form or a JSON body stands for.

The request's ``requested_type`` decides the field:

=====================================  =========================================
``bool``                               a checkbox (unchecked is ``False``)
``int``, ``float``                     a number input (``int`` in whole steps)
``str``                                a text input
an ``Enum`` class, ``Literal[...]``    a select of its members (values)
anything else (lists, dicts,           a JSON text area, parsed and then shaped:
resources, unions, ``Any``)            a resource from an object of its fields
=====================================  =========================================

Parsing never decides whether an answer is right: it turns text into the value the
person meant (``"3"`` in a number field is ``3``, ``"2.5"`` is ``2.5``), and the
flow's own check (``AnswerTypeError``) judges it, so the browser, the HTTP API and the
CLI accept and refuse exactly the same answers. What cannot be parsed at all raises
``AnswerParseError`` (a ``ValueError``) with a message for the person.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from dataclasses import dataclass
from typing import Any

from enact.resources import ResourceBase
from enact.typecheck import type_name


class AnswerParseError(ValueError):
    """The text of an answer could not be read as a value; the message says why."""


@dataclass(frozen=True)
class Field:
    """How to ask for a value: the input's ``kind`` and, for a select, its options.

    ``kind`` is ``checkbox``, ``int``, ``float``, ``text``, ``select`` or ``json``;
    ``options`` pairs each option's form value with its label.
    """

    kind: str
    type_label: str
    options: tuple[tuple[str, str], ...] = ()


def field_for(requested_type: Any) -> Field:
    """The form field for ``requested_type`` (see the module docstring)."""
    label = type_name(requested_type)
    if requested_type is bool:
        return Field("checkbox", label)
    if requested_type is int:
        return Field("int", label)
    if requested_type is float:
        return Field("float", label)
    if requested_type is str:
        return Field("text", label)
    if isinstance(requested_type, type) and issubclass(requested_type, enum.Enum):
        return Field("select", label, tuple((m.name, m.name) for m in requested_type))
    if typing.get_origin(requested_type) is typing.Literal:
        values = typing.get_args(requested_type)
        return Field("select", label, tuple((json.dumps(v), repr(v)) for v in values))
    return Field("json", label)


def parse_form(requested_type: Any, raw: str | None) -> Any:
    """The value a submitted form field stands for (``raw`` is ``None`` when absent)."""
    field = field_for(requested_type)
    text = "" if raw is None else raw
    if field.kind == "checkbox":
        return raw is not None and text.lower() not in ("", "false", "off", "0")
    if field.kind in ("int", "float"):
        text = text.strip()
        if not text:
            raise AnswerParseError("enter a number")
        try:
            number = float(text) if field.kind == "float" else json.loads(text)
        except ValueError:
            raise AnswerParseError(f"{text!r} is not a number") from None
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise AnswerParseError(f"{text!r} is not a number")
        return number
    if field.kind == "text":
        return text
    if field.kind == "select":
        if isinstance(requested_type, type) and issubclass(requested_type, enum.Enum):
            member = requested_type.__members__.get(text)
            if member is None:
                names = ", ".join(requested_type.__members__)
                raise AnswerParseError(f"{text!r} is not one of {names}")
            return member
        try:
            return json.loads(text)
        except ValueError:
            raise AnswerParseError(f"{text!r} is not one of the options") from None
    if not text.strip():
        raise AnswerParseError("enter a JSON value")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise AnswerParseError(f"not valid JSON: {exc}") from None
    return from_json(requested_type, value)


def from_json(requested_type: Any, value: Any) -> Any:
    """Shape a decoded JSON value as ``requested_type`` asks, where JSON cannot say it.

    An enum member from its name (or its value), a resource from an object of its
    fields, a tuple or set from a list. Anything else is returned unchanged, for the
    flow's check to judge.
    """
    if isinstance(requested_type, type):
        if issubclass(requested_type, enum.Enum):
            if isinstance(value, str) and value in requested_type.__members__:
                return requested_type.__members__[value]
            try:
                return requested_type(value)
            except ValueError:
                return value
        if issubclass(requested_type, ResourceBase) and isinstance(value, dict):
            return _resource(requested_type, value)
        if requested_type in (tuple, set, frozenset) and isinstance(value, list):
            return requested_type(value)
    return value


def _resource(cls: type[ResourceBase], fields: dict[str, Any]) -> Any:
    names = set(cls.field_names())
    unknown = sorted(set(fields) - names)
    if unknown:
        raise AnswerParseError(
            f"{cls.__qualname__} has no field {', '.join(map(repr, unknown))}; "
            f"its fields are {', '.join(sorted(names))}"
        )
    hints = _field_types(cls)
    values = {name: from_json(hints.get(name), v) for name, v in fields.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise AnswerParseError(f"cannot make a {cls.__qualname__} from that: {exc}") from None


def _field_types(cls: type) -> dict[str, Any]:
    if not dataclasses.is_dataclass(cls):
        return {}
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve here: shape nothing further
        return {}


def to_json(value: Any) -> Any:
    """A JSON-ready form of an answer or output, for the API (``repr`` where JSON has none)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, ResourceBase) and dataclasses.is_dataclass(value):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return repr(value)

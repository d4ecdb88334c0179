"""Whether a value matches a type annotation: typed invokables and input answers.

Classes and the common ``typing`` forms (unions, ``Optional``, ``Literal``,
parameterized ``list``/``set``/``tuple``/``dict``) are checked; an annotation that
cannot be checked at run time (a ``TypeVar``, a string) accepts anything.
"""

from __future__ import annotations

import types
import typing
from typing import Any


def type_name(t: Any) -> str:
    """A readable name for an annotation: ``int``, ``list[str]``, ``int | str``."""
    return t.__qualname__ if isinstance(t, type) else repr(t)


def matches_type(value: Any, expected: Any) -> bool:
    """Whether ``value`` is a valid ``expected`` (classes and common typing forms).

    ``bool`` is not accepted where ``int`` is asked for; ``int`` is accepted for
    ``float``.
    """
    if expected is Any or expected is object:
        return True
    if expected is None or expected is type(None):
        return value is None
    origin = typing.get_origin(expected)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return any(matches_type(value, arg) for arg in typing.get_args(expected))
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(expected))
    if origin is not None:
        if not isinstance(value, origin):
            return False
        args = typing.get_args(expected)
        if origin in (list, set, frozenset) and args:
            return all(matches_type(v, args[0]) for v in value)
        if origin is tuple and args:
            if len(args) == 2 and args[1] is Ellipsis:
                return all(matches_type(v, args[0]) for v in value)
            return len(args) == len(value) and all(map(matches_type, value, args))
        if origin is dict and len(args) == 2:
            return all(
                matches_type(k, args[0]) and matches_type(v, args[1]) for k, v in value.items()
            )
        return True
    if not isinstance(expected, type):
        return True  # an annotation we cannot check (a TypeVar, a string)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int or expected is complex:
        return isinstance(value, expected) and not isinstance(value, bool)
    return isinstance(value, expected)

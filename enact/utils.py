"""Small helpers from enact 0.4: a digest-keyed cached property and resource walks."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from enact.errors import CycleError
from enact.field_values import wrap
from enact.resources import ResourceBase, ResourceDict
from enact.store import resource_digest
from enact.types import PRIMITIVES


class cached_property(property):  # noqa: N801  (0.4's name)
    """A property of a resource computed once per value of the resource.

    The result is kept with the resource's digest and computed again when the
    digest changes (a one-entry cache, per property), so it never goes stale
    however the resource is edited.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__(fn)
        self._fn = fn
        self._cache: tuple[str, Any] | None = None

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        digest = resource_digest(instance)
        cached = self._cache
        if cached is not None and cached[0] == digest:
            return cached[1]
        value = self._fn(instance)
        self._cache = (digest, value)
        return value


def walk_resource(value: Any, include_self: bool = True) -> Iterator[ResourceBase]:
    """Every resource in ``value``, depth first; other values are walked as their wrappers.

    ``CycleError`` if a value contains itself.
    """
    yield from _walk(value, include_self, set())


def _walk(value: Any, include_self: bool, active: set[int]) -> Iterator[ResourceBase]:
    if isinstance(value, PRIMITIVES) or isinstance(value, type):
        return
    key = id(value)
    if key in active:
        raise CycleError(f"a {type(value).__qualname__} contains itself")
    active.add(key)
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item, True, active)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, True, active)
    else:
        resource = wrap(value)
        if include_self:
            yield resource
        for item in resource.field_values():
            yield from _walk(item, True, active)
    active.discard(key)


def walk_resource_dict(value: Any, include_self: bool = True) -> Iterator[ResourceDict]:
    """Every ``ResourceDict`` in ``value`` (a resource dict tree), depth first."""
    if isinstance(value, ResourceDict) and include_self:
        yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk_resource_dict(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_resource_dict(item)

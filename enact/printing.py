"""Human-readable views of invocations and resources.

``invocation_summary`` prints one line per call, children indented by two
spaces: ``->roll_sum(2) = 7``, ``->roll_sum(2) incomplete``,
``->f(1) raised ValueError: bad``. Functions print by name, bound methods as
``<repr of self>.name``, invokables by their repr followed by ``(input)``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO, Any, Mapping

import msgpack

from enact import tree
from enact.errors import StoreError, UnregisteredResource
from enact.records import BoundMethod, Invocation, NativeException
from enact.refs import Ref
from enact.resources import ResourceBase
from enact.serialization import unpack_value
from enact.store import Store, active_store, current_store


def _printed(value: Any, text: Any = repr) -> str:
    """``repr(value)`` (or ``text(value)``), or a stand-in if that fails.

    Stored values may nest deeper than ``repr`` can recurse, or hold fields a
    class's ``__repr__`` does not expect; a summary still prints the rest.
    """
    try:
        return str(text(value))
    except RecursionError:
        return f"<{type(value).__qualname__} nested too deeply to print>"
    except Exception as exc:
        return f"<unprintable {type(value).__qualname__}: {type(exc).__name__}>"


def _call_text(invokable: Any, call_input: Any, show_input: bool) -> str:
    if isinstance(invokable, BoundMethod):
        name = getattr(invokable.function, "__name__", None) or _printed(invokable.function, str)
        head = f"{_printed(invokable.instance)}.{name}"
    elif isinstance(invokable, ResourceBase):
        head = _printed(invokable)
    else:
        head = getattr(invokable, "__name__", None) or _printed(invokable)
    return f"{head}({_printed(call_input, str) if show_input else '...'})"


def describe_call(
    invokable_digest: str,
    input_digest: str,
    store: Store | None = None,
    objects: Mapping[str, bytes] | None = None,
) -> str:
    """``name(args)`` for a recorded request, for messages and summaries.

    ``objects`` holds records not yet written to the store (a running call's).
    """
    store = store or active_store()

    def load(digest: str) -> Any:
        if objects is not None and digest in objects:
            return unpack_value(objects[digest])
        if store is None:
            raise StoreError("no store is active")
        return _load(store, digest)

    try:
        invokable = load(invokable_digest)
        call_input = load(input_digest)
    except Exception as exc:  # an unloadable record must not hide the real error
        return f"<call {invokable_digest[:12]}: {type(exc).__name__}>"
    return _call_text(invokable, call_input, True)


class _Unloadable:
    """Stands in, when printing, for a stored value whose type is not loadable here."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.__name__ = text

    def __repr__(self) -> str:
        return self.text


def _load(store: Store, digest: str) -> Any:
    """A value to print: the stored value, or a stand-in named after what was stored.

    An invocation of an unregistered (for example local) function can be recorded
    but its function cannot be loaded again; its summary still names it.
    """
    try:
        return store.checkout(digest)
    except UnregisteredResource:
        pass
    try:
        body = msgpack.unpackb(store.get_object(digest), raw=False, strict_map_key=False)[2]
        qualname = body[1].get("qualname")
        if isinstance(qualname, str):
            return _Unloadable(qualname.rsplit(".", 1)[-1][:100])
        return _Unloadable(f"<unregistered {body[0].data.decode()[:100]}>")
    except Exception:  # crafted or damaged beyond the unknown name: print that much
        return _Unloadable("<unregistered>")


def _raised_text(raised: Any) -> str:
    if isinstance(raised, NativeException):
        return f"{raised.type_name.rsplit('.', 1)[-1]}: {raised.str_representation}"
    return f"{type(raised).__name__}: {_printed(raised, str)}"


def invocation_summary(
    invocation: Invocation, indent: int = 0, show_input: bool = True, show_output: bool = True
) -> str:
    """One line per call, children indented by two spaces."""
    store = current_store()
    lines: list[str] = []
    for path, node in tree.walk(store, invocation.digest):
        level = indent + 2 * len(path)
        text = " " * level + "->" + _call_text(
            _load(store, node.invokable_digest), _load(store, node.input_digest), show_input
        )
        if node.output_digest is not None:
            if show_output:
                text += f" = {_printed(store.checkout(node.output_digest))}"
        elif node.raised_digest is not None:
            text += f" raised {_raised_text(store.checkout(node.raised_digest))}"
        else:
            text += " incomplete"
        lines.append(text)
    return "\n".join(lines)


@dataclass
class PPValue:
    """A value paired with how deep it sits, for ``PPrinter``."""

    value: Any
    depth: int = 0


class PPrinter:
    """Multi-line rendering of resources; follows refs when a store is active."""

    def __init__(self, indent: int = 2, max_depth: int = 8, follow_refs: bool = True) -> None:
        self.indent = indent
        self.max_depth = max_depth
        self.follow_refs = follow_refs

    def pformat(self, value: Any) -> str:
        return "\n".join(self._lines(PPValue(value), ""))

    def _lines(self, item: PPValue, prefix: str) -> list[str]:
        value, depth = item.value, item.depth
        pad = " " * (self.indent * depth)
        if depth >= self.max_depth:
            return [f"{pad}{prefix}..."]
        if isinstance(value, Ref):
            store = active_store()
            if self.follow_refs and store is not None and store.has(value):
                inner = self._lines(PPValue(store.checkout(value), depth + 1), "")
                return [f"{pad}{prefix}-> {value!r}:"] + inner
            return [f"{pad}{prefix}{value!r}"]
        if isinstance(value, ResourceBase) and not isinstance(value, BaseException):
            lines = [f"{pad}{prefix}{type(value).__qualname__}:"]
            for name, field in value.field_items():
                lines.extend(self._lines(PPValue(field, depth + 1), f"{name}: "))
            return lines
        if isinstance(value, (list, tuple)) and value and any(
            isinstance(v, (ResourceBase, Ref, list, dict)) for v in value
        ):
            lines = [f"{pad}{prefix}{type(value).__name__}[{len(value)}]:"]
            for index, element in enumerate(value):
                lines.extend(self._lines(PPValue(element, depth + 1), f"[{index}] "))
            return lines
        if isinstance(value, dict) and value and any(
            isinstance(v, (ResourceBase, Ref, list, dict)) for v in value.values()
        ):
            lines = [f"{pad}{prefix}dict[{len(value)}]:"]
            for key, element in value.items():
                lines.extend(self._lines(PPValue(element, depth + 1), f"{key!r}: "))
            return lines
        return [f"{pad}{prefix}{value!r}"]


def pformat(value: Any, indent: int = 2, max_depth: int = 8) -> str:
    """A readable multi-line string for a resource, following refs."""
    return PPrinter(indent, max_depth).pformat(value)


def pprint(value: Any, stream: IO[str] | None = None, indent: int = 2, max_depth: int = 8) -> None:
    print(pformat(value, indent, max_depth), file=stream or sys.stdout)

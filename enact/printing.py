"""Human-readable views of invocations and resources.

``invocation_summary`` prints one line per call, children indented by two
spaces: ``->roll_sum(2) = 7``, ``->roll_sum(2) incomplete``,
``->f(1) raised ValueError: bad``. Functions print by name, bound methods as
``<repr of self>.name``, invokables by their repr followed by ``(input)``;
arguments and outputs print with ``str``, as in enact 0.4, and exceptions as
``Type: message``.

``pformat`` renders a value over several lines, as enact 0.4 did: primitives as
``repr`` for strings and ``str`` otherwise, ``<5 bytes>`` for bytes, lists and
dicts one item per indented line, a resource as ``Name(a=1, b='x')`` when all
its fields are primitive and as ``Name:`` with one indented line per field
otherwise, a ref as ``-> `` and what it points to, tagged ``#`` and the first
six digits of its digest, and any other value as its wrapper.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Mapping

import msgpack

from enact import tree
from enact.context import active_store, store_for
from enact.errors import StoreError, UnregisteredResource
from enact.field_values import to_field_value
from enact.records import BoundMethod, Invocation, NativeException
from enact.refs import Ref
from enact.resources import ResourceBase
from enact.serialization import unpack_value
from enact.store import Store
from enact.types import PRIMITIVES
from enact.wrappers import FrozenSetWrapper, SetWrapper, TupleWrapper


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
    """``Type: message`` for every exception, native (recorded as ``NativeException``) or not."""
    if isinstance(raised, NativeException):
        return f"{raised.type_name.rsplit('.', 1)[-1]}: {raised.str_representation}"
    return f"{type(raised).__name__}: {_printed(raised, str)}"


def invocation_summary(
    invocation: Invocation, indent: int = 0, show_input: bool = True, show_output: bool = True
) -> str:
    """One line per call; ``indent`` levels of two spaces, one more for each child level.

    Reads from the active store, else from the one the invocation came from.
    """
    store = store_for(invocation)
    lines: list[str] = []
    for path, node in tree.walk(store, invocation.digest):
        level = indent + len(path)
        text = "  " * level + "->" + _call_text(
            _load(store, node.invokable_digest), _load(store, node.input_digest), show_input
        )
        if node.output_digest is not None:
            # Without the output, a line keeps 0.4's separating space: "->f(1) ".
            text += (
                f" = {_printed(store.checkout(node.output_digest), str)}" if show_output else " "
            )
        elif node.raised_digest is not None:
            text += f" raised {_raised_text(store.checkout(node.raised_digest))}"
        else:
            text += " incomplete"
        lines.append(text)
    return "\n".join(lines)


@dataclass
class PPValue:
    """A node of formatted text: a line (``value`` + ``open``), indented contents, and
    ``close`` appended to the last line. A node of one line and one content line
    is printed as a single line."""

    value: str
    contents: list[PPValue] = field(default_factory=list)
    open: str = ""
    close: str = ""


Formatter = Callable[[Any, int], PPValue]

# Fields printed under enact 0.4's name where ours differs because the stored name
# must not change (see ``enact.wrappers._Elements``).
_FIELD_LABELS: dict[type, dict[str, str]] = {
    cls: {"values": "value"} for cls in (TupleWrapper, SetWrapper, FrozenSetWrapper)
}


class PPrinter:
    """Formats values as ``PPValue`` trees; ``register`` adds a formatter for a type."""

    def __init__(
        self, offset: int = 2, max_ref_depth: int | None = None, skip_repeated_refs: bool = False
    ) -> None:
        self.offset = offset
        self.max_ref_depth = max_ref_depth
        self.skip_repeated_refs = skip_repeated_refs
        self._seen_refs: set[str] = set()
        # Checked in order: the first type the (field) value is an instance of wins.
        self._formatters: list[tuple[type, Formatter]] = [
            (str, self.from_primitive),
            (bytes, self.from_primitive),
            (Ref, self.from_ref),
            (ResourceBase, self.from_resource),
            (dict, self.from_dict),
            (list, self.from_list),
            (type, self.from_type),
        ]

    def register(self, value_type: type, formatter: Formatter) -> None:
        """Format values of ``value_type`` with ``formatter(value, depth)`` (before others)."""
        self._formatters.insert(0, (value_type, formatter))

    @staticmethod
    def primitive_to_str(value: Any) -> str:
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        if isinstance(value, str):
            return repr(value)
        return str(value)

    def from_primitive(self, value: Any, depth: int) -> PPValue:
        return PPValue(self.primitive_to_str(value))

    def from_type(self, value: type, depth: int) -> PPValue:
        return PPValue(value.__name__)

    def from_list(self, value: list, depth: int) -> PPValue:
        return PPValue("", [self.pvalue(item, depth + 1) for item in value], "[", "]")

    def from_dict(self, value: dict, depth: int) -> PPValue:
        items = [PPValue(f'"{k}":', [self.pvalue(v, depth + 1)]) for k, v in value.items()]
        return PPValue("", items, "{", "}")

    def from_resource(self, value: ResourceBase, depth: int) -> PPValue:
        name = type(value).__name__
        fields = list(value.field_items())
        labels = _FIELD_LABELS.get(type(value))
        if labels is not None:
            fields = [(labels.get(k, k), v) for k, v in fields]
        if all(isinstance(v, PRIMITIVES) for _, v in fields):
            inner = ", ".join(f"{k}={self.primitive_to_str(v)}" for k, v in fields)
            return PPValue(f"{name}({inner})")
        return PPValue(
            name, [PPValue(k, [self.pvalue(v, depth + 1)], open=":") for k, v in fields], open=":"
        )

    def from_ref(self, value: Ref[Any], depth: int) -> PPValue:
        """``-> `` and the value the ref points to; the ref itself if it cannot be read
        (no store, or the object is missing): printing never fails on a ref."""
        try:
            target = value()
        except (StoreError, UnregisteredResource):
            return PPValue(f"-> {value!r}")
        tag = f"#{value.digest[:6]}"
        too_deep = bool(self.max_ref_depth) and depth > self.max_ref_depth  # type: ignore[operator]
        if too_deep or (self.skip_repeated_refs and value.digest in self._seen_refs):
            return PPValue(f"-> {type(target).__name__}{tag}")
        self._seen_refs.add(value.digest)
        result = self.pvalue(target, depth + 1)
        result.value = f"-> {result.value}{tag}"
        return result

    def pvalue(self, value: Any, depth: int = 0) -> PPValue:
        """The ``PPValue`` tree of ``value`` (wrapped into a field value first)."""
        field_value = to_field_value(value)
        for value_type, formatter in self._formatters:
            if isinstance(field_value, value_type):
                return formatter(field_value, depth)
        return self.from_primitive(field_value, depth)

    def _lines(self, node: PPValue) -> list[tuple[int, str]]:
        lines = [(0, node.value + node.open)]
        for child in node.contents:
            lines.extend((depth + 1, text) for depth, text in self._lines(child))
        lines[-1] = (lines[-1][0], lines[-1][1] + node.close)
        if len(lines) == 2:
            lines = [(0, f"{lines[0][1]} {lines[1][1]}")]
        return lines

    def pformat(self, value: Any) -> str:
        self._seen_refs.clear()
        lines = self._lines(self.pvalue(value))
        return "\n".join(" " * self.offset * depth + text for depth, text in lines)

    def pprint(self, value: Any) -> None:
        print(self.pformat(value))


def pformat(
    value: Any, max_ref_depth: int | None = None, skip_repeated_refs: bool = False
) -> str:
    """A readable multi-line string for a value (see the module docstring)."""
    return PPrinter(max_ref_depth=max_ref_depth, skip_repeated_refs=skip_repeated_refs).pformat(
        value
    )


def pprint(
    value: Any,
    max_ref_depth: int | None = None,
    skip_repeated_refs: bool = False,
    stream: IO[str] | None = None,
) -> None:
    print(pformat(value, max_ref_depth, skip_repeated_refs), file=stream or sys.stdout)

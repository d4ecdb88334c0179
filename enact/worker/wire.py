"""What workers and callers receive from each other, decoded and checked.

Task arguments come from the broker, map work items and result rows from Redis
lists. Anyone who can send a task or push to a list chooses these bytes, so
every field is checked for type, shape and size before it is used, and only
enact errors come out (``DeserializationError``, or ``UnregisteredResource``
from decoding a value). A result row also carries the packed records of its
call; each is verified against its digest before the caller adds it to its own
writes, so a forged row cannot put bytes in the store under another object's
digest.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack

from enact.calls import Node
from enact.digests import digest_bytes, is_digest
from enact.errors import DeserializationError
from enact.records import CallArgs
from enact.registry import shown
from enact.serialization import unpack_value

# Flow and map ids become parts of Redis keys (enact.stores._keys): no ":".
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ROW_FIELDS = 11
MAX_INDEX = 1 << 40


def task_id(value: Any, what: str) -> str:
    """A flow or map id from a task message."""
    if type(value) is not str or not _ID.match(value):
        raise DeserializationError(
            f"{what} must be 1 to 64 letters, digits, '_' or '-', got {shown(value, 80)}"
        )
    return value


def digest(value: Any, what: str) -> str:
    if not is_digest(value):
        raise DeserializationError(f"{what} must be a digest, got {shown(value, 80)}")
    return value  # type: ignore[no-any-return]


def count(value: Any, what: str, maximum: int = MAX_INDEX) -> int:
    """A non-negative int (not a bool) of at most ``maximum``."""
    if type(value) is not int or not 0 <= value <= maximum:
        raise DeserializationError(
            f"{what} must be an int in [0, {maximum}], got {shown(value, 80)}"
        )
    return value


def flag(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise DeserializationError(f"{what} must be true or false, got {shown(value, 80)}")
    return value


def _unpack(data: Any, what: str) -> Any:
    if type(data) is not bytes:
        raise DeserializationError(f"{what} must be bytes, got {type(data).__qualname__}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:
        raise DeserializationError(f"{what} is not valid msgpack: {exc}") from None


def work_item(data: Any) -> tuple[int, bytes]:
    """A map work item: ``[index, packed CallArgs]``."""
    item = _unpack(data, "a map work item")
    if type(item) is not list or len(item) != 2 or type(item[1]) is not bytes:
        raise DeserializationError("a map work item must be [index, packed call arguments]")
    return count(item[0], "a map work item's index"), item[1]


def call_args(data: bytes) -> CallArgs:
    """The packed ``CallArgs`` of one map call."""
    value = unpack_value(data)
    if type(value) is not CallArgs:
        raise DeserializationError(
            f"a map call's input must be CallArgs, got a {type(value).__qualname__}"
        )
    return value


def node_row(node: Node, value: bytes | None) -> list[Any]:
    """A node and its packed output or exception, as a msgpack-friendly row."""
    return [
        node.digest,
        node.request_digest,
        node.response_digest,
        node.invokable_digest,
        node.input_digest,
        node.post_invokable_digest,
        node.output_digest,
        node.raised_digest,
        node.raised_here,
        node.children,
        value,
    ]


def row_node(row: Any) -> tuple[Node, bytes | None]:
    """The node and packed value of a row made by ``node_row``, checked field by field."""
    if type(row) is not list or len(row) != ROW_FIELDS:
        raise DeserializationError(f"a result row must be a list of {ROW_FIELDS} fields")
    for i, name in enumerate(("digest", "request", "response", "invokable", "input", "post state")):
        digest(row[i], f"a result row's {name}")
    output, raised, raised_here, children, value = row[6:]
    if (output is None) == (raised is None):
        raise DeserializationError("a result row must hold exactly one of output and raised")
    digest(output if raised is None else raised, "a result row's output or exception")
    flag(raised_here, "a result row's raised_here")
    if type(children) is not list:
        raise DeserializationError("a result row's children must be a list of digests")
    for child in children:
        digest(child, "a result row's child")
    if value is not None and type(value) is not bytes:
        raise DeserializationError("a result row's value must be packed bytes")
    if value is not None and digest_bytes(value) != (output if raised is None else raised):
        raise DeserializationError("a result row's value does not match its digest")
    return Node(*row[:10]), value


def result_message(data: Any, size: int) -> tuple[int, Node, bytes | None, dict[str, bytes]]:
    """A map result: the call's index (below ``size``), node, value and verified records."""
    message = _unpack(data, "a map result")
    if type(message) is not list or len(message) != 3 or type(message[2]) is not dict:
        raise DeserializationError("a map result must be [index, row, records]")
    index = count(message[0], "a map result's index", size - 1)
    node, value = row_node(message[1])
    records: dict[str, bytes] = {}
    for key, packed in message[2].items():
        # A key equal to the bytes' own digest is a well-formed digest too.
        if type(packed) is not bytes or digest_bytes(packed) != key:
            raise DeserializationError(
                f"a map result's record {shown(key, 80)} does not hash to its digest"
            )
        records[key] = packed
    return index, node, value, records


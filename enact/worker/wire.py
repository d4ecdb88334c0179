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

from enact import tree
from enact.digests import digest_bytes, is_digest
from enact.errors import DeserializationError
from enact.records import CallArgs
from enact.redaction import redact
from enact.registry import shown
from enact.serialization import unpack_value
from enact.tree import Node

# Flow and map ids become parts of Redis keys (enact.stores._keys): no ":".
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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


WORK_VERSION = 1


def pack_work_item(
    index: int, input_data: bytes, replay_from: str | None, strict: bool, retry: bool = True
) -> bytes:
    """A map work item: which call (``index``), its packed ``CallArgs``, and the
    recorded call it replays (``replay_from``, with ``strict`` matching, and calls
    recorded as raising run again unless ``retry`` is false: ``Run(retry_raised=)``)."""
    item = {
        "v": WORK_VERSION, "index": index, "input": input_data, "replay": replay_from,
        "strict": strict, "retry": retry,
    }  # fmt: skip
    return msgpack.packb(item)  # type: ignore[no-any-return]


def work_item(data: Any) -> dict[str, Any]:
    """A map work item made by ``pack_work_item``, checked field by field."""
    item = _unpack(data, "a map work item")
    if type(item) is not dict or item.get("v") != WORK_VERSION:
        raise DeserializationError(
            f"a map work item must be a map of version {WORK_VERSION} "
            "(are workers of different enact releases sharing a cluster?)"
        )
    if type(item.get("input")) is not bytes:
        raise DeserializationError("a map work item's input must be packed call arguments")
    replay_from = item.get("replay")
    return {
        "index": count(item.get("index"), "a map work item's index"),
        "input": item["input"],
        "replay": None if replay_from is None else digest(replay_from, "a map work item's replay"),
        "strict": flag(item.get("strict"), "a map work item's strict"),
        # Added within version 1: an item from a release without it retries.
        "retry": flag(item.get("retry", True), "a map work item's retry"),
    }


def call_args(data: bytes) -> CallArgs:
    """The packed ``CallArgs`` of one map call."""
    value = unpack_value(data)
    if type(value) is not CallArgs:
        raise DeserializationError(
            f"a map call's input must be CallArgs, got a {type(value).__qualname__}"
        )
    return value


def pack_result(index: int, row: dict[str, Any], records: dict[str, bytes]) -> bytes:
    """A map result: the call's index, its row (``tree.to_row``) and its records."""
    return msgpack.packb({"index": index, "row": row, "records": records})  # type: ignore[no-any-return]


def pack_error(exc: BaseException) -> bytes:
    """A puller's report that it cannot run the map's calls at all, and why."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return msgpack.packb({"error": kind, "message": redact(exc)[:4000]})  # type: ignore[no-any-return]


def error_report(data: Any) -> tuple[str, str] | None:
    """``(error type, message)`` if ``data`` is a puller's error report, else ``None``."""
    message = _unpack(data, "a map result")
    if type(message) is dict and "error" in message:
        kind, text = message.get("error"), message.get("message")
        if type(kind) is not str or type(text) is not str:
            raise DeserializationError("a map error report must hold an error type and a message")
        return kind[:200], text[:4000]
    return None


def result_message(data: Any, size: int) -> tuple[int, Node, bytes | None, dict[str, bytes]]:
    """A map result: the call's index (below ``size``), node, value and verified records."""
    message = _unpack(data, "a map result")
    if type(message) is not dict or type(message.get("records")) is not dict:
        raise DeserializationError("a map result must be a map of index, row and records")
    index = count(message.get("index"), "a map result's index", size - 1)
    node, value = tree.from_row(message.get("row"))
    if not node.complete:
        raise DeserializationError("a map result's row must hold an output or an exception")
    records: dict[str, bytes] = {}
    for key, packed in message["records"].items():
        # A key equal to the bytes' own digest is a well-formed digest too.
        if type(packed) is not bytes or digest_bytes(packed) != key:
            raise DeserializationError(
                f"a map result's record {shown(key, 80)} does not hash to its digest"
            )
        records[key] = packed
    return index, node, value, records

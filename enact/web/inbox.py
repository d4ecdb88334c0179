"""What the inbox and the flow pages show, read from the cluster (Redis and the store).

A page of the inbox costs a few Redis round trips and, for each request on the page,
the request's record from the store; the records are content-addressed, so a small
cache keyed by digest never goes stale. Nothing here scales with the number of
pending requests but the one ``ZCARD`` that counts them.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import enact.worker
from enact import tree
from enact.errors import EnactError, UnknownFlow
from enact.printing import describe_call
from enact.records import NativeException
from enact.requests import InputRequest, pending_input_requests
from enact.web.forms import Field, field_for, to_json
from enact.worker import PendingInput

PAGE_SIZE = 25
_CACHE_SIZE = 512


@dataclass
class InboxItem:
    """One pending request as the inbox shows it."""

    id: str
    flow_id: str
    flow_name: str
    prompt: Any
    type_label: str
    context: Any
    has_context: bool
    created: float
    field: Field
    requested_type: Any = None
    loaded: bool = True  # False: the request's types are not registered in this process

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "flow_id": self.flow_id,
            "flow_name": self.flow_name,
            "for_value": to_json(self.prompt),
            "requested_type": self.type_label,
            "field": self.field.kind,
            "options": [value for value, _ in self.field.options],
            "context": to_json(self.context),
            "created": self.created,
        }


class Requests:
    """Reads pending input requests, newest first, a page at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: OrderedDict[str, dict[tuple[int, ...], InputRequest]] = OrderedDict()

    def count(self) -> int:
        return self.page(0, 1)[0]

    def page(self, offset: int = 0, limit: int = PAGE_SIZE) -> tuple[int, list[InboxItem]]:
        """``(total pending, the items at offset..offset+limit)``, newest first.

        Three round trips whatever the number pending (``FlowState.pending_page``
        and ``flow_names``).
        """
        state = enact.worker.flow_state()
        total, pending = state.pending_page(offset, limit)
        names = state.flow_names(p.flow_id for p in pending)
        return total, [self._item(p, names.get(p.flow_id) or "?") for p in pending]

    def item(self, request_id: str) -> InboxItem | None:
        """The request as an inbox item; ``None`` if it was answered meanwhile.

        ``UnknownInputRequest`` if there is no such request.
        """
        pending = enact.worker.flow_state().get_input_request(request_id)
        if pending.status == "answered":
            return None
        try:
            flow_name = enact.worker.get_flow(pending.flow_id).record().name
        except UnknownFlow:
            flow_name = "?"
        return self._item(pending, flow_name)

    def _item(self, pending: PendingInput, flow_name: str) -> InboxItem:
        request = self.request(pending.invocation, tuple(pending.path))
        if request is None:  # its types are not registered here: show what Redis holds
            return InboxItem(
                id=pending.id, flow_id=pending.flow_id, flow_name=flow_name,
                prompt=pending.for_value, type_label=pending.requested_type,
                context=pending.context, has_context=pending.context is not None,
                created=pending.created, field=Field("json", pending.requested_type),
                loaded=False,
            )  # fmt: skip
        return InboxItem(
            id=pending.id, flow_id=pending.flow_id, flow_name=flow_name,
            prompt=request.requested_for, type_label=field_for(request.requested_type).type_label,
            context=request.context, has_context=request.context is not None,
            created=pending.created, field=field_for(request.requested_type),
            requested_type=request.requested_type,
        )  # fmt: skip

    def request(self, invocation: str, path: tuple[int, ...]) -> InputRequest | None:
        """The ``InputRequest`` at ``path`` of a recorded invocation (cached by digest)."""
        with self._lock:
            found = self._requests.get(invocation)
            if found is not None:
                self._requests.move_to_end(invocation)
        if found is None:
            store = enact.worker.store()
            try:
                with store:
                    node = tree.load(store, invocation)
                    found = dict(pending_input_requests(node.invocation(store)))
            except EnactError:
                return None
            with self._lock:
                self._requests[invocation] = found
                while len(self._requests) > _CACHE_SIZE:
                    self._requests.popitem(last=False)
        return found.get(path)


@dataclass
class CallView:
    """One recorded call of a flow's tree, as the flow page shows it."""

    path: tuple[int, ...]
    call: str
    state: str  # "done", "raised", "waiting" (an input request) or "incomplete"
    output: str | None
    children: list[CallView]
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": list(self.path),
            "call": self.call,
            "state": self.state,
            "output": self.output,
            "request_id": self.request_id,
            "children": [c.to_json() for c in self.children],
        }


MAX_CALLS = 2_000  # a flow page shows at most this many calls of a tree


def call_tree(flow_id: str, head: str) -> tuple[CallView, int]:
    """The invocation tree of a flow at ``head`` and how many calls it has (shown or not)."""
    store = enact.worker.store()
    views: dict[tuple[int, ...], CallView] = {}
    count = 0
    with store:
        for path, node in tree.walk(store, head):
            count += 1
            if count > MAX_CALLS:
                continue
            output, state = None, "incomplete"
            request_id = None
            if node.output_digest is not None:
                state, output = "done", _text(store, node.output_digest)
            elif node.raised_digest is not None:
                raised = _load(store, node.raised_digest)
                if isinstance(raised, InputRequest):
                    state = "waiting" if node.raised_here else "raised"
                    output = str(raised)
                    if node.raised_here:
                        request_id = f"{flow_id}:{'.'.join(map(str, path))}"
                else:
                    state, output = "raised", _raised_text(raised)
            view = CallView(
                path, describe_call(node.invokable_digest, node.input_digest, store),
                state, output, [], request_id,
            )  # fmt: skip
            views[path] = view
            if path:
                parent = views.get(path[:-1])
                if parent is not None:
                    parent.children.append(view)
    return views[()], count


def _load(store: Any, digest: str) -> Any:
    try:
        return store.checkout(digest)
    except EnactError as exc:
        return f"<cannot load {digest[:12]}: {type(exc).__name__}>"


def _text(store: Any, digest: str) -> str:
    value = _load(store, digest)
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 2000 else text[:2000] + "…"


def _raised_text(raised: Any) -> str:
    if isinstance(raised, NativeException):
        return f"{raised.type_name.rsplit('.', 1)[-1]}: {raised.str_representation}"
    if isinstance(raised, BaseException):
        return f"{type(raised).__name__}: {raised}"
    return str(raised)


def age(created: float, now: float | None = None) -> str:
    """``12s``, ``5m``, ``3h``, ``2d``: how long ago ``created`` (epoch seconds) was."""
    seconds = max(0.0, (time.time() if now is None else now) - created)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def status_text(status: Any) -> str:
    """A flow status as text, whether it is a ``str`` or a ``str`` enum."""
    return str(status.value) if isinstance(status, enum.Enum) else str(status)

"""The flow operations the server offers, over ``enact.worker``'s flow API.

Listing, reading, submitting by registered name, answering, and the lifecycle actions
(cancel, retry, fork) where the worker package offers them. Every page and API route
goes through here, so both always agree on what a flow is and what can be done to it.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from typing import Any, Iterable, Sequence

import enact.worker
from enact import tree
from enact.errors import UnregisteredResource
from enact.invokables import AnyInvokable
from enact.registry import Registry
from enact.web.forms import AnswerParseError, from_json
from enact.web.inbox import status_text

FINAL = ("done", "failed", "cancelled")
STATUSES = ("queued", "running", "waiting", "done", "failed", "cancelled", "lapsed")
ACTIONS = ("cancel", "retry", "fork")


def record_json(record: Any) -> dict[str, Any]:
    """A flow record as JSON: its fields, the status as text, times as epoch seconds."""
    to_json = getattr(record, "to_json", None)
    data = to_json() if callable(to_json) else dataclasses.asdict(record)
    data["status"] = status_text(record.status)
    return dict(data)


def list_flows(
    status: Iterable[str] | None = None, since: float | None = None, limit: int = 100
) -> list[Any]:
    """Flow records, newest first, of the given statuses, created after ``since``."""
    return list(
        enact.worker.list_flows(status=list(status or ()) or None, since=since, limit=limit)
    )


def available_actions(status: str) -> list[str]:
    """The lifecycle actions that apply to a flow in ``status`` (and exist here)."""
    actions = []
    if status not in FINAL:
        actions.append("cancel")
    if status in ("failed", "cancelled", "lapsed"):
        actions.append("retry")
    if status != "queued":
        actions.append("fork")
    return actions


def act(flow_id: str, action: str) -> Any:
    """Cancel, retry or fork a flow; returns the flow acted on (a new one for fork)."""
    if action == "cancel":
        return enact.worker.cancel(flow_id)
    if action == "retry":
        return enact.worker.retry(flow_id)
    if action == "fork":
        return enact.worker.fork(flow_id)
    raise LookupError(f"no flow action {action!r}; one of {', '.join(ACTIONS)}")


def fork(flow_id: str, at: str | None, answers: dict[str, Any] | None) -> Any:
    """Fork with ``at`` and ``answers`` given as dotted paths (``"0.2"``), as JSON has them.

    The answers are JSON values, shaped by the requested type at each path
    (``from_json``: an enum member from its name, a resource from its fields).
    """
    shaped: dict[Sequence[int], Any] = {}
    if answers:
        record = enact.worker.get_flow(flow_id).record()
        store = enact.worker.store()
        for text, value in answers.items():
            path = dotted_path(text)
            requested = None
            if record.head:
                with store:
                    raised = tree.call_at(store, record.head, path).raised_digest
                    request = store.checkout(raised) if raised else None
                requested = getattr(request, "requested_type", None)
            shaped[path] = from_json(requested, value)
    return enact.worker.fork(
        flow_id, at=None if at is None else dotted_path(at), answers=shaped or None
    )


def dotted_path(text: str) -> tuple[int, ...]:
    """``"0.2"`` → ``(0, 2)``; ``""`` is the top-level call. ``AnswerParseError`` otherwise."""
    try:
        return tuple(int(part) for part in str(text).split(".") if part != "")
    except ValueError:
        raise AnswerParseError(
            f"a call path is dotted child indexes such as 0.2, got {text!r}"
        ) from None


def resolve(name: str) -> Any:
    """The registered function or invokable class named ``module.name`` (or ``module:name``).

    Only what this process registered (its ``ENACT_IMPORTS``) can be named, never an
    arbitrary importable object: ``UnregisteredResource`` otherwise.
    """
    dotted = name.replace(":", ".")
    registry = Registry.get()
    found = registry.lookup_function(dotted)
    if found is not None:
        return found
    module, _, qualname = dotted.rpartition(".")
    try:
        cls = registry.lookup_class(module, qualname)
    except (UnregisteredResource, ValueError):
        cls = None
    if isinstance(cls, type) and issubclass(cls, AnyInvokable):
        return cls
    raise UnregisteredResource(
        f"nothing registered is named {name!r} in this server; register it with "
        "@enact.register in a module listed in ENACT_IMPORTS"
    )


def submit(name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Start the registered target ``name`` as a flow; returns its handle."""
    target = resolve(name)
    check_arguments(target, args, kwargs)
    if isinstance(target, type):  # an Invokable class: built from kwargs, called on args
        return enact.worker.submit(target(**kwargs), *args)
    return enact.worker.submit(target, *args, **kwargs)


def check_arguments(target: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    """``TypeError`` (a 422) if ``target`` cannot take these arguments: said at once,
    not by a failed flow later."""
    if isinstance(target, type):
        return  # an Invokable class: built from kwargs, and its call takes one input
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{name_of(target)}{signature}: {exc}") from None


def name_of(target: Any) -> str:
    return str(getattr(target, "__name__", None) or type(target).__name__)


def flow_json(flow: Any, record: Any | None = None) -> dict[str, Any]:
    """A flow's record as JSON, plus its pending request ids and the actions it allows."""
    record = record or flow.record()
    data = record_json(record)
    data["actions"] = available_actions(data["status"])
    data["age_s"] = round(time.time() - float(data.get("created") or 0), 3)
    return data

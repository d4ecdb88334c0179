"""Values as HTML a person can read: what a request's context holds, at a glance.

Text keeps its line breaks; a list is a numbered list (the samples to pick from are
numbered as a person would cite them); a dict or a resource is a table of its fields;
a ref shows what it points to. Everything is escaped; deep or huge values are cut
short with a note, so one odd context cannot make the inbox slow or unreadable.
"""

from __future__ import annotations

import dataclasses
import enum
import html

from markupsafe import Markup

from enact.errors import EnactError
from enact.refs import Ref
from enact.resources import ResourceBase

MAX_DEPTH = 6
MAX_ITEMS = 50
MAX_TEXT = 4000


def render_value(value: object, depth: int = 0) -> Markup:
    """``value`` as escaped HTML (see the module docstring)."""
    return Markup(_html(value, depth))


def _html(value: object, depth: int) -> str:
    if depth > MAX_DEPTH:
        return '<span class="cut">…</span>'
    if value is None:
        return '<span class="none">None</span>'
    if isinstance(value, str):
        text = value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
        return f'<span class="text">{html.escape(text)}</span>'
    if isinstance(value, (bool, int, float)):
        return f'<span class="num">{html.escape(repr(value))}</span>'
    if isinstance(value, bytes):
        return f'<span class="bytes">&lt;{len(value)} bytes&gt;</span>'
    if isinstance(value, enum.Enum):
        return f'<span class="enum">{html.escape(value.name)}</span>'
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        shown = "".join(f"<li>{_html(v, depth + 1)}</li>" for v in items[:MAX_ITEMS])
        more = _more(len(items))
        return f'<ol class="list" start="0">{shown}</ol>{more}'
    if isinstance(value, dict):
        return _table(list(value.items()), depth, "")
    if isinstance(value, Ref):
        try:
            return _html(value.checkout(), depth)
        except EnactError as exc:
            name = type(exc).__name__
            return f'<span class="cut">ref {html.escape(value.id[:12])}: {name}</span>'
    if isinstance(value, ResourceBase) and dataclasses.is_dataclass(value):
        pairs = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
        return _table(pairs, depth, type(value).__qualname__)
    return f'<span class="repr">{html.escape(_short(repr(value)))}</span>'


def _table(pairs: list[tuple[object, object]], depth: int, title: str) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{_html(v, depth + 1)}</td></tr>"
        for k, v in pairs[:MAX_ITEMS]
    )
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f'<table class="fields">{caption}{rows}</table>{_more(len(pairs))}'


def _more(count: int) -> str:
    return f'<p class="cut">and {count - MAX_ITEMS} more</p>' if count > MAX_ITEMS else ""


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"

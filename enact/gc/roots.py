"""What gc must keep: roots, and the pins kept in the store itself.

A root is a digest something still needs, with a reason for messages
(``ref main``, ``pin results``, ``flow 1a2b head``). gc keeps every root and
everything it links to. Roots come from:

* pins, kept in the store itself (``enact pin``), so every gc of a store sees
  them whichever machine runs it;
* root sources: any object with a ``gc_roots()`` method yielding
  ``(digest, reason)`` pairs. ``RedisState`` is one (named refs and their
  history); ``enact.worker.gc_roots()`` returns the cluster's sources (refs,
  and every flow's start, head, output and pending requests);
* digests, refs and invocations passed directly.

Sources are read twice by a gc, once before the mark and once just before the
sweep, so a root set while the mark ran is kept too.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

from enact.backend import Maintainable
from enact.digests import is_digest
from enact.errors import ObjectMissing, StoreError

_PIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,199}$")


@runtime_checkable
class RootSource(Protocol):
    """Anything that can say which digests it still needs."""

    def gc_roots(self) -> Iterable[tuple[str, str]]:
        """``(digest, reason)`` for every digest this source keeps alive."""
        ...


def digest_of(target: Any) -> str:
    """The digest of a digest string, a ``Ref`` or an ``Invocation``; ``ValueError`` otherwise."""
    digest = target if isinstance(target, str) else getattr(target, "digest", None)
    if not is_digest(digest):
        raise ValueError(
            f"expected a digest (64 lowercase hex digits), a Ref or an Invocation, got {target!r}"
        )
    return digest  # type: ignore[return-value]


def gather(backend: Maintainable, roots: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """Every root: the store's pins, then each source's roots and each direct digest."""
    for name, digest in sorted(backend.pins().items()):
        yield digest, f"pin {name}"
    for root in roots:
        if isinstance(root, RootSource):
            yield from root.gc_roots()
        else:
            yield digest_of(root), "root passed to gc"


def check_pin_name(name: str) -> str:
    if not isinstance(name, str) or not _PIN_NAME.match(name):
        raise ValueError(
            f"invalid pin name {name!r}: 1-200 characters of letters, digits and ._:@=+- "
            "starting with a letter or digit"
        )
    return name


def pin(backend: Maintainable, target: Any, name: str | None = None) -> str:
    """Keep ``target`` (and all it links to) from gc, under ``name`` (default: its digest).

    Re-pinning a name moves it. ``ObjectMissing`` if the store lacks the object.
    Returns the name.
    """
    digest = digest_of(target)
    name = check_pin_name(name or digest)
    if not backend.has([digest])[0]:  # type: ignore[attr-defined]
        raise ObjectMissing(f"cannot pin {digest}: the store has no such object")
    backend.set_pin(name, digest)
    return name


def unpin(backend: Maintainable, name_or_digest: str) -> list[str]:
    """Remove the pin of that name, or every pin of that digest; return the names removed."""
    pins = backend.pins()
    if name_or_digest in pins:
        names = [name_or_digest]
    else:
        names = [name for name, digest in pins.items() if digest == name_or_digest]
    removed = [name for name in names if backend.remove_pin(name)]
    if not removed:
        raise StoreError(f"no pin named {name_or_digest!r} and no pin of that digest")
    return removed

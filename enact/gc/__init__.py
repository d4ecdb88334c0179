"""Keep a store small and sound: garbage collection, index compaction, fsck, pins.

::

    import enact.gc, enact.worker
    report = enact.gc.collect("s3://bucket/data", roots=enact.worker.gc_roots(), dry_run=True)
    print(report.summary())
    enact.gc.pin(store, invocation, "baseline")    # keep it (and all it links to)
    print(enact.gc.fsck(store).summary())

The command line does the same: ``enact gc [--dry-run] [--grace 1h]``,
``enact fsck [--repair]``, ``enact pin``, ``enact unpin``. What gc keeps and why
a concurrent writer loses nothing: ``enact.gc.collect`` and the README.
"""

from __future__ import annotations

from typing import Any

from enact.gc import roots as _roots
from enact.gc.collect import GcReport, collect, compact, maintainable
from enact.gc.fsck import FsckReport, fsck
from enact.gc.roots import RootSource
from enact.gc.units import format_bytes, format_duration, parse_duration


def pin(store: Any, target: Any, name: str | None = None) -> str:
    """Keep ``target`` (a digest, Ref or Invocation) and all it links to; return the pin's name."""
    return _roots.pin(maintainable(store), target, name)


def unpin(store: Any, name_or_digest: str) -> list[str]:
    """Remove a pin by name, or every pin of a digest; return the names removed."""
    return _roots.unpin(maintainable(store), name_or_digest)


def pins(store: Any = None) -> dict[str, str]:
    """The store's pins: name -> digest."""
    return maintainable(store).pins()


__all__ = [
    "FsckReport",
    "GcReport",
    "RootSource",
    "collect",
    "compact",
    "format_bytes",
    "format_duration",
    "fsck",
    "parse_duration",
    "pin",
    "pins",
    "unpin",
]

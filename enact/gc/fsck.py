"""fsck: verify every stored copy and index, report the damage, and repair what can be.

Every copy is read and hashed (a copy whose bytes do not hash to its digest is
corrupt; one listed but unreadable is missing), its links are collected, and
anything linked but not stored is reported as dangling. Listing damage (an
index that cannot be decoded, a pack an index names but that is gone, a stray
file) is reported too. A pin naming an object the store lacks is dangling.

With ``repair=True`` (holding the maintenance lock):

* every damaged copy is moved out of the way (file: into ``quarantine/``; Redis:
  to a quarantine key; S3: dropped from a rewritten index, and an unreadable
  index moved to ``quarantine/`` after the orphan packs it named are indexed
  again by reading them), so the object reads as missing everywhere and
  committing it again, from any process, writes a good copy;
* an object with a good copy elsewhere (another copy on S3, or the shared Redis
  cache in front of S3) is restored from it at once.

What is still lost afterwards is listed: commit those values again.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from enact.backend import Inventory, describe
from enact.config import Settings
from enact.errors import DeserializationError
from enact.gc.collect import MaintenanceLock, maintainable
from enact.gc.units import format_bytes
from enact.serialization import packed_links


@dataclass
class FsckReport:
    """What fsck found (and, with ``repair``, did)."""

    store: str
    objects: int = 0  # distinct digests stored
    copies: int = 0  # copies checked (S3 may hold several per object)
    bytes: int = 0
    damaged: dict[str, list[str]] = field(default_factory=dict)  # digest -> damaged copies
    lost: list[str] = field(default_factory=list)  # damaged, with no good copy left
    dangling: dict[str, str] = field(default_factory=dict)  # missing digest -> linked from
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # actions taken
    restored: list[str] = field(default_factory=list)  # digests written back from a good copy
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.dangling or self.problems)

    def summary(self) -> str:
        lines = [
            f"fsck of {self.store}: {self.objects:,} objects, {self.copies:,} copies, "
            f"{format_bytes(self.bytes)} checked in {self.seconds:.2f}s",
        ]
        if self.ok:
            lines.append("  no damage found")
        for digest, wheres in list(self.damaged.items())[:50]:
            for where in wheres:
                lines.append(f"  damaged  {digest}  {where}")
        for digest in self.lost[:50]:
            lines.append(f"  lost     {digest}  (no good copy: commit the value again)")
        for digest, parent in list(self.dangling.items())[:50]:
            lines.append(f"  dangling {digest}  linked from {parent}, not stored")
        for problem in self.problems[:50]:
            lines.append(f"  problem  {problem}")
        for action in self.repaired:
            lines.append(f"  repaired {action}")
        for digest in self.restored:
            lines.append(f"  restored {digest} from a good copy")
        return "\n".join(lines)


def fsck(
    store: Any = None,
    *,
    repair: bool = False,
    progress: Callable[[str, int], None] | None = None,
    settings: Settings | None = None,
) -> FsckReport:
    """Verify every copy and index of ``store`` (a Store, backend, URL, or the configured one).

    ``settings`` (read from the environment once if not given) name the configured
    store and the grace within which an orphan pack is an upload in flight.
    """
    settings = settings or Settings.from_env()
    backend = maintainable(store, settings)
    report = FsckReport(store=describe(backend))
    started = time.monotonic()
    if repair:
        with MaintenanceLock(backend, "fsck"):
            _repair(backend, _check(backend, report, progress, settings.gc_grace_s), report)
    else:
        _check(backend, report, progress, settings.gc_grace_s)
    report.seconds = time.monotonic() - started
    return report


def _check(
    backend: Any,
    report: FsckReport,
    progress: Callable[[str, int], None] | None,
    grace_s: float,
) -> Inventory:
    # Orphan packs younger than the grace may be uploads in flight: not damage.
    inventory = backend.inventory(time.time() - grace_s, dry_run=True)
    report.problems = inventory.problems()
    damaged: dict[str, list[str]] = defaultdict(list)
    good: set[str] = set()
    for copy in inventory.copies():
        report.copies += 1
        if copy.data is None:
            damaged[copy.digest].append(f"{copy.where}: listed but cannot be read")
            continue
        report.bytes += len(copy.data)
        actual = hashlib.sha256(copy.data).hexdigest()
        if actual != copy.digest:
            damaged[copy.digest].append(
                f"{copy.where}: corrupt, its {len(copy.data)} bytes hash to {actual}"
            )
            continue
        good.add(copy.digest)
        try:
            links = packed_links(copy.data)
        except DeserializationError:
            links = []  # opaque bytes: no links
        for link in links:
            if link not in inventory:
                report.dangling.setdefault(link, copy.digest)
        if progress is not None and report.copies % 10_000 == 0:
            progress("fsck", report.copies)
    for name, digest in backend.pins().items():
        if digest not in inventory:
            report.dangling.setdefault(digest, f"pin {name}")
    report.objects = sum(1 for _ in inventory.digests())
    report.damaged = dict(damaged)
    report.lost = [d for d in damaged if d not in good]
    return inventory  # type: ignore[no-any-return]


def _repair(backend: Any, inventory: Inventory, report: FsckReport) -> None:
    if report.damaged or report.problems:
        report.repaired = inventory.repair(list(report.damaged))
    cached = getattr(backend, "cached", None)  # the Redis cache in front of S3
    if cached is None or not report.lost:
        return
    sources = cached(report.lost)
    restore = {d: data for d, data in zip(report.lost, sources) if data is not None}
    if restore:
        inner = getattr(backend, "backend", backend)
        forget = getattr(inner, "forget", None)
        if forget is not None:
            forget(list(restore))  # so that put writes them, whatever it held in memory
        inner.put(restore)
        report.restored = sorted(restore)
        report.lost = [d for d in report.lost if d not in restore]

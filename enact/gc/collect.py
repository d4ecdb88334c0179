"""Garbage collection: mark what the roots reach, then delete the rest that is old.

``collect`` runs in four steps, holding the store's maintenance lock (one gc at
a time; a dry run takes no lock and writes nothing):

1. **Inventory.** A snapshot of every stored copy and when it was written.
   Nothing written after it is looked at or touched.
2. **Mark.** Everything reachable from the roots (pins, root sources, digests
   passed in) and from every *young* object (written within the grace period:
   a writer may still be about to name it in a ref or a flow). Reading only the
   link headers, never decoding values.
3. **Roots again.** Root sources are read a second time and anything new is
   marked, so a ref or flow set while the mark ran is kept.
4. **Sweep.** Every copy that is unmarked and older than the grace is deleted
   (on S3: packs deleted, mostly-garbage packs rewritten, indexes merged).

If the mark finds a reachable object missing or corrupt, nothing is deleted
(``GcError`` names them): what a damaged object links to cannot be known, so its
descendants might be deleted although a repaired copy would need them. Repair it
(commit the value again; ``enact fsck``) or pass ``allow_damaged=True``.

The guarantee, and why a writer racing the sweep loses nothing, is written out
in ``enact.backend`` and the README ("Garbage collection").
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from enact.backend import LOCK_TTL_S, MIN_GRACE_S, Maintainable, SweepResult, describe
from enact.config import Settings, open_backend
from enact.errors import GcError
from enact.gc.mark import Mark
from enact.gc.roots import gather
from enact.gc.units import format_bytes, format_duration
from enact.store import Store

Progress = Callable[[str, int], None]


@dataclass
class GcReport:
    """What a gc found and did (in a dry run: what it would do)."""

    store: str
    dry_run: bool
    grace_s: float
    objects: int = 0  # distinct objects stored when gc began
    young: int = 0  # of those, written within the grace period
    roots: int = 0  # roots named by pins and root sources
    marked: int = 0  # stored objects reachable from the roots or young: kept
    deleted: int = 0  # objects no longer stored
    bytes_reclaimed: int = 0  # net: bytes deleted minus bytes of rewritten packs
    packs_rewritten: int = 0
    packs_deleted: int = 0
    indexes_before: int = 0
    indexes_after: int = 0
    kept_fresh: int = 0  # condemned, but a writer wrote them again meanwhile
    missing_roots: list[tuple[str, str]] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per phase, and "total"

    @property
    def marked_per_s(self) -> float:
        mark = self.seconds.get("mark", 0.0)
        return self.marked / mark if mark > 0 else 0.0

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        lines = [
            f"gc of {self.store}{' (dry run: nothing deleted)' if self.dry_run else ''}, "
            f"grace {format_duration(self.grace_s)}",
            f"  objects     {self.objects:,} stored, {self.young:,} younger than the grace",
            f"  roots       {self.roots:,} (pins, refs, flows)"
            + (f", {len(self.missing_roots):,} not in the store" if self.missing_roots else ""),
            f"  marked      {self.marked:,} live ({self.marked_per_s:,.0f} objects/s)",
            f"  {verb:11} {self.deleted:,} objects, {format_bytes(self.bytes_reclaimed)} reclaimed",
        ]
        if self.indexes_before or self.packs_rewritten or self.packs_deleted:
            lines.append(
                f"  packs       {self.packs_rewritten:,} rewritten, {self.packs_deleted:,} "
                f"deleted; indexes {self.indexes_before:,} -> {self.indexes_after:,}"
            )
        if self.kept_fresh:
            lines.append(f"  kept        {self.kept_fresh:,} written again by a writer during gc")
        for problem in self.problems[:10]:
            lines.append(f"  problem     {problem}")
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items() if k != "total")
        lines.append(f"  time        {self.seconds.get('total', 0.0):.2f}s ({phases})")
        return "\n".join(lines)


def maintainable(store: Any = None, settings: Settings | None = None) -> Maintainable:
    """The backend of a ``Store``, a backend, a URL, or the configured store."""
    backend = store.backend if isinstance(store, Store) else open_backend(store, settings)
    if not isinstance(backend, Maintainable):
        raise GcError(
            f"{describe(backend)} does not support gc, fsck or pins "
            "(the memory backend keeps nothing past its process)"
        )
    return backend


class MaintenanceLock:
    """The store's maintenance lock, renewed in the background while held."""

    def __init__(self, backend: Maintainable, action: str) -> None:
        self.backend = backend
        self.owner = f"{action} on {socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MaintenanceLock:
        self.backend.lock_maintenance(self.owner, LOCK_TTL_S)
        self._thread = threading.Thread(target=self._renew, name="enact-gc-lock", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(LOCK_TTL_S / 6):
            try:
                self.backend.lock_maintenance(self.owner, LOCK_TTL_S)
            except Exception:
                continue  # try again next period; the lock outlives a few misses

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.backend.unlock_maintenance(self.owner)


def collect(
    store: Any = None,
    roots: Iterable[Any] = (),
    *,
    grace_s: float | None = None,
    dry_run: bool = False,
    offline: bool = False,
    allow_damaged: bool = False,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> GcReport:
    """Delete what no root reaches and is older than ``grace_s``; see the module docstring.

    ``store``: a ``Store``, a backend, a URL, or ``None`` for the configured store.
    ``roots``: root sources (objects with ``gc_roots()``, such as
    ``enact.worker.gc_roots()``), digests, refs or invocations; pins are always
    roots. ``grace_s`` defaults to ``settings.gc_grace_s`` (``ENACT_GC_GRACE_S``, an
    hour; ``settings`` are read from the environment once if not given) and must be at
    least ``MIN_GRACE_S`` unless ``offline`` says nothing writes to the store
    meanwhile. Raises ``GcError`` (nothing deleted) when the mark finds damage,
    and ``ConflictError`` when another gc holds the store's lock.
    """
    settings = settings or Settings.from_env()
    backend = maintainable(store, settings)
    grace = settings.gc_grace_s if grace_s is None else float(grace_s)
    if grace < 0:
        raise GcError(f"the grace period must not be negative, got {grace}")
    if not offline and grace < MIN_GRACE_S:
        raise GcError(
            f"a grace of {format_duration(grace)} is shorter than {format_duration(MIN_GRACE_S)}, "
            "the least that keeps processes writing to the store during gc safe (writers "
            "reuse copies up to 5m old, and a store remembers what it wrote for 5m); "
            "pass offline=True (enact gc --offline) if nothing writes to it meanwhile"
        )
    roots = list(roots)
    report = GcReport(store=describe(backend), dry_run=dry_run, grace_s=grace)
    started = time.monotonic()
    if dry_run:
        _collect(backend, roots, grace, report, dry_run, allow_damaged, progress)
    else:
        with MaintenanceLock(backend, "gc"):
            _collect(backend, roots, grace, report, dry_run, allow_damaged, progress)
    report.seconds["total"] = time.monotonic() - started
    return report


def _collect(
    backend: Maintainable,
    roots: list[Any],
    grace: float,
    report: GcReport,
    dry_run: bool,
    allow_damaged: bool,
    progress: Progress | None,
) -> None:
    clock = getattr(backend, "server_time", time.time)  # Redis keeps times on its clock
    cutoff = clock() - grace
    phase = time.monotonic()
    inventory = backend.inventory(cutoff, dry_run=dry_run)
    report.problems = inventory.problems()
    young = list(inventory.young())
    report.young = len(young)
    report.seconds["list"] = _lap(phase)

    phase = time.monotonic()
    mark = Mark(inventory, backend.has)  # type: ignore[attr-defined]
    mark.extend(gather(backend, roots), progress)
    report.roots = mark.roots
    mark.extend(((d, "young") for d in young), progress)
    mark.extend(gather(backend, roots), progress)  # roots set while the mark ran
    report.seconds["mark"] = _lap(phase)
    report.missing_roots = mark.missing_roots
    report.damaged = dict(mark.damaged)
    for digest, why in mark.invalid_roots:
        report.problems.append(f"root {digest!r} ({why}) is not a digest")
    live = {d for d in mark.marked if d in inventory}
    report.marked = len(live)
    if mark.damaged and not allow_damaged:
        first = list(mark.damaged.items())[:5]
        listed = "; ".join(f"{d}: {why}" for d, why in first)
        raise GcError(
            f"gc of {describe(backend)} deleted nothing: {len(mark.damaged)} reachable objects "
            f"are missing or corrupt, so what they link to is unknown ({listed}). Commit those "
            "values again, or run `enact fsck` to see the damage; allow_damaged=True "
            "(--allow-damaged) treats them as leaves"
        )

    phase = time.monotonic()
    plan = inventory.plan(live)
    report.objects = plan.objects
    report.indexes_before = plan.indexes_before
    if dry_run:  # what the sweep would do, as if it did it
        result = SweepResult(
            plan.delete_objects, plan.reclaim_bytes, plan.rewrite_packs, plan.delete_packs,
            plan.indexes_after,
        )  # fmt: skip
    else:
        result = inventory.sweep(plan, progress)
    report.deleted = result.deleted_objects
    report.bytes_reclaimed = result.reclaimed_bytes
    report.packs_rewritten = result.rewritten_packs
    report.packs_deleted = result.deleted_packs
    report.indexes_after = result.indexes_after
    report.kept_fresh = result.kept_fresh
    report.seconds["plan" if dry_run else "sweep"] = _lap(phase)


def compact(store: Any = None, progress: Progress | None = None) -> GcReport:
    """Merge a store's indexes into few, deleting nothing (S3; elsewhere a no-op).

    A cold reader of an S3 store lists and loads every index, so its start-up
    grows with the number of commits until they are merged; ``collect`` merges
    them too.
    """
    backend = maintainable(store)
    report = GcReport(store=describe(backend), dry_run=False, grace_s=0.0)
    started = time.monotonic()
    with MaintenanceLock(backend, "compact"):
        inventory = backend.inventory(0.0)
        report.problems = inventory.problems()
        plan = inventory.plan(None)
        report.objects = plan.objects
        report.marked = plan.objects
        report.indexes_before = plan.indexes_before
        if plan.indexes_before > 1:
            result = inventory.sweep(plan, progress)
            report.indexes_after = result.indexes_after
        else:
            report.indexes_after = plan.indexes_before
    report.seconds["total"] = time.monotonic() - started
    return report


def _lap(since: float) -> float:
    return time.monotonic() - since


__all__ = ["GcReport", "MaintenanceLock", "collect", "compact", "maintainable"]

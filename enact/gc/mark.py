"""The mark: everything reachable from the roots, found by the links objects carry.

Every enact object starts with the digests it links to (``[1, links, body]``),
so the walk reads only that header and never decodes a value. It reads each
reachable object once, in batches, and checks its digest on the way: a
reachable object that is missing or damaged is recorded, because what it links
to cannot be known (gc then refuses to delete anything, see ``collect``).
Objects that are not enact objects (opaque bytes) are leaves.

A listing is not atomic (a directory walk, a paginated LIST), so a young object
may be in the snapshot while an object it links, written just before it, is
not. Such a link is looked up in the store itself before it counts as missing:
if it is there, it is newer than the snapshot, which gc never touches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from enact.backend import Inventory
from enact.digests import is_digest
from enact.errors import DeserializationError
from enact.serialization import packed_links

BATCH = 5000


@dataclass
class Mark:
    """What a mark found; ``extend`` may be called again with more roots."""

    inventory: Inventory
    # whether each digest is stored now (the backend's ``has``), for unlisted links
    has: Callable[[Sequence[str]], list[bool]]
    marked: set[str] = field(default_factory=set)
    # digest -> what is wrong with it and where it was reached from
    damaged: dict[str, str] = field(default_factory=dict)
    # roots naming objects the store does not hold (not written yet, or lost)
    missing_roots: list[tuple[str, str]] = field(default_factory=list)
    invalid_roots: list[tuple[str, str]] = field(default_factory=list)
    roots: int = 0
    bytes_read: int = 0
    newer: int = 0  # linked objects written after the snapshot

    def extend(
        self, roots: Iterable[tuple[str, str]], progress: Callable[[str, int], None] | None = None
    ) -> None:
        """Mark everything reachable from ``roots`` that is not marked yet."""
        inventory, marked = self.inventory, self.marked
        frontier: list[str] = []
        for digest, why in roots:
            self.roots += 1
            if not is_digest(digest):
                self.invalid_roots.append((digest, why))
            elif digest in marked:
                continue
            elif digest not in inventory:
                if (digest, why) not in self.missing_roots:
                    self.missing_roots.append((digest, why))
            else:
                marked.add(digest)
                frontier.append(digest)
        unlisted: dict[str, str] = {}
        while frontier:
            batch, frontier = frontier[:BATCH], frontier[BATCH:]
            for digest, data in zip(batch, inventory.read(batch)):
                if data is None:
                    self.damaged[digest] = "no copy can be read"
                    continue
                self.bytes_read += len(data)
                if hashlib.sha256(data).hexdigest() != digest:
                    actual = hashlib.sha256(data).hexdigest()
                    self.damaged[digest] = f"corrupt: its {len(data)} bytes hash to {actual}"
                try:
                    links = packed_links(data)
                except DeserializationError:
                    continue  # opaque bytes (or too damaged to say): a leaf
                for link in links:
                    if link in marked:
                        continue
                    marked.add(link)
                    if link in inventory:
                        frontier.append(link)
                    else:
                        unlisted[link] = digest
            if progress is not None:
                progress("mark", len(marked))
        self._check_unlisted(unlisted)

    def _check_unlisted(self, unlisted: dict[str, str]) -> None:
        links = list(unlisted)
        for start in range(0, len(links), BATCH):
            chunk = links[start : start + BATCH]
            for link, present in zip(chunk, self.has(chunk)):
                if present:
                    self.newer += 1
                else:
                    self.damaged[link] = f"missing, linked from {unlisted[link]}"

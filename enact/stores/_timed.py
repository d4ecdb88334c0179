"""What the file and Redis inventories share: one copy per digest, with a write time.

Both keep ``objects`` (digest -> (time last written, size)) and a cutoff; a copy
older than the cutoff that the mark did not reach is condemned. How each lists,
reads and deletes stays in its own module.
"""

from __future__ import annotations

from typing import Collection, Iterator

from enact.backend import Plan


class TimedObjects:
    """The part of an inventory common to stores with one timed copy per digest."""

    objects: dict[str, tuple[float, int]]
    cutoff_s: float

    def digests(self) -> Iterator[str]:
        return iter(self.objects)

    def __contains__(self, digest: object) -> bool:
        return digest in self.objects

    def young(self) -> Iterator[str]:
        cutoff = self.cutoff_s
        return (d for d, (t, _) in self.objects.items() if t >= cutoff)

    def plan(self, live: Collection[str] | None) -> Plan:
        """Condemn every copy older than the cutoff that is not live (``None``: keep all)."""
        if live is None:
            return Plan(objects=len(self.objects), detail=[])
        cutoff = self.cutoff_s
        condemned = [d for d, (t, _) in self.objects.items() if t < cutoff and d not in live]
        return Plan(
            objects=len(self.objects),
            delete_objects=len(condemned),
            reclaim_bytes=sum(self.objects[d][1] for d in condemned),
            detail=condemned,
        )

"""Sampled calls: where a program's randomness comes from during a search.

A *sampled call* is a tracked call that takes its randomness from ``draw()``
(a toy LLM, a die, a proposal generator). Search strategies count their budget in
draws and make every draw reproducible:

* inside a search rollout, ``draw()`` returns 64 bits derived from the rollout's
  key (the search seed and the node of the search tree the rollout expands) and
  the number of draws the rollout made before; scheduling order, threads and
  workers play no part, so a search repeated with the same seed samples the
  same values;
* a rollout may draw at most ``cap`` times: the next ``draw()`` raises
  ``BudgetExhausted`` (recorded in the sampled call like any exception), so a
  search never spends more than its budget;
* outside a rollout, ``draw()`` returns fresh system randomness: the program
  runs as it would without a search.

Call ``draw()`` once per sampled call. A call that is reused from a record does
not run, so it draws nothing and costs nothing.
"""

from __future__ import annotations

import contextvars
import hashlib
import random
from contextlib import contextmanager
from typing import Iterator

from enact import calls
from enact.errors import BudgetExhausted

__all__ = ["BudgetExhausted", "Sampler", "draw", "sampling"]


class Sampler:
    """The draws of one rollout: its key, its cap, and what it drew so far."""

    __slots__ = ("key", "cap", "drawn", "sampled")

    def __init__(self, key: str, cap: int) -> None:
        self.key = key
        self.cap = cap
        self.drawn = 0
        #: digests of the invokables of the calls that drew (what "sampled" means here)
        self.sampled: set[str] = set()

    def next(self) -> int:
        if self.drawn >= self.cap:
            raise BudgetExhausted(
                f"the rollout {self.key!r} has drawn its {self.cap} allotted samples"
            )
        digest = hashlib.sha256(f"{self.key}#{self.drawn}".encode()).digest()
        self.drawn += 1
        scope = calls.current()
        spec = None if scope is None else calls.running(scope)
        if spec is not None:
            self.sampled.add(spec.invokable_digest)
        return int.from_bytes(digest[:8], "big")


_sampler: contextvars.ContextVar[Sampler | None] = contextvars.ContextVar(
    "enact_search_sampler", default=None
)
_system = random.SystemRandom()


def draw() -> int:
    """64 random bits for the sampled call running now (see the module docstring).

    ``BudgetExhausted`` when the rollout has used its allotment.
    """
    sampler = _sampler.get()
    if sampler is None:
        return _system.getrandbits(64)
    return sampler.next()


@contextmanager
def sampling(key: str, cap: int) -> Iterator[Sampler]:
    """Draws in this context come from ``key``, at most ``cap`` of them."""
    sampler = Sampler(key, cap)
    token = _sampler.set(sampler)
    try:
        yield sampler
    finally:
        _sampler.reset(token)

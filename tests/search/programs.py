"""Small programs the search tests run; real workers import this module too."""

from __future__ import annotations

import threading

import enact
from enact import search

TARGET = [3, 1, 2, 0]


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1

    def take(self) -> int:
        with self._lock:
            value, self.value = self.value, 0
            return value

#: how many times ``pick`` really ran in this process (reused calls do not run)
EXECUTED = Counter()


@enact.register
def pick(n: int) -> int:
    """A sampled call: one of ``range(n)``."""
    value = search.draw() % n
    EXECUTED.add()
    return value


@enact.register
def digits(k: int) -> list:
    return [pick(4) for _ in range(k)]


@enact.register
def nested_digits(k: int) -> list:
    """Sampled calls below other calls: the cuts are at depth 2."""
    return [pair() for _ in range(k // 2)] + ([pick(4)] if k % 2 else [])


@enact.register
def pair() -> list:
    return [pick(4), pick(4)]


def _flat(value: list) -> list:
    out: list = []
    for item in value:
        out.extend(_flat(item) if isinstance(item, list) else [item])
    return out


@enact.register
def match_score(invocation: enact.Invocation) -> float:
    """Share of leading digits equal to TARGET's (the optimum, 1.0, is TARGET itself)."""
    out = _flat(invocation.get_output())
    right = 0
    for got, want in zip(out, TARGET):
        if got != want:
            break
        right += 1
    return right / len(out)

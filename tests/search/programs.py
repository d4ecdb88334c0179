"""Small programs the search tests run; real workers import this module too."""

from __future__ import annotations

import os
import threading
import time

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

DRAW_LOG = "SEARCH_TEST_DRAW_LOG"  # a file: one line per sample drawn, by any process
PICK_DELAY = "SEARCH_TEST_PICK_DELAY_S"

#: how many times ``pick`` really ran in this process (reused calls do not run)
EXECUTED = Counter()


@enact.register
def pick(n: int) -> int:
    """A sampled call: one of ``range(n)``."""
    sample = search.draw()
    EXECUTED.add()
    log = os.environ.get(DRAW_LOG)
    if log:  # the cluster tests count samples across processes
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{sample}\n".encode())
        finally:
            os.close(fd)
        time.sleep(float(os.environ.get(PICK_DELAY, "0")))
    return sample % n


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


@enact.register
def human_score(invocation: enact.Invocation) -> float:
    """A scorer that asks a person."""
    return enact.request_input(  # type: ignore[no-any-return]
        float, for_value=str(invocation.get_output()), context="score from 0 to 1"
    )


@enact.register
def no_samples(k: int) -> list:
    """A program with nothing to sample: one execution is all there is."""
    return list(range(k))


@enact.register
def searching(budget: int) -> float:
    """A tracked program that runs a search inside (the search is its child)."""
    result = search.mcts(digits, (3,), scorer=match_score, budget=budget, seed=2, cluster=False)
    return result.score

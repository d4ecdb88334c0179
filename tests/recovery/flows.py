"""Registered flows the recovery tests run; the workers import this module.

Every ``step`` appends one line to the file named by ``ENACT_TEST_EXECUTIONS`` when it
starts: ``TAG INDEX PID TIME``. One ``os.write`` of a short line to a file opened with
``O_APPEND`` is atomic, so lines from many worker processes never interleave, and a
``kill -9`` loses no line already written. The file, not Redis, keeps the count because
the chaos test kills Redis too.
"""

from __future__ import annotations

import os
import time

import enact


def _record(tag: str, index: int) -> None:
    path = os.environ.get("ENACT_TEST_EXECUTIONS")
    if not path:
        return
    line = f"{tag} {index} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@enact.register
def step(tag: str, index: int, delay_s: float) -> int:
    """One tracked step: recorded when it starts, then a sleep."""
    _record(tag, index)
    time.sleep(delay_s)
    return index


@enact.register
def steps_flow(tag: str, steps: int, delay_s: float) -> int:
    """``steps`` tracked steps in a row; returns the sum of their indexes."""
    return sum(step(tag, i, delay_s) for i in range(steps))


@enact.register
def asking_flow(tag: str, steps: int, delay_s: float) -> int:
    """``steps`` steps, a question (an int), ``steps`` more; returns both sums and the answer."""
    before = sum(step(tag, i, delay_s) for i in range(steps))
    bonus = enact.request_input(requested_type=int, for_value=f"bonus for {tag}?")
    after = sum(step(tag, i, delay_s) for i in range(steps, 2 * steps))
    return before + 1000 * bonus + after


def expected_output(kind: str, steps: int, bonus: int = 0) -> int:
    """What ``steps_flow`` or ``asking_flow`` returns (computed here, not on a worker)."""
    if kind == "steps":
        return sum(range(steps))
    return sum(range(2 * steps)) + 1000 * bonus


def step_count(kind: str, steps: int) -> int:
    """How many distinct steps the flow runs."""
    return steps if kind == "steps" else 2 * steps

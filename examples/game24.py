"""Game of 24, solved by searching over the executions of a scaffolding program.

The "LLM" is a deterministic toy: given its instructions (a few-shot prompt) and a
prompt (the numbers left), it proposes one step ``a op b = c``. Its randomness comes
from a PRNG seeded by the prompt and the sample drawn for the call
(``enact.search.draw()``), so a search with the same seed proposes the same steps.
With probability ``1 - error_rate`` it proposes a step that keeps the puzzle solvable,
otherwise any step, sometimes with an arithmetic slip. ``latency_s`` simulates the
time a real model takes.

Puzzles come from a brute-force solver (no downloads). The scorer is an exact
verifier: 1.0 for a valid derivation of 24, a little partial credit for a valid
derivation of another number, 0 for a wrong step.

Run ``python examples/game24.py [budget]``: MCTS on a few puzzles, locally by
default, on the cluster when one is configured (``ENACT_REDIS_URL``; the workers
need ``ENACT_IMPORTS=examples.game24``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import sys
import time
from dataclasses import dataclass
from fractions import Fraction

import enact
from enact import search

OPS = "+-*/"


def fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def parse_numbers(text: str) -> list[Fraction]:
    return [Fraction(t) for t in text.split()]


def apply(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


def steps_from(numbers: tuple[Fraction, ...]) -> list[tuple[int, int, str, Fraction]]:
    """Every step (i, j, op, result) that combines two of ``numbers``."""
    out = []
    for i, j in itertools.permutations(range(len(numbers)), 2):
        for op in OPS:
            if op in "+*" and i > j:
                continue  # commutative: one order is enough
            value = apply(numbers[i], op, numbers[j])
            if value is not None:
                out.append((i, j, op, value))
    return out


def after(numbers: tuple[Fraction, ...], i: int, j: int, value: Fraction) -> tuple[Fraction, ...]:
    rest = [x for k, x in enumerate(numbers) if k not in (i, j)]
    return tuple(sorted(rest + [value]))


@functools.cache
def solvable(numbers: tuple[Fraction, ...]) -> bool:
    """Whether ``numbers`` (sorted) can make 24: the brute-force solver."""
    if len(numbers) == 1:
        return numbers[0] == 24
    return any(solvable(after(numbers, i, j, v)) for i, j, _, v in steps_from(numbers))


def puzzles(count: int, seed: int = 0) -> list[list[int]]:
    """``count`` distinct solvable puzzles of four numbers from 1 to 13."""
    rng = random.Random(seed)
    found: list[list[int]] = []
    while len(found) < count:
        numbers = sorted(rng.randint(1, 13) for _ in range(4))
        if numbers not in found and solvable(tuple(Fraction(n) for n in numbers)):
            found.append(numbers)
    return found


# The toy LLM and the program ------------------------------------------------------------


def solution(numbers: tuple[Fraction, ...]) -> list[str]:
    """One way to reach 24 from ``numbers`` (solvable), as steps."""
    if len(numbers) == 1:
        return []
    for i, j, op, value in steps_from(numbers):
        rest = after(numbers, i, j, value)
        if solvable(rest):
            return [f"{fmt(numbers[i])} {op} {fmt(numbers[j])} = {fmt(value)}", *solution(rest)]
    raise ValueError(f"{numbers} cannot make 24")


def few_shot(count: int = 10) -> str:
    """The toy LLM's instructions: a task statement and worked examples, as a real
    prompt would have (the examples come from the solver)."""
    lines = [
        "You are playing the Game of 24. Combine two of the given numbers with +, -, * or /",
        "and answer with exactly one step, written 'a op b = c'. Examples:",
    ]
    for numbers in puzzles(count, seed=99):
        steps = solution(tuple(Fraction(n) for n in sorted(numbers)))
        lines.append(f"Numbers: {' '.join(map(str, numbers))}")
        lines.extend(f"  Step {k + 1}: {step}" for k, step in enumerate(steps))
    return "\n".join(lines)


@enact.register
@dataclass
class ToyLLM(enact.Invokable):
    """The toy LLM: one step for the numbers in the prompt, as ``"a op b = c"``.

    Its instructions (a few-shot prompt) are its state: stored once, shared by
    every call's record.
    """

    instructions: str
    error_rate: float = 0.3
    latency_s: float = 0.0

    def call(self, prompt: str) -> str:
        sample = search.draw()
        if self.latency_s:
            time.sleep(self.latency_s)
        seed = hashlib.sha256(f"{self.instructions}|{prompt}|{sample}".encode()).digest()
        rng = random.Random(seed)
        numbers = tuple(sorted(parse_numbers(prompt.split(":", 1)[1])))
        steps = steps_from(numbers)
        good = [s for s in steps if solvable(after(numbers, s[0], s[1], s[3]))]
        pick_good = good and rng.random() >= self.error_rate
        i, j, op, value = rng.choice(good) if pick_good else rng.choice(steps)
        if rng.random() < self.error_rate / 4:
            value += rng.choice((-1, 1))  # an arithmetic slip
        return f"{fmt(numbers[i])} {op} {fmt(numbers[j])} = {fmt(value)}"


@functools.cache
def instructions() -> str:
    return few_shot()


@enact.register
def solve24(numbers: list, error_rate: float = 0.3, latency_s: float = 0.0) -> list:
    """The scaffolding program: ask the LLM for a step three times; the steps, in order."""
    llm = ToyLLM(instructions(), error_rate, latency_s)
    left = [Fraction(n) for n in numbers]
    steps = []
    while len(left) > 1:
        prompt = "Numbers left:" + " ".join(fmt(x) for x in left)
        step = llm(prompt)
        steps.append(step)
        a, op, b, _, c = step.split()
        for x in (Fraction(a), Fraction(b)):
            if x in left:
                left.remove(x)
        left.append(Fraction(c))
    return steps


def check(numbers: list, steps: list) -> Fraction | None:
    """The value the steps derive from ``numbers``, or ``None`` if a step is wrong."""
    left = [Fraction(n) for n in numbers]
    for step in steps:
        a, op, b, eq, c = step.split()
        x, y, z = Fraction(a), Fraction(b), Fraction(c)
        if eq != "=" or op not in OPS or apply(x, op, y) != z:
            return None
        try:
            left.remove(x)
            left.remove(y)
        except ValueError:
            return None
        left.append(z)
    return left[0] if len(left) == 1 else None


@enact.register
def verify(invocation: enact.Invocation) -> float:
    """The exact verifier (the scorer)."""
    numbers = invocation.get_input().args[0]
    value = check(numbers, invocation.get_output())
    if value is None:
        return 0.0
    return 1.0 if value == 24 else 0.25 / (1 + float(abs(value - 24)))


def main(argv: list[str]) -> None:
    budget = int(argv[0]) if argv else 32
    program, scorer = solve24, verify
    if search.cluster_configured():
        import enact.worker as cluster
        from examples import game24  # the workers know examples.game24, not __main__

        program, scorer = game24.solve24, game24.verify
        store = cluster.store()
    else:
        store = enact.InMemoryStore()
    with store:
        for numbers in puzzles(5):
            result = search.mcts(
                program, (numbers,), scorer=scorer, budget=budget, parallelism=4, seed=0,
                stop_at=1.0,
            )  # fmt: skip
            steps = result.best.get_output() if result.best else []
            print(f"{numbers}: score {result.score} in {result.stats['sampled']} samples: {steps}")


if __name__ == "__main__":
    main(sys.argv[1:])

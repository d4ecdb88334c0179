"""Registered functions, resources and invokables that the unit tests run.

They live in an importable module (not in the test files) so that replay can
find them again by name. ``CALLS`` counts how often each body really executed:
tests reset it and check that replay reused recorded calls instead of running
them again.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
from typing import Any

import enact

CALLS: collections.Counter[str] = collections.Counter()

# Read by ``die_flow`` at run time, so a test can make a replay diverge.
SIDES = [6]


def count(name: str) -> None:
    CALLS[name] += 1


# Plain functions -------------------------------------------------------------


@enact.register
def roll_die(sides: int) -> int:
    """Roll a die."""
    count("roll_die")
    return random.randint(1, sides)


@enact.register
def roll_sum(num_rolls: int) -> int:
    """Roll dice."""
    count("roll_sum")
    return sum(roll_die(6) for _ in range(num_rolls))


@enact.register
def die_flow(num_rolls: int) -> int:
    """Roll dice with ``SIDES[0]`` sides: a flow whose calls a test can change."""
    count("die_flow")
    return sum(roll_die(SIDES[0]) for _ in range(num_rolls))


@enact.register
def nested_die_flow(num_rolls: int) -> int:
    """``die_flow`` one level down."""
    count("nested_die_flow")
    return die_flow(num_rolls) + die_flow(num_rolls)


@enact.register
def two_sums(num_rolls: int) -> int:
    """Two levels: two ``roll_sum`` calls of ``num_rolls`` dice each."""
    count("two_sums")
    return roll_sum(num_rolls) + roll_sum(num_rolls)


@enact.register
def leaf(x: int) -> int:
    count("leaf")
    return x + random.randint(0, 1_000_000)


@enact.register
def middle(x: int) -> list:
    count("middle")
    return [leaf(x), leaf(x + 1)]


@enact.register
def outer(x: int) -> list:
    """Three levels: outer -> middle -> leaf."""
    count("outer")
    return [middle(x), middle(x + 10)]


@enact.register
def add(a: int, b: int = 0) -> int:
    count("add")
    return a + b


@enact.register
def kwargs_flow() -> int:
    return add(1, b=2) + add(3)


@enact.register
def fail(message: str) -> int:
    count("fail")
    raise ValueError(message)


@enact.register
def calls_fail(message: str) -> int:
    """The exception of the child only passes through here."""
    count("calls_fail")
    roll_die(6)
    return fail(message)


@enact.register
def catches_fail() -> str:
    try:
        fail("caught")
    except ValueError as exc:
        return f"caught {exc}"
    return "not reached"


@enact.register
def reraises_other() -> int:
    try:
        fail("inner")
    except ValueError:
        raise KeyError("outer") from None
    return 0


class CustomError(Exception):
    """Not a resource: recorded as a ``NativeException``."""


@enact.register
def raise_custom() -> int:
    raise CustomError("custom message")


@enact.register
@dataclasses.dataclass
class Rejected(enact.ExceptionResource):
    """An exception that is a resource: recorded as itself and returned by invoke."""

    reason: str
    code: int = 0


@enact.register
def reject(reason: str) -> int:
    count("reject")
    raise Rejected(reason, 7)


@enact.register
def calls_reject(reason: str) -> int:
    roll_die(6)
    return reject(reason)


@enact.register
def mutate_input(values: list) -> int:
    values.append(len(values))
    return len(values)


@enact.register
def calls_mutate_input() -> int:
    return mutate_input([1, 2])


@enact.register
def copies_input(values: list) -> int:
    copy = list(values)
    copy.append(1)
    return len(copy)


@enact.register
def returns_unstorable() -> Any:
    return object()


@enact.register
def calls_unstorable() -> Any:
    return returns_unstorable()


@enact.register
@dataclasses.dataclass
class BreaksOwnState(enact.Invokable[None, int]):
    """Its state after the call cannot be stored, so the call cannot be recorded."""

    payload: Any = None

    def call(self) -> int:
        self.payload = object()
        return 1


@enact.register
def calls_breaks_own_state() -> int:
    roll_die(6)
    return BreaksOwnState()()


def plain_for_trust(x: int) -> int:
    """Registered by ``enact.register(plain_for_trust)`` below; the name stays plain."""
    return x


registered_plain_for_trust = enact.register(plain_for_trust)


def unregistered_roll(sides: int) -> int:
    """Not registered: can be invoked, but not replayed."""
    count("unregistered_roll")
    return roll_die(sides)


# Input requests -----------------------------------------------------------------


@enact.register
def human_rolls_die() -> int:
    """Query the user for a die roll."""
    count("human_rolls_die")
    return enact.request_input(requested_type=int, for_value="Please roll a die.")


@enact.register
def roll_dice_user_flow() -> int:
    """Request the number of die to roll and optionally sample die rolls."""
    count("roll_dice_user_flow")
    num_rolls = enact.request_input(requested_type=int, for_value="Total number of rolls?")
    return sum(human_rolls_die() for _ in range(num_rolls))


@enact.register
def ask_deep() -> int:
    """Level 3: asks for input."""
    count("ask_deep")
    roll_die(6)
    return enact.request_input(int, "deep", context={"level": 3})


@enact.register
def ask_middle() -> int:
    """Level 2."""
    count("ask_middle")
    roll_die(6)
    return ask_deep() + ask_deep()


@enact.register
def ask_top() -> int:
    """Level 1: two level-2 calls, four requests three levels down."""
    count("ask_top")
    roll_die(6)
    return ask_middle() * 100 + ask_middle()


@enact.register
def ask_twice() -> list:
    """Two identical requests: each must get its own answer."""
    first = enact.request_input(int, "same question")
    second = enact.request_input(int, "same question")
    return [first, second]


@enact.register
def ask_typed() -> str:
    """No requested type: the return annotation decides (str)."""
    return enact.request_input(for_value="name?")


@enact.register
def ask_untyped():  # noqa: ANN201 (deliberately unannotated)
    return enact.request_input(for_value="anything?")


@enact.register
def ask_str_list() -> list:
    return enact.request_input(list[str], "names?")


@enact.register
def ask_then_roll() -> int:
    """Rolls (expensive work) before and after asking."""
    before = roll_die(6) + roll_die(6)
    answer = enact.request_input(int, "bonus?")
    return before + answer + roll_die(6)


# Resources with registered methods, wrapped types, invokables ---------------------


@enact.register
@dataclasses.dataclass
class Counter(enact.Resource):
    """A resource whose registered method changes its state."""

    value: int = 0

    @enact.register
    def increment(self, by: int) -> int:
        count("Counter.increment")
        self.value += by + random.randint(0, 1_000)
        return self.value


@enact.register
def counter_flow(steps: int) -> int:
    """Makes its own counter: calls of a resource method record its state."""
    count("counter_flow")
    counter = Counter()
    for i in range(steps):
        counter.increment(i)
    return counter.value


class Tally:
    """A non-enact type with a registered method that changes it."""

    def __init__(self, total: int = 0) -> None:
        self.total = total

    @enact.register
    def add(self, amount: int) -> int:
        count("Tally.add")
        self.total += amount + random.randint(0, 1_000)
        return self.total

    def __repr__(self) -> str:
        return f"Tally({self.total})"


@enact.register
@dataclasses.dataclass
class TallyWrapper(enact.TypeWrapper[Tally]):
    total: int

    @classmethod
    def wrapped_type(cls) -> type[Tally]:
        return Tally

    @classmethod
    def wrap(cls, value: Tally) -> TallyWrapper:
        return cls(value.total)

    def unwrap(self) -> Tally:
        return Tally(self.total)


@enact.register
def tally_flow(steps: int) -> int:
    count("tally_flow")
    tally = Tally()
    for i in range(steps):
        tally.add(i)
    return tally.total


@enact.register
@dataclasses.dataclass
class DiceRoll(enact.Invokable[None, int]):
    """The seed's invokable without an input."""

    num_rolls: int
    sides_per_die: int

    def call(self) -> int:
        count("DiceRoll")
        return sum(roll_die(self.sides_per_die) for _ in range(self.num_rolls))


@enact.register
@dataclasses.dataclass
class Accumulator(enact.Invokable[int, int]):
    """A stateful invokable with an input: each call changes ``total``."""

    total: int = 0

    def call(self, amount: int) -> int:
        count("Accumulator")
        self.total += amount + random.randint(0, 1_000)
        return self.total


@enact.register
@dataclasses.dataclass
class AccumulatorFlow(enact.Invokable[int, int]):
    """Calls its own ``Accumulator`` repeatedly: the child's state evolves."""

    accumulator: Accumulator = dataclasses.field(default_factory=Accumulator)

    def call(self, steps: int) -> int:
        for i in range(steps):
            self.accumulator(i)
        return self.accumulator.total


@enact.register
@enact.typed_invokable(int, str)
@dataclasses.dataclass
class Stringify(enact.Invokable):
    """Explicit types: the input must be an int, the output a str."""

    broken: bool = False

    def call(self, value):  # noqa: ANN001, ANN201 (types come from typed_invokable)
        return value if self.broken else str(value)


@enact.typed_invokable(int, str)
@dataclasses.dataclass
class FailsTyped(enact.Invokable):
    """A typed invokable that raises: an exception override must give it a str."""

    def call(self, value):  # noqa: ANN001, ANN201 (types come from typed_invokable)
        count("FailsTyped")
        raise ValueError(f"no {value}")


@enact.register
def calls_fails_typed(value: int) -> Any:
    return FailsTyped()(value)


@enact.register
def stringify_via(value: Any, broken: bool = False) -> Any:
    """Calls ``Stringify`` as a child, where its types are checked."""
    return Stringify(broken)(value)


@enact.register
@dataclasses.dataclass
class AskInvokable(enact.Invokable[str, int]):
    """``request_input`` without a type takes the invokable's output type."""

    def call(self, prompt: str) -> int:
        return enact.request_input(for_value=prompt)


# Async --------------------------------------------------------------------------


@enact.register
async def roll_die_async(sides: int) -> int:
    count("roll_die_async")
    await asyncio.sleep(0)
    return random.randint(1, sides)


@enact.register
async def slow_then_roll(delay_ms: int) -> int:
    """Finishes after ``delay_ms``: later-started calls may end first."""
    count("slow_then_roll")
    await asyncio.sleep(delay_ms / 1000)
    return roll_die(6) + delay_ms * 100


@enact.register
async def gather_flow(num: int) -> list:
    """Children finish in reverse start order; the record follows start order."""
    return list(await asyncio.gather(*(slow_then_roll(10 * (num - i)) for i in range(num))))


@enact.register
async def sequential_async(num: int) -> int:
    total = 0
    for _ in range(num):
        total += await roll_die_async(6)
    return total


@enact.register
async def mixed_async() -> int:
    """Async and sync children, and an awaited nested async flow."""
    return roll_die(6) + await roll_die_async(6) + await sequential_async(2)


@enact.register
async def forgets_child() -> int:
    """Starts a child and returns while it still runs."""
    task = asyncio.ensure_future(slow_then_roll(50))
    await asyncio.sleep(0)
    del task
    return 1


@enact.register
async def never_awaits_child() -> int:
    """Creates a child call and never awaits it."""
    coroutine = roll_die_async(6)
    coroutine.close()
    return 1


@enact.register
async def fail_async(message: str) -> int:
    count("fail_async")
    await asyncio.sleep(0)
    raise ValueError(message)


@enact.register
async def calls_fail_async(message: str) -> int:
    await roll_die_async(6)
    return await fail_async(message)


@enact.register
async def fails_while_child_runs() -> list:
    """One gathered child fails while the other still runs."""
    return list(await asyncio.gather(slow_then_roll(50), fail_async("fast failure")))


@enact.register
async def ask_async(prompt: str) -> int:
    count("ask_async")
    return enact.request_input(int, prompt)


@enact.register
async def ask_two_concurrently() -> int:
    """Two requests gathered: both are pending at once."""
    first, second = await asyncio.gather(ask_async("first"), ask_async("second"))
    return first * 10 + second


@enact.register
async def ask_same_concurrently() -> list:
    """Two identical concurrent requests."""
    return list(await asyncio.gather(ask_async("same"), ask_async("same")))


@enact.register
async def ask_nested_async() -> int:
    """Async input request three levels deep (this -> ask_two_concurrently -> ask_async)."""
    return await ask_two_concurrently() + await roll_die_async(6)


@enact.register
@dataclasses.dataclass
class AsyncAccumulator(enact.AsyncInvokable[int, int]):
    total: int = 0

    async def call(self, amount: int) -> int:
        count("AsyncAccumulator")
        await asyncio.sleep(0)
        self.total += amount + random.randint(0, 1_000)
        return self.total


@enact.register
@dataclasses.dataclass
class AsyncAccumulatorFlow(enact.AsyncInvokable[int, int]):
    accumulator: AsyncAccumulator = dataclasses.field(default_factory=AsyncAccumulator)

    async def call(self, steps: int) -> int:
        for i in range(steps):
            await self.accumulator(i)
        return self.accumulator.total


# Fan-out against a record (enact.worker.map needs no cluster when the record has it all) ---

# ``squares`` runs a loop or a map over ``SQUARE_INPUTS[0]``: a test switches the
# program between two versions that share one name, as a changed program does.
SQUARE_MODE = ["loop"]
SQUARE_INPUTS: list[list[int]] = [[1, 2, 3]]


@enact.register
def square(x: int) -> int:
    count("square")
    if x < 0:
        raise ValueError(f"no square of {x} today")
    return x * x


@enact.register
def squares() -> list:
    if SQUARE_MODE[0] == "loop":
        return [square(x) for x in SQUARE_INPUTS[0]]
    import enact.worker  # celery is an extra; only this flow needs it

    return enact.worker.map(square, SQUARE_INPUTS[0])


# Read by ``flaky`` at run time: a test makes it fail, then succeed.
FLAKY = [True]


@enact.register
def flaky(x: int) -> int:
    count("flaky")
    if FLAKY[0]:
        raise ValueError("flaky failure")
    return x


@enact.register
def tolerant_flow() -> int:
    """Catches a failure of ``flaky``, rolls instead, then asks for input."""
    try:
        value = flaky(100)
    except ValueError:
        value = roll_die(6)
    return value + enact.request_input(int, "bonus?")


@enact.register
def steps(n: int) -> int:
    """``n`` top-level steps: each ``roll_die`` call is one step of the run."""
    count("steps")
    return sum(roll_die(6) for _ in range(n))

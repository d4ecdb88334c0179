"""Registered functions the worker tests run; the workers import this module."""

import os
import random
import time

import enact


@enact.register
def roll_die(sides: int) -> int:
    return random.randint(1, sides)


@enact.register
def roll_sum(num_rolls: int) -> int:
    return sum(roll_die(6) for _ in range(num_rolls))


@enact.register
def human_rolls_die():
    return enact.request_input(requested_type=int, for_value="Please roll a die.")


@enact.register
def roll_dice_user_flow():
    num_rolls = enact.request_input(requested_type=int, for_value="Total number of rolls?")
    return sum(human_rolls_die() for _ in range(num_rolls))


@enact.register
def square(x: int) -> int:
    return x * x


@enact.register
def fan_out_squares(n: int) -> int:
    import enact.worker

    return sum(enact.worker.map(square, range(n)))


def _mark(name: str) -> None:
    """Append a line to the side-channel file, to count executions across processes."""
    path = os.environ.get("ENACT_TEST_SIDE_CHANNEL")
    if path:
        with open(path, "a") as handle:
            handle.write(f"{name} {os.getpid()}\n")


@enact.register
def slow_step(i: int, delay_s: float) -> int:
    _mark(f"step{i}")
    time.sleep(delay_s)
    return i


@enact.register
def long_flow(steps: int, delay_s: float) -> int:
    return sum(slow_step(i, delay_s) for i in range(steps))


@enact.register
def failing_flow(x: int) -> int:
    roll_die(6)
    raise ValueError(f"bad input {x}")


@enact.register
def nap(delay_s: float) -> float:
    time.sleep(delay_s)
    return delay_s


@enact.register
def identity(x: int) -> int:
    return x


@enact.register
def marked_roll(sides: int) -> int:
    _mark("marked_roll")
    return random.randint(1, sides)


@enact.register
def two_rolls(x: int) -> list:
    return [marked_roll(6), marked_roll(6)]


@enact.register
def fan_out_rolls(n: int) -> list:
    import enact.worker

    return enact.worker.map(two_rolls, range(n))


@enact.register
def flaky_item(x: int) -> int:
    """Rolls (a recorded child), then fails if ``x`` is listed in the file named by
    ``ENACT_TEST_FAIL_FILE``: a test makes an item fail, then lets it succeed."""
    _mark(f"flaky_item{x}")
    roll = marked_roll(6)
    path = os.environ.get("ENACT_TEST_FAIL_FILE")
    if path and os.path.exists(path) and str(x) in open(path).read().split():
        raise ValueError(f"item {x} failed")
    return x * 10 + roll


@enact.register
def tolerant_flow() -> int:
    """Catches a failure of ``flaky_item(1)``, then waits for input."""
    try:
        value = flaky_item(1)
    except ValueError:
        value = -1
    return value + enact.request_input(int, "bonus?")


@enact.register
def fan_out_flaky(n: int) -> list:
    import enact.worker

    return enact.worker.map(flaky_item, range(n))


# Many tracked calls in one worker process, and what its memory looks like after.


@enact.register
def one_call(batch: int, i: int) -> int:
    return batch * 1_000_003 + i


@enact.register
def batch_of_calls(batch: int, calls: int) -> int:
    return sum(one_call(batch, i) for i in range(calls))


@enact.register
def many_calls(batches: int, calls: int) -> int:
    """``batches`` top-level steps of ``calls`` tracked calls each, every input distinct."""
    return sum(batch_of_calls(b, calls) for b in range(batches))


@enact.register
def worker_memory() -> dict:
    """Read inside the worker: its store's node cache, and the process's resident memory."""
    from enact import tree
    from enact.worker import runtime

    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {**tree.cache_stats(runtime.store()), "rss_mb": rss / 2**20, "pid": os.getpid()}


@enact.register
def ask_many(n: int) -> int:
    """Asks for ``n`` numbers, one at a time, and adds them up."""
    return sum(enact.request_input(int, f"number {i}?") for i in range(n))


@enact.register
def flaky_flow(x: int) -> int:
    """``flaky_item(x)`` as a whole flow (it fails while ``x`` is in the fail file)."""
    return flaky_item(x)


@enact.register
def marked_nap(i: int) -> int:
    _mark(f"nap{i}")
    time.sleep(0.4)
    return i


@enact.register
def nap_then_ask(delay_s: float) -> int:
    """One step, then a question: a cancel during the step must not leave it waiting."""
    nap(delay_s)
    return enact.request_input(int, "after the nap?")

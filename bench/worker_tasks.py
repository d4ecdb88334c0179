"""Functions for bench_worker.py; the benchmark's workers import this module."""

import time

import enact
from enact.worker.app import app


@enact.register
def square(x: int) -> int:
    return x * x


@app.task(name="bench.raw_square")
def raw_square(x: int) -> int:
    return x * x


@enact.register
def nap(delay_s: float) -> float:
    time.sleep(delay_s)
    return delay_s


@app.task(name="bench.raw_nap")
def raw_nap(delay_s: float) -> float:
    time.sleep(delay_s)
    return delay_s


@enact.register
def ask_one() -> int:
    return enact.request_input(requested_type=int, for_value="a number")


@enact.register
def answered_flow() -> int:
    return ask_one() + 1

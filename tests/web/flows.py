"""Registered functions the web tests run; the workers and the server import this module."""

import dataclasses
import enum
import random
import time

import enact


@enact.register
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@enact.register
@dataclasses.dataclass
class Point(enact.Resource):
    x: int
    y: int


@enact.register
def draw() -> int:
    return random.randint(1, 1000)


@enact.register
def pick_best(n: int) -> int:
    """Draw n samples and ask a person which one is best (by index)."""
    samples = [draw() for _ in range(n)]
    index = enact.request_input(
        requested_type=int, for_value="Which sample is best?", context=samples
    )
    return samples[index]


@enact.register
def choose_color() -> str:
    color = enact.request_input(requested_type=Color, for_value="Color?", context="a\nb")
    return color.value


@enact.register
def place() -> int:
    point = enact.request_input(requested_type=Point, for_value="Where?")
    return point.x + point.y


@enact.register
def confirm() -> bool:
    return enact.request_input(requested_type=bool, for_value="OK?")


@enact.register
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@enact.register
def explode(message: str) -> int:
    raise ValueError(message)


@enact.register
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds

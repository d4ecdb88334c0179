"""The seed's dice flows, importable by workers (``ENACT_IMPORTS=tests.deploy.dice_flows``).

``roll_dice_user_flow`` pauses twice over: once for the number of rolls, then once per roll.
"""

import random

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

"""The seed's dice flows, importable by workers (``ENACT_IMPORTS=tests.deploy.dice_flows``).

``roll_dice_user_flow`` pauses twice over: once for the number of rolls, then once per roll.
They are defined once, with the worker tests' flows; importing this module registers them.
"""

from tests.worker.flows import human_rolls_die, roll_dice_user_flow, roll_die, roll_sum

__all__ = ["human_rolls_die", "roll_dice_user_flow", "roll_die", "roll_sum"]

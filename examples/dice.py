"""The seed README's first examples: tracked dice rolls, rewind and replay.

Run with ``python examples/dice.py`` or ``enact run examples/dice.py:roll_sum 3``.
"""

import random

import enact


@enact.register
def roll_die(sides: int) -> int:
    """Roll a die."""
    return random.randint(1, sides)


@enact.register
def roll_sum(num_rolls: int) -> int:
    """Roll dice."""
    return sum(roll_die(6) for _ in range(num_rolls))


if __name__ == "__main__":
    with enact.InMemoryStore() as store:
        invocation = enact.invoke(roll_sum, (2,))
        print(enact.invocation_summary(invocation))

    # Rewind the last roll and replay it.
    with store:
        first_roll = invocation.rewind(1)  # Rewind by one roll.
        print("Partial invocation: ")
        print(enact.invocation_summary(first_roll))
        reroll_second = first_roll.replay()  # Replay the second die roll.
        print("\nReplayed invocation: ")
        print(enact.invocation_summary(reroll_second))

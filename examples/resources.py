"""The seed README's resource examples: stateful invokables, resources, type wrappers."""

import dataclasses
import random

import enact


@enact.register
def roll_die(sides: int) -> int:
    """Roll a die."""
    return random.randint(1, sides)


@enact.register
@dataclasses.dataclass
class DiceRoll(enact.Invokable[None, int]):
    num_rolls: int
    sides_per_die: int

    def call(self) -> int:
        return sum(roll_die(self.sides_per_die) for _ in range(self.num_rolls))


@enact.register
@dataclasses.dataclass
class MyResource(enact.Resource):
    x: int
    y: list = dataclasses.field(default_factory=list)


class Die:
    """Non-enact python type."""

    def __init__(self, sides):
        self.sides = sides

    @enact.register
    def roll(self):
        return random.randint(1, self.sides)


@enact.register
@dataclasses.dataclass
class DieWrapper(enact.TypeWrapper[Die]):
    """Wrapper for Die."""

    sides: int

    @classmethod
    def wrapped_type(cls):
        return Die

    @classmethod
    def wrap(cls, value: Die):
        """Translate to enact wrapper."""
        return DieWrapper(value.sides)

    def unwrap(self) -> Die:
        """Translate to basic python type."""
        return Die(self.sides)


if __name__ == "__main__":
    with enact.InMemoryStore() as store:
        dice_roll = DiceRoll(2, 6)
        invocation = enact.invoke(DiceRoll(2, 6))
        # modify the diceroll object
        dice_roll.num_rolls = 3
        dice_roll.sides_per_die = 8
        # Fetch the version associated with the first roll:
        print(enact.invocation_summary(invocation))
        print(f"Dice roll object associated with the invocation: "
              f"{invocation.request().invokable()}")
        print(f"Dice roll object after modification: {dice_roll}")

    with store:
        # Commit your resource to the store, obtain a reference.
        ref = enact.commit(MyResource(x=1, y=[2, 3]))
        # Check out your reference.
        print(ref.checkout())  # Equivalent to "print(ref())".

    with store:
        die = Die(sides=6)
        invocation = enact.invoke(die.roll)
        print(enact.invocation_summary(invocation))

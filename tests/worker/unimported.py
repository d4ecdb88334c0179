"""A registered function that the test workers do not import (not in ENACT_IMPORTS)."""

import enact


@enact.register
def cube(x: int) -> int:
    return x * x * x

"""enact 0.4's ``enact.acyclic``: the error for values that contain themselves.

Cycles are detected by the encoder (``enact.serialization``); this module keeps
0.4's name for the error.
"""

from enact.errors import CycleError

CycleDetected = CycleError

__all__ = ["CycleDetected"]

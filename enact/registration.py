"""enact 0.4's ``enact.registration``: the one ``register`` decorator."""

from enact.registry import register

__all__ = ["register"]

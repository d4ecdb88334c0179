"""enact 0.4's ``enact.invocation_generators``: driving a flow through its input requests."""

from enact.requests import InvocationGenerator

__all__ = ["InvocationGenerator"]

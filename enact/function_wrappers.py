"""enact 0.4's ``enact.function_wrappers``: registered functions and ``invoke``."""

from typing import Any

from enact.invokables import invoke, invoke_async
from enact.records import CallArgs
from enact.registry import Registry, register
from enact.wrappers import function_id


def get_wrapper_type(fn: Any) -> Any:
    """The tracked form of ``fn`` if it is a registered function, else ``None``."""
    target = getattr(fn, "fn", fn)
    try:
        return Registry.get().lookup_function(function_id(target))
    except AttributeError:  # not a function
        return None


__all__ = ["CallArgs", "get_wrapper_type", "invoke", "invoke_async", "register"]

"""enact 0.4's ``enact.pretty_print``: readable renderings of values and invocations."""

from enact.printing import PPrinter, PPValue, invocation_summary, pformat, pprint

__all__ = ["PPValue", "PPrinter", "invocation_summary", "pformat", "pprint"]

"""Records an attacker could write with nothing but the client API and a store.

Each names code that was never registered (``subprocess.getoutput``,
``os.system``, ``eval``, Celery's ``main`` in a worker's ``__main__``...) the way
stored data names functions: by module and qualified name. Tests commit them,
hand them to a worker or to replay, and check that nothing runs.
"""

from __future__ import annotations

import os
from typing import Any

from enact.records import BoundMethod, CallArgs, Invocation, Request, Response
from enact.store import Store
from enact.wrappers import BuiltinFunctionReference, FunctionReference


def shell_command(marker: os.PathLike[str] | str) -> str:
    """A command that leaves ``marker`` behind if a shell ever runs it."""
    return f"id > {os.fspath(marker)}"


def python_code(marker: os.PathLike[str] | str) -> str:
    """Python source that leaves ``marker`` behind if it is ever evaluated."""
    return f"open({os.fspath(marker)!r}, 'w').write('ran')"


def dangerous_targets(marker: os.PathLike[str] | str) -> dict[str, tuple[Any, list[Any]]]:
    """Name -> (function reference, arguments) for each unregistered target tried."""
    command = shell_command(marker)
    system = BuiltinFunctionReference(os.system.__module__, "system")
    return {
        "subprocess.getoutput": (FunctionReference("subprocess", "getoutput"), [command]),
        "os.system": (system, [command]),
        # A recorded method call passes its instance as the first argument.
        "os.system as a method": (BoundMethod(command, system), []),
        "builtins.eval as a method": (
            BoundMethod(python_code(marker), BuiltinFunctionReference("builtins", "eval")),
            [],
        ),
        "builtins.eval": (BuiltinFunctionReference("builtins", "eval"), [python_code(marker)]),
        "builtins.exec": (BuiltinFunctionReference("builtins", "exec"), [python_code(marker)]),
        # On a worker, __main__ is Celery's: its main() starts another worker.
        "__main__.main": (FunctionReference("__main__", "main"), []),
        "a lambda": (FunctionReference("tests.worker.flows", "<lambda>"), [command]),
    }


def start_request(store: Store, invokable: Any, args: list[Any]) -> str:
    """The digest of a flow's start request that calls ``invokable(*args)``."""
    request = Request(store.commit(invokable), store.commit(CallArgs(list(args), {})))
    return store.commit(request).digest


def invocation(store: Store, invokable: Any, args: list[Any]) -> Invocation:
    """An incomplete recorded invocation of ``invokable(*args)``: replaying it runs it."""
    request = Request(store.commit(invokable), store.commit(CallArgs(list(args), {})))
    request_ref = store.commit(request)
    response = Response(request.invokable, None, None, False, [])
    recorded = Invocation(request_ref, store.commit(response))
    store.commit(recorded)
    return recorded

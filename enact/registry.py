"""The registry: which types and functions this process can store and load.

Stored data names types by type id (``module.QualName``). Loading looks the id up
here and nowhere else: nothing is imported and no code runs because stored data
asked for it, so a type must be registered (its module imported) before data of
that type can be checked out.
"""

from __future__ import annotations

import threading
import types
from typing import Any, Callable, TypeVar

from enact.errors import RegistryError, UnregisteredResource
from enact.resources import Resource, ResourceBase

T = TypeVar("T")

# Installed by enact.invocations: turns a plain function into a tracked one.
# The registry cannot import invocations (which imports the registry), so the
# dependency is inverted through this hook.
FunctionRegistrar = Callable[[Callable[..., Any]], Any]


class Registry:
    """Process-wide table of registered resource types, wrappers and functions."""

    _instance: Registry | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._types: dict[str, type[ResourceBase]] = {}
        self._wrappers: dict[type, type[Any]] = {}
        self._functions: dict[str, Any] = {}
        self.function_registrar: FunctionRegistrar | None = None
        self.class_hooks: list[Callable[[type], None]] = []

    @classmethod
    def get(cls) -> Registry:
        """The process-wide registry."""
        if cls._instance is None:
            with cls._instance_lock:
                if cls._instance is None:
                    cls._instance = Registry()
        return cls._instance

    # Types -------------------------------------------------------------------

    def register_type(self, cls: type[ResourceBase]) -> None:
        if issubclass(cls, Resource):
            cls.field_names()  # fails early if it is not a dataclass
        self._types[cls.type_id()] = cls
        from enact.wrappers import TypeWrapper

        if issubclass(cls, TypeWrapper):
            wrapped = cls.wrapped_type()
            if not isinstance(wrapped, type):
                raise RegistryError(
                    f"{cls.__qualname__}.wrapped_type() must return a type, got {wrapped!r}"
                )
            self._wrappers[wrapped] = cls
        for hook in self.class_hooks:
            hook(cls)

    def register_wrapper(self, value_type: type, wrapper: type[Any]) -> None:
        """Store values of ``value_type`` through ``wrapper`` (a TypeWrapper class)."""
        self._wrappers[value_type] = wrapper

    def lookup(self, type_id: str) -> type[ResourceBase]:
        """The registered class for ``type_id``; ``UnregisteredResource`` if none."""
        try:
            return self._types[type_id]
        except KeyError:
            raise UnregisteredResource(
                f"type {type_id!r} is not registered in this process; import the module "
                "that defines it (decorated with @enact.register) before loading this data"
            ) from None

    def is_registered(self, cls: type) -> bool:
        return isinstance(cls, type) and issubclass(cls, ResourceBase) and (
            self._types.get(cls.type_id()) is cls
        )

    def wrapper_for(self, value_type: type) -> type[Any] | None:
        """The TypeWrapper class for ``value_type`` (exact type first, then its bases)."""
        wrapper = self._wrappers.get(value_type)
        if wrapper is not None:
            return wrapper
        for base in value_type.__mro__[1:]:
            wrapper = self._wrappers.get(base)
            if wrapper is not None and not getattr(wrapper, "exact_type_only", False):
                self._wrappers[value_type] = wrapper
                return wrapper
        return None

    # Functions ---------------------------------------------------------------

    def register_function(self, function_id: str, tracked: Any) -> None:
        self._functions[function_id] = tracked

    def lookup_function(self, function_id: str) -> Any | None:
        return self._functions.get(function_id)


def register(target: T) -> T:
    """Register a resource type, a type wrapper, an invokable, or a function.

    Classes must subclass ``ResourceBase`` (``Resource``, ``Invokable``,
    ``TypeWrapper``...). Functions become tracked callables: called inside an
    invocation they are recorded as child calls. Raises ``TypeError`` for
    anything else and ``ValueError`` for an already-bound method.
    """
    registry = Registry.get()
    if isinstance(target, type):
        if not issubclass(target, ResourceBase):
            raise TypeError(
                f"cannot register {target.__qualname__}: classes must subclass "
                "enact.Resource, enact.Invokable or enact.TypeWrapper"
            )
        registry.register_type(target)
        return target
    if _is_bound_method(target):
        raise ValueError(
            f"cannot register the bound method {target!r}; register the function in the "
            "class body instead (decorate the method where it is defined)"
        )
    if isinstance(target, (types.FunctionType, types.BuiltinFunctionType)):
        if registry.function_registrar is None:
            import enact.invocations  # noqa: F401  (installs the registrar)
        assert registry.function_registrar is not None
        return registry.function_registrar(target)  # type: ignore[no-any-return]
    raise TypeError(
        f"cannot register {target!r} of type {type(target).__qualname__}: expected a "
        "resource class, a TypeWrapper class, an Invokable class or a function"
    )


def _is_bound_method(target: object) -> bool:
    """Python bound methods, bound built-in methods, and registered methods
    accessed on an instance (``enact.invocations.BoundFunction``)."""
    if isinstance(target, types.MethodType):
        return True
    if isinstance(target, types.BuiltinMethodType):
        owner = getattr(target, "__self__", None)
        return owner is not None and not isinstance(owner, types.ModuleType)
    if type(target).__name__ == "BoundFunction":
        from enact.invocations import BoundFunction

        return isinstance(target, BoundFunction)
    return False

"""The registry: which types, functions and modules this process can store and load.

This is the trust boundary of stored data. Stored data and worker messages name
types, functions and modules by ``module.QualName``; loading looks each name up
here, and in a short fixed table of built-in types (``BUILTIN_TYPES``), and
nowhere else. Nothing is imported, no module attribute is read (so no module's
lazy ``__getattr__`` runs), and a name that is not registered raises
``UnregisteredResource`` naming it. So the code a worker can be made to run is
exactly the code its modules registered with ``@enact.register``.
"""

from __future__ import annotations

import builtins
import collections.abc
import enum
import inspect
import threading
import types
import typing
from typing import Any, Callable, Mapping, TypeVar

from enact import distribution_registry
from enact.errors import (
    InvalidRegistration,
    MissingWrapperError,
    RegistryError,
    UnregisteredResource,
)
from enact.resources import DataclassResource, ResourceBase, ResourceDict, TypeWrapperBase
from enact.types import TypeKey

T = TypeVar("T")

# Installed by enact.invokables: turns a plain function into a tracked one.
# The registry sits below invokables (which registers through it), so the
# dependency is inverted through this hook; ``enact`` always imports invokables.
FunctionRegistrar = Callable[[Callable[..., Any]], Any]


def _builtin_types() -> dict[str, type]:
    plain: list[Any] = [
        type(None), bool, int, float, complex, str, bytes, bytearray,
        list, tuple, dict, set, frozenset, object, range, slice,
    ]  # fmt: skip
    abstract = [
        collections.abc.Iterable, collections.abc.Iterator, collections.abc.Collection,
        collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Mapping,
        collections.abc.MutableMapping, collections.abc.Set, collections.abc.MutableSet,
    ]  # fmt: skip
    exceptions = [
        obj for obj in vars(builtins).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]  # fmt: skip
    special = [typing.Any] if isinstance(typing.Any, type) else []  # a class from 3.11
    return {type_name(t): t for t in [*plain, *abstract, *exceptions, *special]}


def shown(name: object, limit: int = 200) -> str:
    """``repr(name)``, cut to ``limit`` characters: names in messages come from
    stored data, which may hold a megabyte where a name should be."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(cls: type) -> str:
    """The name stored data uses for a class: ``module.QualName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


# The types stored data may name without registering them: plain values, the
# abstract collections used in annotations, and built-in exceptions. Fixed at
# import; none of them runs code of the data's choosing when called.
BUILTIN_TYPES: Mapping[str, type] = types.MappingProxyType(_builtin_types())


class Registry:
    """Process-wide table of registered resource types, wrappers and functions."""

    _instance: Registry | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._types: dict[str, type[ResourceBase]] = {}
        self._wrappers: dict[type, type[Any]] = {}
        # Wrappers that stand for plain field values (``IntWrapper`` for ``int``...):
        # they encode as the value itself, so the encoder never consults them.
        self._value_wrappers: dict[type, type[Any]] = {}
        # 0.4's user-defined function wrappers, by the function they stand for.
        self._function_wrappers: dict[Any, type[FunctionWrapper]] = {}
        self._functions: dict[str, Any] = {}
        # Other classes stored data may name (an Enum...), and modules
        # registered as values.
        self._classes: dict[str, type] = {}
        self._modules: dict[str, types.ModuleType] = {}
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
        if issubclass(cls, DataclassResource):
            cls.field_names()
        if cls.type_distribution_key() is None:
            distribution_registry.ensure_enact_registered()
            key = distribution_registry.registry().get_distribution_key(cls)
            if key is not None:
                cls.set_type_distribution_key(key)
        self._types[cls.type_id()] = cls
        if issubclass(cls, TypeWrapperBase) and not getattr(cls, "__abstractmethods__", None):
            wrapped = cls.wrapped_type()
            if not isinstance(wrapped, type):
                raise RegistryError(
                    f"{cls.__qualname__}.wrapped_type() must return a type, got {wrapped!r}"
                )
            if getattr(cls, "encodes_as_value", False):
                self._value_wrappers[wrapped] = cls
            else:
                self._wrappers[wrapped] = cls
        if issubclass(cls, FunctionWrapper):
            self._function_wrappers[cls.wrapper_function()] = cls
        for hook in self.class_hooks:
            hook(cls)

    def register_class(self, cls: type) -> None:
        """Let stored data name ``cls`` as a type (a field or a ``requested_type``
        holding the class itself), without making it a resource.

        ``enact.register`` does this for ``Enum`` classes; call it directly for
        other plain classes.
        """
        if not isinstance(cls, type):
            raise TypeError(f"register_class needs a class, got {cls!r}")
        self._classes[type_name(cls)] = cls

    def register_module(self, module: types.ModuleType) -> None:
        """Let stored data name ``module`` as a value (a field holding the module)."""
        if not isinstance(module, types.ModuleType):
            raise TypeError(f"register_module needs a module, got {module!r}")
        self._modules[module.__name__] = module

    def register_wrapper(self, value_type: type, wrapper: type[Any]) -> None:
        """Store values of ``value_type`` through ``wrapper`` (a TypeWrapper class)."""
        self._wrappers[value_type] = wrapper

    def lookup(self, type_id: str | TypeKey) -> type[ResourceBase]:
        """The registered class for ``type_id`` (or a ``TypeKey``); ``UnregisteredResource``
        if none."""
        if isinstance(type_id, TypeKey):
            type_id = type_id.name
        found = self._types.get(type_id) if isinstance(type_id, str) else None
        if found is None:
            raise UnregisteredResource(
                f"type {shown(type_id)} is not registered in this process; import the module "
                "that defines it (decorated with @enact.register) before loading this data"
            )
        return found

    def lookup_class(self, module: str, qualname: str) -> type:
        """The class stored data names ``module.qualname``: a built-in type, a
        registered resource type or a registered class. ``UnregisteredResource``
        if it is none of those; nothing is imported or read from a module.
        """
        name = f"{module}.{qualname}"
        found = BUILTIN_TYPES.get(name) or self._types.get(name) or self._classes.get(name)
        if found is None:
            raise UnregisteredResource(
                f"type {shown(name)} is not registered in this process: stored data may name "
                "only registered classes and built-in types. Register it (@enact.register on a "
                "resource or Enum class, or Registry.get().register_class(cls)) in a module "
                "this process imports (on workers: a module listed in ENACT_IMPORTS)"
            )
        return found

    def lookup_module(self, name: str) -> types.ModuleType:
        """A module registered as a value; ``UnregisteredResource`` otherwise."""
        module = self._modules.get(name) if isinstance(name, str) else None
        if module is None:
            raise UnregisteredResource(
                f"module {shown(name)} is not registered in this process: stored data may "
                "name only modules registered with enact.register(module)"
            )
        return module

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

    # The 0.4 API: register, wrap, unwrap ----------------------------------------

    def register(self, cls: type[ResourceBase]) -> type[ResourceBase]:
        """Register a resource class with this registry (``InvalidRegistration`` if not one)."""
        if not isinstance(cls, type) or not issubclass(cls, ResourceBase):
            raise InvalidRegistration(
                f"cannot register {cls!r}: only subclasses of enact.ResourceBase can be "
                "registered as types"
            )
        self.register_type(cls)
        return cls

    def get_type_wrapper(self, t: type) -> type[Any] | None:
        """The wrapper class that stores values of type ``t``, if any."""
        return self._value_wrappers.get(t) or self.wrapper_for(t)

    def wrap(self, value: Any) -> ResourceBase:
        """``value`` as a resource: itself if it is one, else its wrapper.

        ``MissingWrapperError`` if no wrapper is registered for it.
        """
        if isinstance(value, ResourceBase):
            return value
        # Classes (whatever their metaclass) are wrapped as types.
        wrapper = self.get_type_wrapper(type if isinstance(value, type) else type(value))
        if wrapper is not None:
            return wrapper.wrap(value)  # type: ignore[no-any-return]
        if callable(value):
            func = getattr(value, "__func__", value)
            function_wrapper = self._function_wrappers.get(func)
            if function_wrapper is not None:
                return function_wrapper.wrap(value)
        hint = " (a coroutine: did you forget to await it?)" if inspect.iscoroutine(value) else ""
        raise MissingWrapperError(
            f"cannot wrap a value of type {type(value).__qualname__}{hint}: Please register a "
            "TypeWrapper for it"
        )

    def wrap_type(self, t: type) -> type[ResourceBase]:
        """The resource class that stands for type ``t`` (``t`` itself for resources)."""
        if isinstance(t, type) and issubclass(t, ResourceBase):
            return t
        wrapper = self.get_type_wrapper(t)
        if wrapper is None:
            raise MissingWrapperError(
                f"cannot wrap the type {getattr(t, '__qualname__', t)!r}: Please register a "
                "TypeWrapper for it"
            )
        return wrapper

    def unwrap(self, value: Any) -> Any:
        """Inverse of ``wrap``: the value a wrapper stands for (others unchanged)."""
        if isinstance(value, TypeWrapperBase):
            return value.unwrap()
        if isinstance(value, FunctionWrapper):
            return value.wrapper_function()
        if isinstance(value, MethodWrapper):
            return types.MethodType(value.wrapper_function(), value.get_instance())
        return value

    def from_field_value(self, value: Any) -> Any:
        """A field value with every wrapper (instance or class) replaced by what it wraps."""
        t = type(value)
        if t is list:
            return [self.from_field_value(v) for v in value]
        if t is dict:
            return {k: self.from_field_value(v) for k, v in value.items()}
        if isinstance(value, TypeWrapperBase):
            return value.unwrap()
        if isinstance(value, type) and issubclass(value, TypeWrapperBase):
            return value.wrapped_type()
        return value

    def from_resource_dict(self, resource_dict: ResourceDict | ResourceBase) -> Any:
        """The resource a ``ResourceDict`` stands for; a wrapper stays a wrapper at the top.

        A resource passed in is returned as it is, so the output of a serializer
        (which decodes straight to resources) can be given here too.
        """
        if isinstance(resource_dict, ResourceBase):
            return resource_dict
        if not isinstance(resource_dict, ResourceDict):
            raise TypeError(f"expected a ResourceDict, got {type(resource_dict).__qualname__}")
        cls = self.lookup(resource_dict.type_info)
        return cls.from_fields(
            {k: self.from_field_value(self._from_dict_value(v)) for k, v in resource_dict.items()}
        )

    def _from_dict_value(self, value: Any) -> Any:
        if isinstance(value, ResourceDict):
            return self.from_resource_dict(value)
        if type(value) is list:
            return [self._from_dict_value(v) for v in value]
        if type(value) is dict:
            return {k: self._from_dict_value(v) for k, v in value.items()}
        return value

    def unwrap_type(self, t: type) -> type:
        """Inverse of ``wrap_type``."""
        if isinstance(t, type) and issubclass(t, TypeWrapperBase):
            return t.wrapped_type()
        return t

    # Functions ---------------------------------------------------------------

    def register_function(self, function_id: str, tracked: Any) -> None:
        self._functions[function_id] = tracked

    def lookup_function(self, function_id: str) -> Any | None:
        """The tracked registered function with this id, or ``None``."""
        return self._functions.get(function_id) if isinstance(function_id, str) else None

    def function(self, function_id: str) -> Any:
        """The tracked registered function with this id; ``UnregisteredResource`` if none."""
        tracked = self._functions.get(function_id) if isinstance(function_id, str) else None
        if tracked is None:
            raise UnregisteredResource(
                f"function {shown(function_id)} is not registered in this process: only functions "
                "and methods registered with @enact.register can be loaded from stored data "
                "or run on a worker. Register it in a module this process imports (on "
                "workers: a module listed in ENACT_IMPORTS)"
            )
        return tracked


class _FunctionResource(DataclassResource):
    """Fields as a dataclass's (usually none); what function and method wrappers share."""

    def set_from(self, other: Any) -> None:
        for name in self.field_names():
            setattr(self, name, getattr(other, name))

    @classmethod
    def wrapper_function(cls) -> Callable[..., Any]:
        """The function (as users call it) this class stands for."""
        raise NotImplementedError(f"{cls.__qualname__} must define wrapper_function()")

    @classmethod
    def wrapped_function(cls) -> Callable[..., Any]:
        """The function that does the work (``wrapper_function`` unless overridden)."""
        return cls.wrapper_function()


class FunctionWrapper(_FunctionResource):
    """A resource class that stands for one function (0.4's extension point).

    A subclass names the function with ``wrapper_function()``, and the
    ``MethodWrapper`` class that stands for it bound to an instance with
    ``method_wrapper()``. Registering it makes ``Registry.wrap``/``unwrap`` map
    the function to an instance of the class and back. (enact itself stores
    registered functions by reference, ``enact.wrappers.FunctionReference``.)
    """

    @classmethod
    def method_wrapper(cls) -> type[MethodWrapper]:
        raise NotImplementedError(f"{cls.__qualname__} must define method_wrapper()")

    @classmethod
    def wrap(cls, fn: Callable[..., Any]) -> ResourceBase:
        if inspect.ismethod(fn):
            return cls.method_wrapper().wrap(fn)
        if fn != cls.wrapper_function():
            raise InvalidRegistration(f"{cls.__qualname__} does not stand for {fn!r}")
        return cls()


class MethodWrapper(_FunctionResource):
    """A resource class that stands for one function bound to an instance.

    A subclass is a dataclass whose one field holds the instance.
    """

    @classmethod
    def wrap(cls, method: Callable[..., Any]) -> ResourceBase:
        if not inspect.ismethod(method) or method.__func__ != cls.wrapper_function():
            raise InvalidRegistration(f"{cls.__qualname__} does not stand for {method!r}")
        return cls(method.__self__)  # type: ignore[call-arg]

    def get_instance(self) -> Any:
        return getattr(self, self.field_names()[0])


def register(target: T) -> T:
    """Register a resource type, a type wrapper, an invokable, a function, an
    ``Enum`` class or a module.

    Resource classes must subclass ``ResourceBase`` (``Resource``, ``Invokable``,
    ``TypeWrapper``...). Functions become tracked callables: called inside an
    invocation they are recorded as child calls. An ``Enum`` class can then be
    stored (as a type, and its members as values), and a module as a value.
    Raises ``TypeError`` for anything else and ``ValueError`` for an
    already-bound method.
    """
    registry = Registry.get()
    if isinstance(target, type):
        if issubclass(target, enum.Enum):
            registry.register_class(target)
            return target
        if not issubclass(target, ResourceBase):
            raise TypeError(
                f"cannot register {target.__qualname__}: classes must subclass "
                "enact.Resource, enact.Invokable or enact.TypeWrapper (or enum.Enum)"
            )
        registry.register_type(target)
        return target
    if isinstance(target, types.ModuleType):
        registry.register_module(target)
        return target
    if _is_bound_method(target):
        raise ValueError(
            f"cannot register the bound method {target!r}; register the function in the "
            "class body instead (decorate the method where it is defined)"
        )
    if isinstance(target, (types.FunctionType, types.BuiltinFunctionType)):
        if registry.function_registrar is None:
            raise RegistryError("enact.invokables is not loaded: import enact first")
        return registry.function_registrar(target)  # type: ignore[no-any-return]
    raise TypeError(
        f"cannot register {target!r} of type {type(target).__qualname__}: expected a "
        "resource class, a TypeWrapper class, an Invokable class or a function"
    )


def _is_bound_method(target: object) -> bool:
    """Python bound methods, bound built-in methods, and registered methods accessed
    on an instance (``enact.invokables.BoundFunction``): anything bound to an object
    through ``__self__`` (a built-in function's ``__self__`` is its module)."""
    if isinstance(target, types.MethodType):
        return True
    owner = getattr(target, "__self__", None)
    return owner is not None and not isinstance(owner, types.ModuleType)

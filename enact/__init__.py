"""enact: track, store, rewind and replay generative executions.

This module is the public API; everything here is re-exported from the modules
that implement it.
"""

import sys

# enact 0.4's module paths are importable as attributes of the package too; importing
# enact.engine gives Invocation its engine methods.
from enact import acyclic as acyclic
from enact import contexts as contexts
from enact import digests as digests
from enact import engine as _engine  # noqa: F401
from enact import function_wrappers as function_wrappers
from enact import interfaces as interfaces
from enact import invocation_generators as invocation_generators
from enact import invocations as invocations
from enact import pretty_print as pretty_print
from enact import references as references
from enact import registration as registration
from enact import resource_digests as resource_digests
from enact import resource_registry as resource_registry
from enact import serialization as serialization
from enact import type_inference as type_inference
from enact import type_wrappers as type_wrappers
from enact import types as types
from enact import utils as utils
from enact import version as version
from enact.distribution_registry import (
    get_distribution_key,
    get_path_distribution_key,
    register_distribution,
)
from enact.errors import (
    AnswerTypeError,
    ConfigError,
    ConflictError,
    CycleError,
    DeserializationError,
    EnactError,
    FieldTypeError,
    IncompleteSubinvocationError,
    InputChanged,
    InputError,
    InputRequestOutsideInvocation,
    InvalidRegistration,
    InvocationBuildFailure,
    InvocationError,
    InvokableTypeError,
    MissingWrapperError,
    NoActiveStore,
    ObjectCorrupt,
    ObjectMissing,
    RefError,
    RegistryError,
    ReplayError,
    RequestedTypeUndetermined,
    SerializationError,
    StoreError,
    StoreUnavailable,
    UnknownInputRequest,
    UnregisteredResource,
)
from enact.field_values import FieldValue, ResourceDictValue, unwrap, wrap
from enact.invokables import AnyInvokable as _InvokableBase  # noqa: F401  (0.4's name)
from enact.invokables import (
    AsyncInvokable,
    AsyncInvokableBase,
    Invokable,
    InvokableBase,
    invoke,
    invoke_async,
    typed_invokable,
)
from enact.printing import PPrinter, PPValue, invocation_summary, pformat, pprint
from enact.records import (
    CallArgs,
    ExceptionResource,
    Invocation,
    NativeException,
    Request,
    Response,
)
from enact.refs import Ref
from enact.registry import Registry, register
from enact.replay import ReplayContext
from enact.requests import (
    InputRequest,
    InvocationGenerator,
    RequestInput,
    continue_invocation,
    continue_invocation_async,
    request_input,
)
from enact.resources import ImmutableResource, Resource, ResourceBase, ResourceDict, TypeWrapperBase
from enact.serialization import JsonSerializer, MsgpackSerializer, Serializer
from enact.store import (
    FileStore,
    InMemoryStore,
    Store,
    checkout,
    checkout_async,
    commit,
    commit_async,
    resource_digest,
)
from enact.stores.file import FileBackend
from enact.stores.memory import MemoryBackend
from enact.type_inference import from_python_type, to_python_type
from enact.types import DistributionKey, TypeDescriptor, TypeKey
from enact.version import __version__ as __version__
from enact.wrappers import TypeWrapper, deepcopy

InMemoryBackend = MemoryBackend

# enact's own package may be stored as a value and loaded back by name, as in enact
# 0.4 (stored data names only registered modules, issue 9): loading it runs no code
# that is not running already. Its submodules and every other module stay unloadable
# unless registered with ``enact.register(module)``.
Registry.get().register_module(sys.modules[__name__])

__all__ = [
    "AnswerTypeError",
    "AsyncInvokable",
    "AsyncInvokableBase",
    "CallArgs",
    "ConfigError",
    "ConflictError",
    "CycleError",
    "DeserializationError",
    "DistributionKey",
    "EnactError",
    "ExceptionResource",
    "FieldTypeError",
    "FieldValue",
    "FileBackend",
    "FileStore",
    "ImmutableResource",
    "InMemoryBackend",
    "InMemoryStore",
    "IncompleteSubinvocationError",
    "InputChanged",
    "InputError",
    "InputRequest",
    "InputRequestOutsideInvocation",
    "InvalidRegistration",
    "Invocation",
    "InvocationBuildFailure",
    "InvocationError",
    "InvocationGenerator",
    "Invokable",
    "InvokableBase",
    "InvokableTypeError",
    "JsonSerializer",
    "MemoryBackend",
    "MissingWrapperError",
    "MsgpackSerializer",
    "NativeException",
    "NoActiveStore",
    "ObjectCorrupt",
    "ObjectMissing",
    "PPValue",
    "PPrinter",
    "Ref",
    "RefError",
    "Registry",
    "RegistryError",
    "ReplayContext",
    "ReplayError",
    "Request",
    "RequestInput",
    "RequestedTypeUndetermined",
    "Resource",
    "ResourceBase",
    "ResourceDict",
    "ResourceDictValue",
    "Response",
    "SerializationError",
    "Serializer",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TypeDescriptor",
    "TypeKey",
    "TypeWrapper",
    "TypeWrapperBase",
    "UnknownInputRequest",
    "UnregisteredResource",
    "checkout",
    "checkout_async",
    "commit",
    "commit_async",
    "continue_invocation",
    "continue_invocation_async",
    "deepcopy",
    "from_python_type",
    "get_distribution_key",
    "get_path_distribution_key",
    "invocation_summary",
    "invoke",
    "invoke_async",
    "pformat",
    "pprint",
    "register",
    "register_distribution",
    "request_input",
    "resource_digest",
    "to_python_type",
    "typed_invokable",
    "unwrap",
    "wrap",
]

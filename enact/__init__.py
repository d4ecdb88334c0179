"""enact: track, store, rewind and replay generative executions.

This module is the public API; everything here is re-exported from the modules
that implement it.
"""

from enact import engine as _engine  # noqa: F401  (gives Invocation its engine methods)
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
from enact.resources import (
    DistributionKey,
    ImmutableResource,
    Resource,
    ResourceBase,
    TypeDescriptor,
    TypeKey,
    get_distribution_key,
    get_path_distribution_key,
    register_distribution,
)
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
from enact.wrappers import TypeWrapper, deepcopy, from_python_type, to_python_type, unwrap, wrap

InMemoryBackend = MemoryBackend

__version__ = "0.5.0"

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
    "InvocationGenerator",
    "Invokable",
    "InvokableBase",
    "JsonSerializer",
    "MemoryBackend",
    "MsgpackSerializer",
    "NativeException",
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
    "Response",
    "SerializationError",
    "Serializer",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TypeDescriptor",
    "TypeKey",
    "TypeWrapper",
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

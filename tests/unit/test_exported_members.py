"""The public door: ``enact.__all__`` is sorted, complete, and leaks nothing."""

from __future__ import annotations

import types

import enact

# Every name API.md promises, importable from ``enact``, by section.
API_SECTIONS = {
    "1. Values, resources and registration": """
        FieldTypeError ResourceBase Resource ImmutableResource TypeWrapper wrap unwrap
        deepcopy to_python_type from_python_type register Invokable typed_invokable
        Registry RegistryError UnregisteredResource TypeKey DistributionKey TypeDescriptor
        register_distribution get_distribution_key get_path_distribution_key""",
    "2. Content addressing, refs and stores": """
        Ref RefError commit checkout commit_async checkout_async resource_digest Store
        InMemoryStore FileStore InMemoryBackend FileBackend Serializer JsonSerializer
        SerializationError DeserializationError""",
    "3. Invocations": """
        Invokable AsyncInvokable InvokableBase AsyncInvokableBase invoke invoke_async
        Request Response Invocation ExceptionResource NativeException InputChanged
        IncompleteSubinvocationError ReplayError ReplayContext""",
    "4. Input from outside": """
        request_input InputRequest InputRequestOutsideInvocation RequestInput
        RequestedTypeUndetermined continue_invocation continue_invocation_async
        InvocationGenerator""",
    "5. Printing": "invocation_summary pformat pprint PPrinter PPValue",
    "6. Errors": """
        FieldTypeError RefError RegistryError UnregisteredResource ReplayError InputChanged
        IncompleteSubinvocationError InputRequestOutsideInvocation RequestedTypeUndetermined
        SerializationError DeserializationError""",
}
API_NAMES = {name for names in API_SECTIONS.values() for name in names.split()}

# Public beyond the API page, on purpose: the error families of errors.py, a few
# names the implementation documents, and names enact 0.4 had at the top level
# (FieldValue ... TypeWrapperBase). Adding a name to enact means adding it here.
EXTRA_NAMES = {
    "AnswerTypeError", "CallArgs", "ConfigError", "ConflictError", "CycleError",
    "EnactError", "InputError", "InvalidRegistration", "MemoryBackend", "MsgpackSerializer",
    "ObjectCorrupt", "ObjectMissing", "StoreError", "StoreUnavailable", "UnknownInputRequest",
    "FieldValue", "InvocationBuildFailure", "InvocationError", "InvokableTypeError",
    "MissingWrapperError", "NoActiveStore", "ResourceDict", "ResourceDictValue",
    "TypeWrapperBase",
}  # fmt: skip


def test_all_is_sorted_and_unique() -> None:
    assert enact.__all__ == sorted(enact.__all__)
    assert len(enact.__all__) == len(set(enact.__all__))


def test_every_api_name_is_exported_and_importable() -> None:
    missing = sorted(API_NAMES - set(enact.__all__))
    assert missing == []
    for name in API_NAMES:
        assert getattr(enact, name) is not None, name


def test_no_name_leaks_into_all() -> None:
    assert sorted(set(enact.__all__) - API_NAMES - EXTRA_NAMES) == []
    assert sorted((API_NAMES | EXTRA_NAMES) - set(enact.__all__)) == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from enact import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == enact.__all__


def test_no_public_attribute_outside_all() -> None:
    """Every public non-module attribute of the package is in ``__all__``."""
    public = {
        name
        for name, value in vars(enact).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(public - set(enact.__all__)) == []


def test_errors_are_exceptions() -> None:
    for name in enact.__all__:
        if name.endswith("Error") or name in {"InputChanged", "UnregisteredResource"}:
            assert issubclass(getattr(enact, name), enact.EnactError), name

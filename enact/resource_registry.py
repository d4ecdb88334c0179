"""enact 0.4's ``enact.resource_registry``: the registry, wrapping, and field values."""

from enact.errors import MissingWrapperError, RegistryError, UnregisteredResource
from enact.field_values import (
    BoolWrapper,
    BytesWrapper,
    DictWrapper,
    FieldValueWrapper,
    FloatWrapper,
    IntWrapper,
    ListWrapper,
    NoneWrapper,
    PrimitiveWrapper,
    ResourceTypeWrapper,
    StrWrapper,
    from_field_value,
    from_resource_dict,
    to_field_value,
    unwrap,
    unwrap_type,
    wrap,
    wrap_type,
)
from enact.registry import FunctionWrapper, MethodWrapper, Registry
from enact.registry import register as register
from enact.type_inference import from_python_type, to_python_type
from enact.wrappers import deepcopy

register_wrapper = register

__all__ = [
    "BoolWrapper",
    "BytesWrapper",
    "DictWrapper",
    "FieldValueWrapper",
    "FloatWrapper",
    "FunctionWrapper",
    "IntWrapper",
    "ListWrapper",
    "MethodWrapper",
    "MissingWrapperError",
    "NoneWrapper",
    "PrimitiveWrapper",
    "Registry",
    "RegistryError",
    "ResourceTypeWrapper",
    "StrWrapper",
    "UnregisteredResource",
    "deepcopy",
    "from_field_value",
    "from_python_type",
    "from_resource_dict",
    "register",
    "register_wrapper",
    "to_field_value",
    "to_python_type",
    "unwrap",
    "unwrap_type",
    "wrap",
    "wrap_type",
]

"""enact 0.4's ``enact.interfaces``: the resource interface and its value types."""

from enact.errors import EnactError as FrameworkError
from enact.errors import FieldTypeError
from enact.field_values import FieldValue, ResourceDictValue
from enact.resources import ResourceBase, ResourceDict, TypeWrapperBase

# 0.4 raised this where an optional method (``set_from``...) was not implemented.
ImplementationMissing = NotImplementedError

__all__ = [
    "FieldTypeError",
    "FieldValue",
    "FrameworkError",
    "ImplementationMissing",
    "ResourceBase",
    "ResourceDict",
    "ResourceDictValue",
    "TypeWrapperBase",
]

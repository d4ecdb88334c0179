"""enact 0.4's ``enact.type_wrappers``: the built-in wrappers of non-field types."""

from enact.field_values import TypeDescriptorWrapper
from enact.wrappers import FrozenSetWrapper, SetWrapper, TupleWrapper
from enact.wrappers import ModuleReference as ModuleWrapper

__all__ = [
    "FrozenSetWrapper",
    "ModuleWrapper",
    "SetWrapper",
    "TupleWrapper",
    "TypeDescriptorWrapper",
]

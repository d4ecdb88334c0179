"""Storage backends. Memory and file load at once; S3 and Redis on first use.

``S3Backend`` needs ``pip install 'enact[s3]'`` and ``RedisBackend``/``RedisState``
need ``pip install 'enact[redis]'``; touching them without the extra raises an
``ImportError`` that names the command.

Importing this package registers every backend in the core's scheme -> class
table (``enact.backend.register_scheme``), which is how ``enact.Store(url)`` finds
them: the core never imports this package.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from enact.backend import register_scheme
from enact.stores.file import FileBackend
from enact.stores.memory import MemoryBackend

_LAZY = {
    "S3Backend": ("enact.stores.s3", "s3"),
    "RedisBackend": ("enact.stores.redis", "redis"),
    "RedisState": ("enact.stores.redis", "redis"),
}

# URL scheme -> backend class name (in this package).
SCHEMES = {
    "memory": "MemoryBackend",
    "file": "FileBackend",
    "s3": "S3Backend",
    "redis": "RedisBackend",
    "rediss": "RedisBackend",
}

__all__ = ["SCHEMES", "FileBackend", "MemoryBackend", "RedisBackend", "RedisState", "S3Backend"]


def __getattr__(name: str) -> Any:
    try:
        module_name, extra = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'enact.stores' has no attribute {name!r}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"enact.stores.{name} needs an optional dependency ({exc.name}): "
            f"pip install 'enact[{extra}]'"
        ) from exc
    return getattr(module, name)


def _load(name: str) -> Any:
    return globals()[name] if name in globals() else __getattr__(name)


for _scheme, _name in SCHEMES.items():
    register_scheme(_scheme, functools.partial(_load, _name))

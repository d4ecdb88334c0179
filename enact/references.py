"""enact 0.4's ``enact.references``: refs, stores and storage backends."""

from enact.backend import Backend as StorageBackend
from enact.errors import ObjectMissing as NotFound
from enact.errors import RefError
from enact.inspection import DistributionKeyError
from enact.refs import PackedResource, Ref
from enact.store import (
    FileStore,
    InMemoryStore,
    Store,
    checkout,
    checkout_async,
    commit,
    commit_async,
)
from enact.stores.file import FileBackend
from enact.stores.memory import MemoryBackend as InMemoryBackend

__all__ = [
    "DistributionKeyError",
    "FileBackend",
    "FileStore",
    "InMemoryBackend",
    "InMemoryStore",
    "NotFound",
    "PackedResource",
    "Ref",
    "RefError",
    "StorageBackend",
    "Store",
    "checkout",
    "checkout_async",
    "commit",
    "commit_async",
]

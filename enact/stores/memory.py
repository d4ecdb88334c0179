"""A process-local backend: a dict from digest to bytes, safe across threads."""

from __future__ import annotations

import threading
from typing import Any, Mapping, Sequence

from enact.backend import BackendQueries, TypeDescriptor, TypeKey


class MemoryBackend(BackendQueries):
    """Keeps packed objects in memory; nothing survives the process."""

    url = "memory://"
    # The store keeps no second copy of these bytes, and need not offload async I/O.
    in_process = True

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._types: dict[str, dict[str, TypeDescriptor | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> MemoryBackend:
        """``memory://``: a new, empty backend (nothing is shared between two of them)."""
        return cls()

    def has(self, digests: Sequence[str]) -> list[bool]:
        objects = self._objects
        return [d in objects for d in digests]

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        get = self._objects.get
        return [get(d) for d in digests]

    def put(self, objects: Mapping[str, bytes]) -> None:
        with self._lock:
            self._objects.update(objects)

    def register_type(
        self, type_key: TypeKey, field_types: Mapping[str, TypeDescriptor | None]
    ) -> None:
        """Record the field types of a type (type metadata, by type name)."""
        self._types[type_key.name] = dict(field_types)

    def get_type(self, type_key: TypeKey) -> dict[str, TypeDescriptor | None] | None:
        found = self._types.get(type_key.name)
        return None if found is None else dict(found)

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        return f"MemoryBackend({len(self._objects)} objects)"

"""Content digests: the SHA-256 of an object's packed bytes, as lowercase hex.

A digest names an object everywhere (stores, refs, keys on S3 and Redis). It is
computed over the complete packed object, so any backend can verify what it reads
without decoding it, and a store can trust nothing it did not hash itself.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from enact.errors import EnactError, ObjectCorrupt

DIGEST_LENGTH = 64
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")

_sha256 = hashlib.sha256


def digest_bytes(data: bytes) -> str:
    """Return the digest (hex SHA-256) of packed object bytes."""
    return _sha256(data).hexdigest()


def is_digest(value: object) -> bool:
    """True if ``value`` is a well-formed digest string."""
    return isinstance(value, str) and _DIGEST_RE.match(value) is not None


def verify(digest: str, data: bytes, where: str = "") -> bytes:
    """Return ``data`` if it hashes to ``digest``; raise ``ObjectCorrupt`` otherwise.

    ``where`` names the place the bytes came from (a path, a bucket and key) so
    the error says which stored object is damaged.
    """
    actual = _sha256(data).hexdigest()
    if actual != digest:
        location = f" at {where}" if where else ""
        raise ObjectCorrupt(
            f"object {digest}{location} is corrupt: its {len(data)} bytes hash to {actual}"
        )
    return data


# The canonical encoder, installed by enact.serialization: that module uses the
# helpers above, so it hands its encoder down rather than this module importing it.
_pack_value: Callable[[Any], bytes] | None = None


def install_value_packer(pack: Callable[[Any], bytes]) -> None:
    """Set the encoder ``digest`` uses (``enact.serialization`` installs it on import)."""
    global _pack_value
    _pack_value = pack


def digest(value: Any) -> str:
    """The digest of a value: any storable value, a resource or a ``ResourceDict``.

    Equal to the ref id a store gives the value (``resource_digest``).
    """
    if _pack_value is None:
        raise EnactError("enact.serialization is not loaded: import enact first")
    return digest_bytes(_pack_value(value))

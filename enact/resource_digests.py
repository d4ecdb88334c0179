"""enact 0.4's ``enact.resource_digests``: the digest of a value without storing it."""

from enact.store import resource_digest

__all__ = ["resource_digest"]

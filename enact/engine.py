"""Gives ``Invocation`` its navigation, rewind and replay methods.

``enact.records`` defines ``Invocation``, a stored record, below the engine that
builds, walks and replays such records (``enact.tree``, ``enact.replay``,
``enact.requests``). Its methods that need the engine delegate to the
``records.InvocationEngine`` installed here, when ``enact`` is imported: the one
place where a record reaches up to the engine, done once and explicitly, instead
of a function-local import in every method.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from enact import replay, requests
from enact.records import Invocation, install_engine
from enact.requests import InputRequest
from enact.tree import Path


class _Engine:
    """``records.InvocationEngine``, implemented by the engine's modules."""

    def call_at(self, invocation: Invocation, path: Sequence[int]) -> Invocation:
        return replay.call_at(invocation, path)

    def walk(self, invocation: Invocation) -> Iterator[tuple[Path, Invocation]]:
        return replay.walk(invocation)

    def leaf_paths(self, invocation: Invocation) -> list[Path]:
        return replay.leaf_paths(invocation)

    def rewind(self, invocation: Invocation, num_calls: int) -> Invocation:
        return replay.rewind(invocation, num_calls)

    def rewind_to(self, invocation: Invocation, path: Sequence[int]) -> Invocation:
        return replay.rewind_to(invocation, path)

    def rewind_leaves(self, invocation: Invocation, num_leaves: int) -> Invocation:
        return replay.rewind_leaves(invocation, num_leaves)

    def replay(self, invocation: Invocation, strict: bool, options: dict[str, Any]) -> Invocation:
        return replay.replay(invocation, strict=strict, **options)

    async def replay_async(
        self, invocation: Invocation, strict: bool, options: dict[str, Any]
    ) -> Invocation:
        return await replay.replay_async(invocation, strict=strict, **options)

    def pending_input_requests(self, invocation: Invocation) -> list[tuple[Path, InputRequest]]:
        return requests.pending_input_requests(invocation)


install_engine(_Engine())

"""What the cluster keeps alive, for gc: named refs, flows and pending input requests.

``gc_roots()`` returns the root sources of the configured Redis: its named refs
(``RedisState``) and ``FlowRoots`` (every flow's start, head and output, and
every pending input request's invocation). A finished flow's Redis state
expires after its retention; from then on its records are collectable unless
pinned (``enact pin FLOW``).
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

from enact.errors import UnknownFlow
from enact.worker import runtime
from enact.worker.flows import FlowTable


class FlowRoots:
    """The digests flows still need: start, head and output of each, and the
    invocation of every pending input request."""

    def __init__(self, state: Any = None) -> None:
        self.state = state if state is not None else runtime.state()

    def gc_roots(self) -> Iterator[tuple[str, str]]:
        table = FlowTable(self.state)
        for flow_id in table.ids(sys.maxsize):
            try:
                record = table.get(flow_id)
            except UnknownFlow:
                continue  # expired since the listing
            for name in ("start", "head", "output"):
                digest = getattr(record, name)
                if digest:
                    yield digest, f"flow {flow_id} {name}"
        for request in self.state.pending_inputs():
            yield request.invocation, f"input request {request.id}"
            if request.answer:
                yield request.answer, f"answer to input request {request.id}"


def gc_roots(state: Any = None) -> list[Any]:
    """The root sources of the configured cluster: named refs, and flows."""
    state = state if state is not None else runtime.state()
    return [state, FlowRoots(state)]


def flow_pin_target(flow_id: str, state: Any = None) -> str:
    """The digest to pin to keep a flow's records: its head, or its start if it has none."""
    record = FlowTable(state if state is not None else runtime.state()).get(flow_id)
    return record.head or record.start

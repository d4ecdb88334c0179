"""What the cluster keeps alive, for gc: named refs, flows and pending input requests.

``gc_roots()`` returns the root sources of the configured Redis: its named refs
(``RedisState``) and ``FlowRoots`` (every flow's start, head and output, and
every input request's invocation, from ``FlowState.roots()``). A finished
flow's Redis state expires after its retention (``ENACT_FLOW_RETENTION_S``);
from then on its records are collectable unless pinned (``enact pin FLOW``).
"""

from __future__ import annotations

from typing import Any, Iterator

from enact.worker import runtime
from enact.worker.flowstate import FlowState


class FlowRoots:
    """The digests flows still need (``FlowState.roots``)."""

    def __init__(self, state: FlowState | None = None) -> None:
        self.state = state if state is not None else runtime.flow_state()

    def gc_roots(self) -> Iterator[tuple[str, str]]:
        return self.state.roots()

    def ping(self) -> None:
        self.state.ping()


def gc_roots(state: Any = None, flow_state: FlowState | None = None) -> list[Any]:
    """The root sources of the configured cluster: named refs, and flows."""
    state = state if state is not None else runtime.state()
    return [state, FlowRoots(flow_state)]


def flow_pin_target(flow_id: str, state: FlowState | None = None) -> str:
    """The digest to pin to keep a flow's records: its head, or its start if it has none."""
    record = (state if state is not None else runtime.flow_state()).get(flow_id)
    return record.head or record.start

"""Run enact flows on a Celery cluster.

``celery -A enact.worker worker`` (or ``enact worker``) starts a worker. From any
machine with the same ``ENACT_*`` configuration::

    flow = enact.worker.submit(roll_dice_user_flow)
    flow.wait()                                   # -> "waiting"
    for request in enact.worker.pending_inputs(flow.id):
        enact.worker.answer(request.id, 6)
    flow.wait(); flow.result()

Flows survive their workers: a lease and every worker's recovery loop put a
dead worker's flow back to work within seconds (``enact.worker.flowstate``).
This package depends on the core, never the reverse.
"""

from enact.worker import gcroots, runtime
from enact.worker.app import app, celery_config, make_app, reconfigure
from enact.worker.fanout import map, replay_many
from enact.worker.flows import (
    Flow,
    answer,
    cancel,
    fork,
    get_flow,
    list_flows,
    pending_inputs,
    retry,
    submit,
    submit_invocation,
)
from enact.worker.flowstate import FlowRecord, FlowState, FlowStatus, PendingInput
from enact.worker.gcroots import gc_roots
from enact.worker.runtime import flow_state, state, store

__all__ = [
    "Flow",
    "FlowRecord",
    "FlowState",
    "FlowStatus",
    "PendingInput",
    "answer",
    "app",
    "cancel",
    "celery_config",
    "flow_state",
    "fork",
    "gc_roots",
    "gcroots",
    "get_flow",
    "list_flows",
    "make_app",
    "map",
    "pending_inputs",
    "reconfigure",
    "replay_many",
    "retry",
    "runtime",
    "state",
    "store",
    "submit",
    "submit_invocation",
]

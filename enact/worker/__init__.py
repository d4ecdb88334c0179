"""Run enact flows on a Celery cluster.

``celery -A enact.worker worker`` (or ``enact worker``) starts a worker. From any
machine with the same ``ENACT_*`` configuration::

    flow = enact.worker.submit(roll_dice_user_flow)
    flow.wait()                                   # -> "waiting"
    for request in enact.worker.pending_inputs(flow.id):
        enact.worker.answer(request.id, 6)
    flow.wait(); flow.result()

This package depends on the core, never the reverse.
"""

from enact.worker import runtime
from enact.worker.app import app, celery_config, make_app, reconfigure
from enact.worker.fanout import map, replay_many
from enact.worker.flows import (
    Flow,
    FlowRecord,
    answer,
    get_flow,
    pending_inputs,
    submit,
)
from enact.worker.gcroots import gc_roots
from enact.worker.runtime import state, store

__all__ = [
    "Flow",
    "FlowRecord",
    "answer",
    "app",
    "celery_config",
    "gc_roots",
    "get_flow",
    "make_app",
    "map",
    "pending_inputs",
    "reconfigure",
    "replay_many",
    "runtime",
    "state",
    "store",
    "submit",
]

"""The recovery loop: every worker puts back to work the flows nobody is running.

A thread in each worker process (started with the worker, see
``enact.worker.tasks``) looks, every ``ENACT_RECOVERY_INTERVAL_S`` (2 s):

* for running flows whose lease lapsed (their worker died or lost Redis): each
  is requeued, exactly once however many workers look (the script checks the
  lease again), and its task sent;
* for queued flows whose task is due (its send failed, or nothing started it
  within ``ENACT_FLOW_REDISPATCH_S``, doubling for each further attempt): one
  worker claims the send and sends it again;
* for flows finished longer ago than the retention: their ids are pruned.

So a flow of a worker killed with ``kill -9`` continues elsewhere about one
lease (``ENACT_FLOW_LOCK_TTL_S``, 15 s) plus one period later, without waiting
for the broker to redeliver anything (a Redis broker does so only after its
visibility timeout, an hour by default). No extra service is needed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from enact.worker import runtime
from enact.worker.flows import dispatch
from enact.worker.flowstate import FlowState

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 60.0

_lock = threading.Lock()
_loop: RecoveryLoop | None = None


class RecoveryLoop:
    """Requeues lapsed flows and resends due tasks, every ``interval_s`` seconds."""

    def __init__(self, state: FlowState, interval_s: float) -> None:
        self.state = state
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._failing = False

    def run_once(self) -> dict[str, int]:
        """One pass; returns how many flows it requeued and tasks it sent."""
        counts = {"requeued": 0, "sent": 0, "cancelled": 0, "pruned": 0}
        state = self.state
        for flow_id in state.lapsed():
            outcome = state.requeue(flow_id)
            if outcome == "requeued":
                log.warning("flow %s: its lease lapsed; requeued", flow_id)
                counts["requeued"] += 1
                counts["sent"] += dispatch(state, flow_id)
            elif outcome == "cancel":
                counts["cancelled"] += state.cancel(flow_id) == "cancelled"
        for flow_id in state.due():
            if state.claim_dispatch(flow_id):
                log.info("flow %s: queued without a running task; sending it again", flow_id)
                counts["sent"] += dispatch(state, flow_id)
        now = time.monotonic()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            counts["pruned"] = state.prune()
        return counts

    def start(self) -> RecoveryLoop:
        self._thread = threading.Thread(target=self._run, name="enact-recovery", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
                if self._failing:
                    log.warning("recovery loop: Redis answers again")
                self._failing = False
            except Exception as exc:  # Redis or the broker away: try again next period
                if not self._failing:
                    log.warning("recovery loop: %s; retrying every %s s", exc, self.interval_s)
                self._failing = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def start(interval_s: float | None = None, state: Any = None) -> RecoveryLoop:
    """Start this process's recovery loop (once; later calls return the running one)."""
    global _loop
    with _lock:
        if _loop is None:
            interval = interval_s or runtime.settings().recovery_interval_s
            _loop = RecoveryLoop(state or runtime.flow_state(), interval).start()
        return _loop


def stop() -> None:
    """Stop this process's recovery loop, if it runs."""
    global _loop
    with _lock:
        loop, _loop = _loop, None
    if loop is not None:
        loop.stop()

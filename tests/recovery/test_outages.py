"""Outages short of a dead worker: Redis restarted under running flows, a worker frozen
past its lease. Default settings; real workers and a real redis-server.

* Redis stopped gracefully and started again at once, then killed with -9 and kept down
  for longer than the Redis command timeout: no flow is ever ``failed`` for it, every
  flow ends done with the right output, no step reruns but those in flight, and every
  worker is still alive (they reconnect).
* A worker frozen (``SIGSTOP``) longer than a flow's lease: the flow continues on the
  other worker; when the frozen one wakes it must notice it lost the flow and record
  nothing more: the flow ends done once, and only the step it was frozen in runs twice.
* A worker with more flows than threads (some received, not started) when Redis is
  killed: it must reconnect and run them all, not exit.
"""

from __future__ import annotations

import time

import pytest

import enact.worker
from enact.errors import StoreUnavailable
from tests.recovery.cluster import continued_after, unexplained_reruns, wait_for
from tests.recovery.flows import expected_output, steps_flow

DELAY_S = 0.5


def poll_statuses(flows, seen: dict[str, set[str]]) -> bool:
    """Record each flow's status; True when all are done or failed."""
    finished = True
    for flow in flows:
        try:
            status = str(getattr(flow.status(), "value", flow.status()))
        except StoreUnavailable:
            return False
        seen.setdefault(flow.id, set()).add(status)
        finished = finished and status in ("done", "failed")
    return finished


@pytest.mark.slow
def test_flows_ride_out_redis_restarts(cluster):
    c = cluster(2)
    steps = 30
    flows = [enact.worker.submit(steps_flow, f"out{i}", steps, DELAY_S) for i in range(6)]
    seen: dict[str, set[str]] = {}
    assert wait_for(lambda: len({e.tag for e in c.executions()}) == 6, timeout_s=60)
    time.sleep(2)
    c.restart_redis(down_s=0.1)
    time.sleep(4)
    c.kill_redis(down_s=8)  # longer than the default Redis command timeout (5 s)

    deadline = time.monotonic() + 60 + 15 + steps * DELAY_S + 30
    while not poll_statuses(flows, seen) and time.monotonic() < deadline:
        time.sleep(0.5)
    statuses = {flow.id: flow.status() for flow in flows}
    assert all(status == "done" for status in statuses.values()), (statuses, c.log_tails())
    assert not [flow_id for flow_id, s in seen.items() if "failed" in s], seen
    for i, flow in enumerate(flows):
        assert flow.result() == expected_output("steps", steps)
        assert {e.index for e in c.executions(f"out{i}")} == set(range(steps))
    assert unexplained_reruns(c.executions(), c.kills) == []
    assert c.reap_exited() == [], f"workers died at a Redis restart:\n{c.log_tails()}"


@pytest.mark.slow
def test_a_worker_frozen_past_its_lease_gives_the_flow_up(cluster):
    c = cluster(2)
    tag, steps = "frozen", 40
    flow = enact.worker.submit(steps_flow, tag, steps, DELAY_S)
    assert wait_for(lambda: len(c.executions(tag)) >= 5, timeout_s=60)
    frozen_pid = c.executions(tag)[-1].pid
    frozen = c.worker_of(frozen_pid)
    assert frozen is not None
    pause = c.pause_worker(frozen)
    try:
        continued = wait_for(
            lambda: continued_after(c.executions(tag), pause) is not None, timeout_s=60
        )
        assert continued, f"the flow did not continue while its worker was frozen: {flow.status()}"
        time.sleep(3)  # a few steps on the other worker, then wake the frozen one
    finally:
        c.resume_worker(frozen)
    assert flow.wait(timeout=steps * DELAY_S + 60) == "done", c.log_tails()
    time.sleep(2 * DELAY_S)  # anything the woken worker still does shows up now
    assert flow.result() == expected_output("steps", steps)
    runs = c.executions(tag)
    assert {e.index for e in runs} == set(range(steps))
    assert unexplained_reruns(runs, c.kills) == []
    woken = [e for e in runs if e.pid == frozen_pid and e.t > pause.start]
    assert woken == [], f"the woken worker ran steps of a flow it had lost: {woken}"
    assert c.reap_exited() == []


@pytest.mark.slow
def test_a_worker_with_a_backlog_survives_a_redis_kill(cluster):
    """More flows than the worker's threads (16 by default), so some wait, received and
    not started, when Redis is killed: the worker reconnects and runs them all."""
    c = cluster(1)
    steps = 8
    flows = [enact.worker.submit(steps_flow, f"backlog{i}", steps, DELAY_S) for i in range(24)]
    assert wait_for(lambda: len({e.tag for e in c.executions()}) >= 16, timeout_s=60)
    c.kill_redis(down_s=0.3)
    seen: dict[str, set[str]] = {}
    deadline = time.monotonic() + 60 + 15 + 3 * steps * DELAY_S
    while not poll_statuses(flows, seen) and time.monotonic() < deadline:
        if c.reap_exited():
            break
        time.sleep(0.5)
    assert c.exited == [], f"the worker exited at the Redis kill:\n{c.log_tails(60)}"
    statuses = {flow.id: str(flow.status().value) for flow in flows}
    assert set(statuses.values()) == {"done"}, statuses
    for i, flow in enumerate(flows):
        assert flow.result() == expected_output("steps", steps)
        assert {e.index for e in c.executions(f"backlog{i}")} == set(range(steps))
    assert unexplained_reruns(c.executions(), c.kills) == []

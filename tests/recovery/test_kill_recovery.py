"""kill -9 of the worker running a flow: the flow continues on another worker.

Default settings throughout (a one-hour visibility timeout, the default flow lease): the
flow must come back through enact's own recovery, not Celery's redelivery. The promise
is the issue's: it continues elsewhere within 60 s, and no step runs twice but the one in
flight at the kill. The measured recovery time is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import pytest

import enact.worker
from tests.recovery.cluster import continued_after, unexplained_reruns, wait_for
from tests.recovery.flows import expected_output, steps_flow

STEPS = 50
DELAY_S = 0.2  # a 10 s flow
RECOVERY_PROMISE_S = 60.0  # issue 15: "continues on another live worker within 60 s"


@pytest.mark.slow
def test_kill_9_of_the_flow_worker_continues_elsewhere(cluster):
    c = cluster(2)
    tag = "kill50"
    flow = enact.worker.submit(steps_flow, tag, STEPS, DELAY_S)
    assert wait_for(lambda: len(c.executions(tag)) >= 10, timeout_s=120), (
        f"the flow did not reach step 10: status {flow.status()}\n{c.log_tails()}"
    )
    victim_pid = c.executions(tag)[-1].pid
    victim = c.worker_of(victim_pid)
    assert victim is not None, f"pid {victim_pid} is no worker of ours"
    (survivor,) = set(c.workers) - {victim}
    kill = c.kill_worker(victim)
    done_before_kill = {e.index for e in c.executions(tag)}

    seen: list[str] = []  # the statuses the flow shows between the kill and its recovery

    def has_continued() -> bool:
        status = str(flow.status().value)
        if not seen or seen[-1] != status:
            seen.append(status)
        return continued_after(c.executions(tag), kill) is not None

    continued = wait_for(has_continued, timeout_s=RECOVERY_PROMISE_S, every_s=0.05)
    status_then = flow.status()
    assert continued, (
        f"{RECOVERY_PROMISE_S:.0f} s after kill -9 of {victim} the flow has not continued "
        f"(status {status_then})\n{c.log_tails()}"
    )
    first = continued_after(c.executions(tag), kill)
    assert first is not None
    recovery_s = first.t - kill.start
    print(f"\nrecovery after kill -9: {recovery_s:.2f} s; statuses seen meanwhile: {seen}")

    remaining_s = (STEPS - len(done_before_kill) + 1) * DELAY_S
    assert flow.wait(timeout=remaining_s + 60) == "done", c.log_tails()
    assert flow.result() == expected_output("steps", STEPS)

    runs = c.executions(tag)
    assert {e.index for e in runs} == set(range(STEPS))
    assert unexplained_reruns(runs, c.kills) == []
    twice = [i for i in range(STEPS) if sum(e.index == i for e in runs) > 1]
    assert len(twice) <= 1, f"steps run more than once: {twice}"
    after = [e for e in runs if e.t > kill.start]
    assert after and {e.pid for e in after} == {c.workers[survivor].pid}
    assert c.reap_exited() == [], c.log_tails()


@pytest.mark.slow
def test_a_flow_whose_only_worker_died_continues_on_its_replacement(cluster):
    """One worker, killed with -9 and replaced at once (a single-host deployment that
    restarts its worker): the new worker's recovery loop finds the flow."""
    c = cluster(1)
    tag, steps = "alone", 30
    flow = enact.worker.submit(steps_flow, tag, steps, DELAY_S)
    assert wait_for(lambda: len(c.executions(tag)) >= 5, timeout_s=120), c.log_tails()
    (victim,) = c.workers
    kill = c.kill_worker(victim)
    c.start_worker()
    continued = wait_for(
        lambda: continued_after(c.executions(tag), kill) is not None,
        timeout_s=RECOVERY_PROMISE_S,
    )
    assert continued, f"not continued on the new worker: {flow.status()}\n{c.log_tails()}"
    assert flow.wait(timeout=steps * DELAY_S + 60) == "done", c.log_tails()
    assert flow.result() == expected_output("steps", steps)
    runs = c.executions(tag)
    assert {e.index for e in runs} == set(range(steps))
    assert unexplained_reruns(runs, c.kills) == []

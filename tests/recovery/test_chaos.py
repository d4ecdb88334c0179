"""Chaos: flows on three workers while workers and Redis are killed with -9.

About 40 flows (a quarter of them ask for an int half-way, and the test answers as they
ask) run on 3 workers with default settings. Every 10 s a random worker is killed with
``kill -9`` and a new one started; once, Redis (AOF, ``appendfsync always``) is killed
with -9 and started again on the same files. Then:

* every flow ends ``done`` with the right output;
* no step ran twice unless its earlier run was in flight at a kill (the last step its
  flow started in the killed process, or one started while Redis was down); a stall of
  the whole machine (seen once: every process frozen 51 s, so every lease lapsed) counts
  as such an interruption, noticed by the harness's watchdog and printed;
* no flow is left running or queued, no input request is left pending;
* no worker died that the test did not kill (workers survive a Redis restart).

The seed is printed; ``ENACT_TEST_CHAOS_SEED=<seed>`` runs the same schedule again.
A summary (flows, kills, duration, recovery times) is printed (``pytest -s``).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field

import pytest

import enact.worker
from enact.errors import ConflictError, StoreUnavailable
from tests.recovery.cluster import Cluster, continued_after, percentile, unexplained_reruns
from tests.recovery.flows import asking_flow, expected_output, step_count, steps_flow

FLOWS = 40
WORKERS = 3
DELAY_S = 0.5
SUBMIT_OVER_S = 30.0  # flows are submitted one by one over this time
KILL_EVERY_S = 10.0
CHAOS_S = 80.0  # workers are killed during this time; Redis once, at REDIS_KILL_AT_S
REDIS_KILL_AT_S = 35.0
REDIS_DOWN_S = 0.5
# After the chaos: the recovery promise (60 s) plus the longest flow's own work.
SETTLE_S = 60.0 + 80 * DELAY_S + 30.0


@dataclass
class Planned:
    tag: str
    kind: str  # "steps" or "ask"
    steps: int
    bonus: int
    submit_at: float
    flow: enact.worker.Flow | None = None
    asked: dict[str, float] = field(default_factory=dict)  # request id -> answer time
    answered: set[str] = field(default_factory=set)
    status: str = "unsubmitted"

    @property
    def expected(self) -> int:
        return expected_output(self.kind, self.steps, self.bonus)


def plan(rng: random.Random) -> list[Planned]:
    flows = []
    for k in range(FLOWS):
        kind = "ask" if k % 4 == 0 else "steps"
        steps = rng.randint(5, 40) if kind == "ask" else rng.randint(10, 80)
        flows.append(
            Planned(
                tag=f"chaos{k}",
                kind=kind,
                steps=steps,
                bonus=rng.randint(1, 99),
                submit_at=SUBMIT_OVER_S * k / FLOWS,
            )
        )
    return flows


def unavailable_ok(call, *args):
    """``call(*args)``, or ``None`` if the store is unavailable (Redis is being restarted)."""
    try:
        return call(*args)
    except StoreUnavailable:
        return None


def answer_questions(flows: dict[str, Planned], rng: random.Random, now: float) -> None:
    """Answer each pending request of our flows 0-3 s after it was first seen."""
    pending = unavailable_ok(enact.worker.pending_inputs)
    for request in pending or []:
        planned = flows.get(request.flow_id)
        if planned is None or request.id in planned.answered:
            continue
        due = planned.asked.setdefault(request.id, now + rng.uniform(0, 3))
        if now < due:
            continue
        try:
            enact.worker.answer(request.id, planned.bonus)
        except StoreUnavailable:
            continue  # maybe recorded, maybe not: try again; a conflict then means it was
        except ConflictError:
            pass
        planned.answered.add(request.id)


def refresh_statuses(flows: dict[str, Planned]) -> None:
    for planned in flows.values():
        if planned.flow is not None and planned.status not in ("done", "failed"):
            status = unavailable_ok(planned.flow.status)
            if status is not None:
                planned.status = str(getattr(status, "value", status))


def run_chaos(c: Cluster, rng: random.Random) -> tuple[list[Planned], float]:
    planned_list = plan(rng)
    by_id: dict[str, Planned] = {}
    t0 = time.time()
    next_kill = t0 + KILL_EVERY_S
    redis_killed = False
    last_poll = 0.0
    while True:
        now = time.time()
        elapsed = now - t0
        for planned in planned_list:
            if planned.flow is None and elapsed >= planned.submit_at:
                target = asking_flow if planned.kind == "ask" else steps_flow
                flow = unavailable_ok(
                    enact.worker.submit, target, planned.tag, planned.steps, DELAY_S
                )
                if flow is not None:
                    planned.flow = flow
                    planned.status = "queued"
                    by_id[flow.id] = planned
                    with open(c.root / "flows.txt", "a") as out:  # to read the logs by
                        out.write(f"{planned.tag} {flow.id} {planned.kind} {planned.steps}\n")
        answer_questions(by_id, rng, now)
        for name, pid, code in c.reap_exited():
            print(f"worker {name} (pid {pid}) exited by itself with {code}; starting another")
            c.start_worker(wait=False)
        if elapsed < CHAOS_S and now >= next_kill:
            victim = rng.choice(sorted(c.workers))
            c.kill_worker(victim)
            c.start_worker(wait=False)
            next_kill += KILL_EVERY_S
        if not redis_killed and elapsed >= REDIS_KILL_AT_S:
            c.kill_redis(REDIS_DOWN_S)
            redis_killed = True
        if now - last_poll >= 1.0:
            last_poll = now
            refresh_statuses(by_id)
            submitted = len(by_id) == len(planned_list)
            if submitted and redis_killed and elapsed >= CHAOS_S:
                if all(p.status in ("done", "failed") for p in planned_list):
                    break
        if elapsed > CHAOS_S + SETTLE_S:
            break
        time.sleep(0.2)
    return planned_list, time.time() - t0


@pytest.mark.slow
def test_flows_survive_killed_workers_and_a_killed_redis(cluster):
    seed = int(os.environ.get("ENACT_TEST_CHAOS_SEED") or random.randrange(10**6))
    print(f"\nchaos seed {seed} (ENACT_TEST_CHAOS_SEED={seed} repeats it)")
    rng = random.Random(seed)
    c = cluster(WORKERS)
    flows, duration_s = run_chaos(c, rng)

    executions = c.executions()
    worker_kills = [k for k in c.kills if k.pid is not None]
    recoveries = []  # per flow running in a killed worker: seconds until it continued
    for kill in worker_kills:
        for planned in flows:
            runs = [e for e in executions if e.tag == planned.tag]
            before = [e for e in runs if e.t <= kill.start]
            if not before or before[-1].pid != kill.pid:
                continue  # not running there
            if planned.kind == "ask" and before[-1].index == planned.steps - 1:
                continue  # it may have been waiting for its answer
            if {e.index for e in before} >= set(range(step_count(planned.kind, planned.steps))):
                continue  # it had finished its steps
            after = continued_after(runs, kill)
            recoveries.append(None if after is None else after.t - kill.start)
    recovered = [r for r in recoveries if r is not None]
    stranded = [p for p in flows if p.status != "done"]
    print(
        f"chaos: {len(flows)} flows ({sum(p.kind == 'ask' for p in flows)} asking), "
        f"{len(worker_kills)} worker kills, "
        f"{sum(k.what.startswith('kill -9 redis') for k in c.kills)} Redis kill, "
        f"{duration_s:.0f} s; {len(stranded)} not done: "
        f"{[(p.tag, p.flow and p.flow.id, p.status) for p in stranded]}"
    )
    for stall in (k for k in c.kills if k.what.startswith("machine stall")):
        print(f"the machine stalled ({stall.what}): steps in flight then may rerun")
    print(f"flows running in a killed worker: {len(recoveries)}, continued: {len(recovered)}")
    if recovered:
        print(
            f"time to continue after a kill: p50 {percentile(recovered, 0.5):.1f} s, "
            f"p95 {percentile(recovered, 0.95):.1f} s, max {max(recovered):.1f} s"
        )
    for line in unexplained_reruns(executions, c.kills):
        print("rerun:", line)

    assert not stranded, (
        f"{len(stranded)} of {len(flows)} flows not done after {duration_s:.0f} s: "
        f"{[(p.tag, p.flow and p.flow.id, p.status) for p in stranded]}\n{c.log_tails()}"
    )
    for planned in flows:
        assert planned.flow is not None
        assert planned.flow.result() == planned.expected, planned.tag
        ran = {e.index for e in executions if e.tag == planned.tag}
        assert ran == set(range(step_count(planned.kind, planned.steps))), planned.tag
    assert unexplained_reruns(executions, c.kills) == []
    assert enact.worker.pending_inputs() == []
    ours = {p.flow.id for p in flows if p.flow is not None}
    left = [
        (record.id, str(record.status))
        for record in enact.worker.list_flows(status=("running", "queued", "waiting", "lapsed"))
        if record.id in ours
    ]
    assert left == [], f"flows not finished: {left}"
    assert c.exited == [], f"workers that died without being killed: {c.exited}"

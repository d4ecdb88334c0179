"""Outages on a real cluster with its broker on a Redis of its own: the broker down
while clients submit and answer, and both Redis servers killed and restarted while
flows run. Flows complete once the servers are back; none is marked failed for it,
and the workers stay up."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import enact.worker
from tests.worker import flows
from tests.worker.conftest import Cluster, private_cluster


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, s3_client: Any
) -> Iterator[Cluster]:
    with private_cluster(tmp_path_factory, s3_endpoint, s3_client, separate_broker=True) as running:
        yield running


def test_broker_down_during_submit_and_answer(workers, cluster: Cluster):
    workers.start("w", concurrency=4)
    waiting = enact.worker.submit(flows.roll_dice_user_flow)
    assert waiting.wait(60) == "waiting"
    [request] = enact.worker.pending_inputs(waiting.id)

    cluster.broker.stop()
    # Both are accepted: the flow state is in Redis, the task is due to be sent.
    submitted = enact.worker.submit(flows.roll_sum, 3)
    assert submitted.status() == "queued"
    enact.worker.answer(request.id, 2)
    assert waiting.status() == "queued"
    assert enact.worker.pending_inputs(waiting.id) == []
    time.sleep(3)  # the workers' recovery loop fails to send meanwhile, and says so
    cluster.broker.start()

    assert submitted.wait(120) == "done"
    assert 3 <= submitted.result() <= 18
    for _ in range(2):
        assert waiting.wait(120) == "waiting"
        [request] = enact.worker.pending_inputs(waiting.id)
        enact.worker.answer(request.id, 6)
    assert waiting.wait(120) == "done" and waiting.result() == 12
    assert workers.processes["w"].poll() is None


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "sigterm"])
def test_flows_survive_both_redis_servers_restarted(
    workers, cluster: Cluster, cluster_env: dict[str, str], tmp_path: Path, kill: bool
):
    side_channel = tmp_path / "executions.txt"
    workers.env = dict(cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel))
    workers.start("a", concurrency=4)
    workers.start("b", concurrency=4)
    running = [enact.worker.submit(flows.long_flow, 30, 0.1) for _ in range(4)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if side_channel.exists() and len(side_channel.read_text().splitlines()) >= 20:
            break
        time.sleep(0.05)
    cluster.redis.restart(kill=kill)  # appendonly, fsync always: nothing acknowledged is lost
    cluster.broker.restart(kill=kill)
    for flow in running:
        assert flow.wait(180) == "done", flow.record()
        assert flow.result() == sum(range(30))
    for name in ("a", "b"):
        assert workers.processes[name].poll() is None, f"worker {name} exited"
    logs = "".join((workers.log_dir / f"{n}.log").read_text() for n in ("a", "b"))
    assert "Unrecoverable error" not in logs
    assert enact.worker.list_flows("failed") == []


def test_a_map_survives_both_redis_servers_killed_and_restarted(workers, cluster: Cluster):
    workers.start("m", concurrency=4)
    done: list[Any] = []
    import threading

    thread = threading.Thread(
        target=lambda: done.append(enact.worker.map(flows.nap, [0.3] * 40, parallelism=4))
    )
    thread.start()
    time.sleep(1.5)
    cluster.redis.restart(kill=True)
    cluster.broker.restart(kill=True)
    thread.join(300)
    assert done == [[0.3] * 40]
    time.sleep(2)
    assert workers.processes["m"].poll() is None, "the worker exited"
    assert "Unrecoverable error" not in (workers.log_dir / "m.log").read_text()


def test_a_worker_holding_prefetched_tasks_survives_redis_killed(workers, cluster: Cluster):
    """More flows than threads: the worker holds messages it has not started
    (unacknowledged) when the broker connection drops. kombu's restore of those on
    the dead channel used to raise AttributeError ('NoneType' object has no attribute
    'hostname') and the worker exited (enact.worker.broker)."""
    workers.start("busy", concurrency=16)
    submitted = [enact.worker.submit(flows.long_flow, 8, 0.5) for _ in range(24)]
    time.sleep(2)
    cluster.redis.restart(kill=True)
    cluster.broker.restart(kill=True)
    for flow in submitted:
        assert flow.wait(240) == "done", flow.record()
    assert workers.processes["busy"].poll() is None, "the worker exited"
    assert "Unrecoverable error" not in (workers.log_dir / "busy.log").read_text()

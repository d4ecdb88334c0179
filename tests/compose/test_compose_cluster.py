"""docker-compose.yml for real: built, started with 3 workers, faulted and taken down.

The tests run in order on one cluster (see conftest.py): healthy with 3 workers, the dice
flows end to end through the CLI on the host, a worker killed in the middle of a flow,
Redis restarted (and killed), and ``down -v`` leaving nothing, nor the engine once stopped.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import redis
import yaml

from tests.compose import harness
from tests.compose.conftest import WORKERS
from tests.deploy.test_e2e_dice import mentions

pytestmark = pytest.mark.slow

REPO = harness.REPO
FLOW_TIMEOUT_S = 240
# tests.worker.flows.long_flow(steps, delay_s): one tracked call per step, checkpointed.
LONG_STEPS, LONG_DELAY_S = 40, 0.5
MEASURED: dict[str, float] = {}


# `enact status` exits with the flow's state: 0 done, 3 waiting, 4 failed, 5 cancelled,
# 6 not finished (enact.cli); 1 and 2 are mistakes.
FLOW_STATES = {0: "done", 3: "waiting", 4: "failed", 5: "cancelled", 6: "not finished"}


def enact_cli(
    cluster: harness.Cluster, *args: str, timeout_s: float = 180, ok: tuple[int, ...] = (0,)
) -> str:
    """`enact ARGS` on the host, in the user code directory, as a user of the cluster would."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys, enact.cli; sys.exit(enact.cli.main())", *args],
        cwd=cluster.user_code,
        env=cluster.host_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode in ok, (
        f"enact {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}\n"
        f"{cluster.logs()}"
    )
    return result.stdout


def wait_for_input(cluster: harness.Cluster, flow_id: str, for_value: str) -> str:
    """The id of the flow's pending request for ``for_value``, from `enact inputs`."""
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while time.monotonic() < deadline:
        for request in json.loads(enact_cli(cluster, "inputs", "--json")):
            if request["flow_id"] == flow_id and request["for_value"] == for_value:
                return str(request["id"])
        time.sleep(0.5)
    raise AssertionError(f"flow {flow_id} asked no {for_value!r}\n{cluster.logs()}")


def waited(out: str) -> tuple[str, str, str]:
    """(flow id, status, result) from `enact submit --wait`: "<id> <name> <status>",
    then "result: <value>" for a finished flow."""
    lines = out.splitlines()
    flow_id, status = lines[0].split()[0], lines[0].split()[-1]
    result = next((line for line in lines[1:] if line.startswith("result: ")), "")
    return flow_id, status, result.removeprefix("result: ")


def flow_status(cluster: harness.Cluster, flow_id: str) -> tuple[str, str]:
    """(status, result line) from `enact status`."""
    lines = enact_cli(cluster, "status", flow_id, ok=tuple(FLOW_STATES)).splitlines()
    status = lines[0].split()[-1]
    result = next((line for line in lines[1:] if line.startswith("result: ")), "")
    return status, result.removeprefix("result: ")


def wait_done(cluster: harness.Cluster, flow_id: str) -> str:
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while time.monotonic() < deadline:
        status, result = flow_status(cluster, flow_id)
        if status in ("done", "failed", "cancelled"):
            assert status == "done", f"flow {flow_id} {status}\n{cluster.logs()}"
            return result
        time.sleep(0.5)
    raise AssertionError(f"flow {flow_id} not done after {FLOW_TIMEOUT_S} s\n{cluster.logs()}")


def redis_client(cluster: harness.Cluster) -> redis.Redis:
    return redis.Redis.from_url(cluster.client_env["ENACT_REDIS_URL"], socket_timeout=10)


def persistent_keys(cluster: harness.Cluster) -> set[bytes]:
    """Keys without an expiry: what must survive a restart."""
    client = redis_client(cluster)
    try:
        return {key for key in client.scan_iter(count=1000) if client.ttl(key) == -1}
    finally:
        client.close()


def wait_redis_healthy(cluster: harness.Cluster) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sorted(cluster.health().values()).count("redis/healthy") == 1:
            return
        time.sleep(0.2)
    raise AssertionError(f"redis not healthy again: {cluster.health()}")


# The cluster comes up ------------------------------------------------------------------


def test_the_test_file_is_the_compose_file_with_only_the_override(cluster):
    """What runs is docker-compose.yml: commands keep every flag but the listening ones."""
    original = yaml.safe_load(harness.COMPOSE_FILE.read_text())
    running = yaml.safe_load(cluster.compose_file.read_text())
    assert set(running["services"]) == set(original["services"])
    for name, service in original["services"].items():
        changed = set(cluster.changes["services"][name]) | {"ports"}
        for key, value in service.items():
            if key not in changed:
                assert running["services"][name][key] == value, (name, key)
        assert running["services"][name]["network_mode"] == "host"
    redis_flags = [str(word) for word in original["services"]["redis"]["command"]]
    assert running["services"]["redis"]["command"][: len(redis_flags)] == redis_flags
    weed = running["services"]["s3"]["command"]
    for flag in original["services"]["s3"]["command"]:
        assert flag in weed or flag.split("=")[0] in {w.split("=")[0] for w in weed}


def test_three_workers_and_the_services_are_healthy_on_host_networking(cluster, host_before):
    health = cluster.health()
    assert sorted(health.values()) == sorted(
        ["inbox/healthy", "redis/healthy", "s3/healthy"] + ["worker/healthy"] * WORKERS
    ), health
    for container in health:
        assert cluster.inspect(container)["HostConfig"]["NetworkMode"] == "host"
    nodes = cluster.nodes()
    assert len(nodes) == WORKERS and len(set(nodes.values())) == WORKERS
    # Every node answers a ping from the host, through the cluster's Redis.
    ping = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "enact.worker", "inspect", "ping", "--json",
         "--timeout", "10"],
        env=cluster.host_env(), capture_output=True, text=True, timeout=120,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert set(json.loads(ping.stdout.strip().splitlines()[-1])) == set(nodes)
    # No container network: no bridge or veth on the host, no firewall rule.
    assert harness.host_links() == host_before["links"]
    assert harness.iptables_rules() == host_before["iptables"]


# The dice flows, end to end from the host --------------------------------------------------


def test_dice_flows_end_to_end_through_the_cli(cluster):
    out = enact_cli(cluster, "submit", "dice:roll_sum", "3", "--wait", str(FLOW_TIMEOUT_S))
    sum_id, status, result = waited(out)
    assert status == "done" and 3 <= int(result) <= 18, out
    out = enact_cli(cluster, "submit", "dice:roll_die", "6", "--wait", str(FLOW_TIMEOUT_S))
    die_id, status, result = waited(out)
    assert status == "done" and 1 <= int(result) <= 6, out

    user_id = harness.submit(cluster, "human_dice:roll_dice_user_flow")
    request = wait_for_input(cluster, user_id, "Total number of rolls?")
    # The inbox service lists it too; its API needs the bearer token.
    inbox = f"http://127.0.0.1:{cluster.ports['inbox']}"
    with urllib.request.urlopen(inbox + "/healthz", timeout=10) as reply:
        assert json.load(reply) == {"status": "ok"}
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(inbox + "/api/inputs", timeout=10)
    assert refused.value.code == 401
    authorized = urllib.request.Request(
        inbox + "/api/inputs", headers={"Authorization": f"Bearer {harness.API_TOKEN}"}
    )
    with urllib.request.urlopen(authorized, timeout=10) as reply:
        listed = json.load(reply)
    assert request in json.dumps(listed), listed
    assert flow_status(cluster, user_id)[0] == "waiting"
    assert "resumes" in enact_cli(cluster, "answer", request, "2")
    for roll in ("3", "4"):
        request = wait_for_input(cluster, user_id, "Please roll a die.")
        enact_cli(cluster, "answer", request, roll)
    assert wait_done(cluster, user_id) == "7"
    shown = enact_cli(cluster, "show", user_id)
    assert "roll_dice_user_flow" in shown and "Please roll a die." in shown
    assert not [
        line for line in enact_cli(cluster, "inputs").splitlines() if line.startswith(user_id)
    ]

    # The records are in the bucket, under the store URL's prefix ...
    env = cluster.client_env
    s3 = boto3.client(
        "s3",
        endpoint_url=env["ENACT_S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    listing = s3.list_objects_v2(Bucket=harness.BUCKET, Prefix="data/")
    assert listing["KeyCount"] > 0
    # ... and each flow's state is in Redis.
    client = redis_client(cluster)
    try:
        for flow_id in (sum_id, die_id, user_id):
            assert mentions(client, "enact", flow_id), f"no key mentions flow {flow_id}"
    finally:
        client.close()


# Faults --------------------------------------------------------------------------------


def test_a_killed_workers_flow_completes_on_another_worker(cluster):
    flow_id = harness.submit(
        cluster, "tests.worker.flows:long_flow", str(LONG_STEPS), str(LONG_DELAY_S)
    )
    seen = harness.kill_worker_mid_flow(cluster, flow_id, LONG_DELAY_S * 4, FLOW_TIMEOUT_S)
    lines = seen["lines"]
    assert seen["running_on"], f"the flow never ran: {lines}\n{cluster.logs()}"
    assert seen["killed"], f"no container runs {seen['running_on']}: {cluster.nodes()}"
    final = lines[-1]
    assert final.get("status") == "done", f"{lines}\n{cluster.logs(60)}"
    assert final["result"] == sum(range(LONG_STEPS))
    assert final["worker"] != seen["running_on"]
    assert cluster.nodes()[final["worker"]] != seen["killed"]
    assert seen["continued_at"] is not None
    continued_s = seen["continued_at"] - seen["killed_at"]
    MEASURED["docker kill -> flow continues on another worker"] = continued_s
    print(f"\nkill -> continued: {continued_s:.1f} s; watch: {lines}")


def test_redis_restart_and_kill_lose_nothing(cluster):
    before = persistent_keys(cluster)
    assert before, "the flows left no keys"
    flows = {
        line.split()[0]: line.split()[1]
        for line in enact_cli(cluster, "flows", "--limit", "100").splitlines()
        if line.strip()
    }
    assert flows

    began = time.monotonic()
    cluster.compose("restart", "redis")
    wait_redis_healthy(cluster)
    MEASURED["compose restart redis -> healthy"] = time.monotonic() - began
    assert before <= persistent_keys(cluster), sorted(before - persistent_keys(cluster))[:20]
    after = {
        line.split()[0]: line.split()[1]
        for line in enact_cli(cluster, "flows", "--limit", "100").splitlines()
        if line.strip()
    }
    assert after == flows
    client = redis_client(cluster)
    try:
        config = {**client.config_get("appendonly"), **client.config_get("appendfsync")}
    finally:
        client.close()
    assert config == {"appendonly": "yes", "appendfsync": "always"}

    # The workers carry on: a flow submitted now completes.
    out = enact_cli(cluster, "submit", "dice:roll_sum", "2", "--wait", str(FLOW_TIMEOUT_S))
    new_id, status, _ = waited(out)
    assert status == "done", out

    # SIGKILL leaves Redis no time to save a snapshot: only the AOF has the last flow.
    before = persistent_keys(cluster)
    (redis_container,) = cluster.containers("redis")
    cluster.engine.docker("kill", redis_container)
    cluster.compose("up", "--detach", "--no-build", "--no-recreate", "redis")
    wait_redis_healthy(cluster)
    assert before <= persistent_keys(cluster), sorted(before - persistent_keys(cluster))[:20]
    assert flow_status(cluster, new_id)[0] == "done"


# Taking it down ------------------------------------------------------------------------


def test_down_with_volumes_then_engine_stop_leave_nothing(cluster, engine, host_before):
    cluster.down()
    assert cluster.leftovers() == {}
    for port in (cluster.ports["redis"], cluster.ports["s3"], cluster.ports["s3"] + 1):
        assert not harness.listening(port), f"something still listens on {port}"
    dockerd = engine.process.pid if engine.process else None
    engine.stop()
    assert engine.processes() == {}
    if dockerd is not None:
        assert not Path(f"/proc/{dockerd}").exists() or re.search(
            r"\) Z ", Path(f"/proc/{dockerd}/stat").read_text()
        )
    assert engine.mounts() == []
    assert harness.host_links() == host_before["links"]
    assert harness.iptables_rules() == host_before["iptables"]
    MEASURED.update(cluster.timings)
    print("\n" + "\n".join(f"{k}: {v:.1f} s" for k, v in MEASURED.items()))

"""The native twin (deploy/local-cluster.sh) starts what it says and stops all of it.

Processes, ports, persistence and pings; the end-to-end test runs flows on it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import redis
import yaml
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.deploy.test_compose_file import twin_matches_compose_worker

APP = "enact.worker"
REPO = Path(__file__).resolve().parents[2]


def s3_client(env: dict[str, str], signed: bool = True):
    options = {"signature_version": UNSIGNED} if not signed else {}
    return boto3.client(
        "s3",
        endpoint_url=env["ENACT_S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
        config=Config(retries={"max_attempts": 2}, **options),
    )


def bucket_of(env: dict[str, str]) -> str:
    return env["ENACT_STORE_URL"].removeprefix("s3://").split("/", 1)[0]


def celery_inspect_ping(cluster, *options: str) -> subprocess.CompletedProcess:
    """`celery -A enact.worker inspect ping` from a client shell with the twin's environment."""
    env = {**cluster.env, **cluster.client_env()}
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", APP, "inspect", "ping", "--timeout", "5", *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def celery_ping(cluster) -> dict:
    result = celery_inspect_ping(cluster, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_all_gone(cluster, started: dict[int, str]) -> None:
    left = {pid: command for pid, command in started.items() if os.path.exists(f"/proc/{pid}")}
    left = {pid: command for pid, command in left.items() if pid in cluster.processes()}
    assert not left, f"still running after stop: {left}"
    assert not cluster.processes(), f"still running after stop: {cluster.processes()}"
    assert not cluster.pidfiles()


def weed_sockets(cluster) -> list[str]:
    """Unix sockets weed keeps in /tmp, named by the ports it listens on."""
    base = int(cluster.env["ENACT_CLUSTER_S3_PORT"])
    ports = [base + offset for offset in (0, 1, 2, 3, 4, 10000, 10001, 10002, 10003, 10004)]
    return [str(p) for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]


def test_start_two_workers_then_stop_leaves_no_process(local_cluster):
    cluster = local_cluster(app=APP, s3_server="weed", ENACT_WORKER_CONCURRENCY="3")
    if cluster.run("status", check=False).returncode != 3:
        pytest.fail("a fresh run dir must report 'not started' (exit 3)")
    cluster.start(2)
    env = cluster.client_env()
    twin_matches_compose_worker(env, yaml.safe_load((REPO / "docker-compose.yml").read_text()))
    started = cluster.processes()
    pidfiles = cluster.pidfiles()
    # The inbox too: the dev install has the web extra.
    assert set(pidfiles) == {"redis", "s3", "inbox", "worker1", "worker2"}
    assert set(pidfiles.values()) <= set(started), (pidfiles, started)
    assert any("weed" in command and " mini " in command for command in started.values())
    # Workers get the cluster's variables, and tuning passed to `start`.
    worker_env = dict(
        item.split(b"=", 1)
        for item in Path(f"/proc/{pidfiles['worker1']}/environ").read_bytes().split(b"\0")
        if b"=" in item
    )
    assert worker_env[b"ENACT_WORKER_CONCURRENCY"] == b"3"
    for name, value in env.items():
        assert worker_env[name.encode()] == value.encode(), name
    assert b"ENACT_BROKER_URL" not in worker_env

    # Redis: ours, on its own port, with the compose file's persistence settings.
    r = redis.Redis.from_url(env["ENACT_REDIS_URL"])
    assert r.ping()
    assert r.config_get("appendonly")["appendonly"] == "yes"
    assert r.config_get("appendfsync")["appendfsync"] == "always"
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert r.config_get("dir")["dir"] == str(cluster.run_dir / "redis")

    # S3: the bucket exists; the credentials are required.
    s3 = s3_client(env)
    s3.head_bucket(Bucket=bucket_of(env))
    with pytest.raises(ClientError):
        s3_client(env, signed=False).list_objects_v2(Bucket=bucket_of(env))

    # Both workers answer `celery inspect ping`, under distinct node names.
    replies = celery_ping(cluster)
    assert sorted(name.split("@")[0] for name in replies) == ["worker1", "worker2"]
    assert all(reply == {"ok": "pong"} for reply in replies.values())
    # The compose healthcheck's form: each node answers for itself, a missing one fails.
    for node in replies:
        assert celery_inspect_ping(cluster, "--destination", node).returncode == 0
    assert celery_inspect_ping(cluster, "--destination", "worker9@nowhere").returncode != 0

    status = cluster.run("status")
    assert "2 nodes online" in status.stdout

    # What survives a restart: Redis (AOF) keeps keys, S3 keeps objects.
    r.set("deploy-test:survives", b"yes")
    s3.put_object(Bucket=bucket_of(env), Key="data/deploy-test", Body=b"kept")
    r.close()

    cluster.stop()
    assert_all_gone(cluster, started)
    assert not weed_sockets(cluster)
    assert cluster.run("status", check=False).returncode == 3

    cluster.start(0)
    restarted = cluster.processes()
    r = redis.Redis.from_url(env["ENACT_REDIS_URL"])
    assert r.get("deploy-test:survives") == b"yes"
    r.close()
    body = s3_client(env).get_object(Bucket=bucket_of(env), Key="data/deploy-test")["Body"]
    assert body.read() == b"kept"
    cluster.stop()
    assert_all_gone(cluster, restarted)
    print(f"twin timings (s): {cluster.timings}")


def test_falls_back_to_moto_server_when_weed_is_missing(local_cluster):
    cluster = local_cluster(app=APP, ENACT_CLUSTER_WEED="/nonexistent/weed")
    result = cluster.start(1)
    assert "falling back to moto_server" in result.stderr
    env = cluster.client_env()
    started = cluster.processes()
    assert any("moto_server" in command for command in started.values())
    s3_client(env).head_bucket(Bucket=bucket_of(env))
    assert list(celery_ping(cluster)) == [f"worker1@{socket.gethostname()}"]
    cluster.stop()
    assert_all_gone(cluster, started)


def test_start_refuses_a_busy_port_and_starts_nothing(local_cluster):
    cluster = local_cluster(app=APP)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(cluster.env["ENACT_CLUSTER_REDIS_PORT"])))
        busy.listen()
        result = cluster.run("start", "1", check=False)
    assert result.returncode != 0
    assert "is in use" in result.stderr
    assert not cluster.processes()


def test_a_worker_that_cannot_start_fails_start_and_is_cleaned_up(local_cluster):
    cluster = local_cluster(app=APP, ENACT_IMPORTS="tests.deploy.no_such_module")
    result = cluster.run("start", "1", check=False)
    assert result.returncode != 0
    # The worker's own error is shown, and nothing is left behind.
    assert "No module named 'tests.deploy.no_such_module'" in result.stderr
    assert "stopping what was started" in result.stderr
    assert not cluster.processes()
    assert not cluster.pidfiles()

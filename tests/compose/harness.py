"""Run docker-compose.yml for real on a Docker engine of our own, with images built locally.

Shared by the tests in this directory and by ``bench/bench_compose.py``. The engine
(``engine.py``) and the images (``images.py``) are built first; then ``Cluster`` runs
``docker-compose`` on the repository's file with the test override applied (``override``,
``merged``): host networking (all traffic on loopback, no container network), free ports in
7400-7499, the local images, short healthcheck intervals. Everything else (commands,
persistence flags, volumes, the worker's environment) comes from docker-compose.yml.

``COMPOSE_TEST_IMAGES=registry`` checks an operator's own images instead of local ones:
the override then leaves ``image:`` alone (set ``WORKER_IMAGE``, and pull or retag Redis's
and SeaweedFS's images beforehand). ``COMPOSE_TEST_DOCKER_HOST`` uses an engine that is
already running instead of starting one.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.compose.engine import Engine, EngineUnavailable, host_links, iptables_rules, run
from tests.compose.images import Images

__all__ = [
    "Cluster", "Engine", "EngineUnavailable", "Images", "engine_from_env", "host_links",
    "iptables_rules", "kill_worker_mid_flow", "listening", "local_images_wanted", "merged",
    "override", "submit",
]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
PORT_RANGE = range(7400, 7500)
ACCESS_KEY, SECRET_KEY, BUCKET = "enact", "enact-compose-test-secret", "enact"
REDIS_PASSWORD = "enact-compose-test-redis-password"
API_TOKEN = "enact-compose-test-api-token"
NODE_FILE = "/tmp/enact-node"


def port_is_free(port: int) -> bool:
    """Whether a listener could bind the port on every interface (host networking)."""
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port (TIME_WAIT sockets do not)."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_ports() -> dict[str, int]:
    """Redis, inbox and a block of 5 for weed (plus its gRPC ports, each + 10000)."""
    for _ in range(200):
        s3 = random.randrange(PORT_RANGE.start, PORT_RANGE.stop - 7, 5)
        weed = [s3 + i for i in range(5)] + [s3 + 10000 + i for i in range(5)]
        others = [p for p in PORT_RANGE if p not in range(s3, s3 + 5) and port_is_free(p)]
        if len(others) >= 2 and all(port_is_free(p) for p in weed):
            redis_port, inbox = random.sample(others, 2)
            return {"redis": redis_port, "s3": s3, "inbox": inbox}
    raise RuntimeError(f"no free ports in {PORT_RANGE}")


# The cluster -----------------------------------------------------------------------------


def escape(text: str) -> str:
    """A literal string in a compose file: `$` is written `$$`."""
    return text.replace("$", "$$")


def without_flags(command: list[str], *names: str) -> list[str]:
    """``command`` without its ``NAME=value`` words for each of ``names``."""
    return [word for word in command if not word.startswith(tuple(f"{n}=" for n in names))]


def override(
    compose: dict[str, Any],
    ports: dict[str, int],
    images: Images | None,
    context: Path | None,
    interval_s: int = 1,
) -> dict[str, Any]:
    """The test override: host networking, free ports, local images, quick healthchecks.

    Commands are the compose file's own with only the listening flags changed, so the
    persistence and shutdown settings under test are the file's.
    """
    services = compose["services"]
    redis_port, s3_port = ports["redis"], ports["s3"]
    master = s3_port + 1
    quick = {"interval": f"{interval_s}s", "timeout": "20s", "retries": 60, "start_period": "0s"}

    redis_command = [str(w) for w in services["redis"]["command"]]
    redis_command += ["--port", str(redis_port), "--bind", "127.0.0.1"]

    weed = without_flags(
        [str(w) for w in services["s3"]["command"]], "-ip.bind", "-s3.port", "-master.port"
    )
    weed += [
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-master.port={master}",
        f"-volume.port={s3_port + 2}",
        f"-filer.port={s3_port + 3}",
        f"-admin.port={s3_port + 4}",
    ]
    s3_check = (
        f"wget -q -O /dev/null http://127.0.0.1:{s3_port}/healthz && "
        f"echo s3.bucket.list | weed shell -master=127.0.0.1:{master} | grep -qw \"$S3_BUCKET\""
    )

    # Host networking gives every replica the host's hostname, so each worker names its
    # Celery node itself and leaves the name where its healthcheck (and the test) reads it.
    celery = without_flags([str(w) for w in services["worker"]["command"]], "--hostname")
    start_worker = (
        f'node="worker@$(hostname)-$(od -An -N4 -tx4 /dev/urandom | tr -d " ")"; '
        f'echo "$node" > {NODE_FILE}; exec {shlex.join(celery)} --hostname="$node"'
    )
    worker_check = (
        f'celery -A enact.worker inspect ping --destination "$(cat {NODE_FILE})" --timeout 5'
    )

    inbox_check = (
        "import urllib.request; urllib.request.urlopen("
        f"'http://127.0.0.1:{ports['inbox']}/healthz', timeout=5)"
    )

    result: dict[str, Any] = {
        "services": {
            "redis": {
                "network_mode": "host",
                "command": redis_command,
                "healthcheck": {
                    "test": ["CMD", "redis-cli", "-p", str(redis_port), "ping"],
                    **quick,
                },
            },
            "s3": {
                "network_mode": "host",
                "command": weed,
                "healthcheck": {"test": ["CMD-SHELL", escape(s3_check)], **quick},
            },
            "worker": {
                "network_mode": "host",
                "command": ["sh", "-c", escape(start_worker)],
                "healthcheck": {"test": ["CMD-SHELL", escape(worker_check)], **quick},
            },
            "inbox": {
                "network_mode": "host",
                "command": [*without_port(services["inbox"]["command"]), "--port",
                            str(ports["inbox"])],
                "healthcheck": {"test": ["CMD", "python", "-c", inbox_check], **quick},
            },
        },
    }
    if images is not None:
        result["services"]["redis"]["image"] = images.redis
        result["services"]["s3"]["image"] = images.s3
        result["services"]["worker"]["image"] = images.worker
        result["services"]["inbox"]["image"] = images.worker
        result["services"]["worker"]["build"] = {
            "context": str(context),
            "dockerfile": "deploy/Dockerfile",
            "args": {
                "BASE_IMAGE": images.base,
                "PIP_INSTALL_OPTIONS": "--no-index --find-links=/tmp/build",
            },
        }
    return result


def merged(compose: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The compose file with the override applied, as docker-compose merges two files.

    Mappings merge key by key; anything else is replaced. One thing an override file
    cannot do in docker-compose 1.x is drop a key, and host networking refuses ``ports``,
    so a service in host mode loses its ``ports`` here: the one change beyond the override.
    """
    result = dict(compose)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    for service in result.get("services", {}).values():
        if service.get("network_mode") == "host":
            service.pop("ports", None)
    return result


class Cluster:
    """One docker-compose project on ``engine``: the repository's file with the override."""

    def __init__(self, engine: Engine, workdir: Path, images: Images | None) -> None:
        self.engine = engine
        self.workdir = workdir
        self.images = images
        self.project = f"enacttest{os.getpid()}{random.randrange(1000)}"
        self.ports = free_ports()
        self.timings: dict[str, float] = {}
        self.user_code = workdir / "user"
        self.compose_file = workdir / "docker-compose.test.yml"
        self.changes: dict[str, Any] = {}

    # Setup -------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Write the user code (the dice examples, the worker tests' flows) and the override."""
        self.user_code.mkdir(parents=True, exist_ok=True)
        for name in ("dice.py", "human_dice.py"):
            shutil.copy2(REPO / "examples" / name, self.user_code / name)
        (self.user_code / "tests" / "worker").mkdir(parents=True, exist_ok=True)
        for part in ("__init__.py", "worker/__init__.py", "worker/flows.py"):
            shutil.copy2(REPO / "tests" / part, self.user_code / "tests" / part)
        context = None
        if self.images is not None:
            context = self.images.build_context(self.workdir / "context")
        compose = yaml.safe_load(COMPOSE_FILE.read_text())
        self.changes = override(compose, self.ports, self.images, context)
        self.compose_file.write_text(yaml.safe_dump(merged(compose, self.changes)))

    @property
    def client_env(self) -> dict[str, str]:
        """What a client on the host needs: the cluster's services on loopback."""
        return {
            "ENACT_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.ports['redis']}/0",
            "ENACT_STORE_URL": f"s3://{BUCKET}/data",
            "ENACT_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.ports['s3']}",
            "ENACT_IMPORTS": "dice,human_dice,tests.worker.flows",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def host_env(self) -> dict[str, str]:
        """The environment of a client process on the host: the cluster's, the user code."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ENACT_", "AWS_"))}
        env.update(self.client_env)
        env["PYTHONPATH"] = os.pathsep.join([str(self.user_code), str(REPO)])
        return env

    @property
    def env(self) -> dict[str, str]:
        """docker-compose's environment: the engine and the compose file's variables."""
        env = {k: v for k, v in self.engine.env.items() if not k.startswith(("ENACT_", "AWS_"))}
        env.update(self.client_env)
        env.update(
            S3_BUCKET=BUCKET, USER_CODE_DIR=str(self.user_code), REDIS_PASSWORD=REDIS_PASSWORD,
            ENACT_API_TOKEN=API_TOKEN,
        )
        return env

    def compose(self, *args: str, timeout_s: float = 900, check: bool = True):
        command = [
            "docker-compose",
            "--project-name",
            self.project,
            "--project-directory",
            str(REPO),
            "--file",
            str(self.compose_file),
            *args,
        ]
        return run(command, timeout_s=timeout_s, check=check, env=self.env, cwd=REPO)

    # Life cycle ----------------------------------------------------------------------------

    def build(self) -> None:
        """Build the worker image, then remove the image it replaced.

        The engine's data root persists between runs, so each code change would leave the
        previous worker image behind. Only that image goes: a blanket ``image prune``
        would also delete the untagged layers of the Dockerfile's build stage, which are
        the build cache.
        """
        tag = self.images.worker if self.images else None
        before = self.image_id(tag) if tag else None
        began = time.monotonic()
        self.compose("build", "worker", timeout_s=1800)
        self.timings["build worker"] = time.monotonic() - began
        if before and before != self.image_id(tag):
            self.engine.docker("image", "rm", before, check=False)

    def image_id(self, tag: str) -> str | None:
        result = self.engine.docker("image", "inspect", "--format", "{{.Id}}", tag, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def up(self, workers: int) -> None:
        began = time.monotonic()
        self.compose("up", "--detach", "--no-build", "--scale", f"worker={workers}")
        self.wait_healthy(workers)
        self.timings[f"up, {workers} workers healthy"] = time.monotonic() - began

    def containers(self, service: str | None = None, all_states: bool = False) -> list[str]:
        args = ["ps", "--quiet", "--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            args += ["--filter", f"label=com.docker.compose.service={service}"]
        if all_states:
            args.append("--all")
        return self.engine.docker(*args).stdout.split()

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(self.engine.docker("inspect", container).stdout)[0]

    def health(self) -> dict[str, str]:
        """Container id -> service/health, for every container of the project."""
        found = {}
        for container in self.containers(all_states=True):
            state = self.inspect(container)
            service = state["Config"]["Labels"]["com.docker.compose.service"]
            health = state["State"].get("Health", {}).get("Status", state["State"]["Status"])
            found[container] = f"{service}/{health}"
        return found

    def wait_healthy(self, workers: int, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            health = self.health()
            healthy = sorted(v for v in health.values() if v.endswith("/healthy"))
            if healthy == sorted(
                ["inbox/healthy", "redis/healthy", "s3/healthy"] + ["worker/healthy"] * workers
            ):
                return
            time.sleep(0.5)
        raise AssertionError(f"not healthy after {timeout_s} s: {self.health()}\n{self.logs()}")

    def logs(self, tail: int = 30) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}", check=False).stdout

    def nodes(self) -> dict[str, str]:
        """Celery node name -> container id, for every running worker."""
        found = {}
        for container in self.containers("worker"):
            result = self.engine.docker("exec", container, "cat", NODE_FILE, check=False)
            if result.returncode == 0:
                found[result.stdout.strip()] = container
        return found

    def down(self) -> None:
        began = time.monotonic()
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
        self.timings["down -v"] = time.monotonic() - began

    def leftovers(self) -> dict[str, list[str]]:
        """Whatever of the project the engine still has: containers, volumes, networks."""
        label = f"label=com.docker.compose.project={self.project}"
        found = {
            "containers": self.containers(all_states=True),
            "volumes": self.engine.docker("volume", "ls", "-q", "--filter", label).stdout.split(),
            "networks": self.engine.docker("network", "ls", "-q", "--filter", label).stdout.split(),
        }
        return {kind: ids for kind, ids in found.items() if ids}


def without_port(command: list[str]) -> list[str]:
    """``command`` without its ``--port N``."""
    words = [str(w) for w in command]
    if "--port" in words:
        at = words.index("--port")
        del words[at : at + 2]
    return words


def submit(cluster: Cluster, target: str, *args: str) -> str:
    """`enact submit TARGET ARGS` from the host, in the user code directory; the flow id."""
    result = run(
        [sys.executable, "-c", "import sys, enact.cli; sys.exit(enact.cli.main())",
         "submit", target, *args],
        env=cluster.host_env(), cwd=cluster.user_code, timeout_s=180,
    )
    return result.stdout.split()[0]


def kill_worker_mid_flow(cluster: Cluster, flow_id: str, settle_s: float,
                         timeout_s: float) -> dict[str, Any]:
    """Follow the flow; ``docker kill`` the container of the worker that runs it.

    Waits until a worker runs the flow, lets it run ``settle_s`` more (a few checkpoints),
    kills that worker's container, and follows the flow to its end. Returns what was seen:
    the status lines (``tests.compose.flow_watch``), the node and container killed, and the
    times of the kill and of the first line naming another worker (None if none did).
    """
    watch = subprocess.Popen(
        [sys.executable, "-m", "tests.compose.flow_watch", flow_id, str(timeout_s)],
        cwd=REPO, env=cluster.host_env(), stdout=subprocess.PIPE, text=True,
    )
    seen: dict[str, Any] = {"lines": [], "running_on": None, "killed": None,
                            "killed_at": None, "continued_at": None}
    lines = seen["lines"]
    try:
        assert watch.stdout is not None
        for raw in watch.stdout:
            lines.append(json.loads(raw))
            if lines[-1].get("status") == "running" and lines[-1].get("worker"):
                break
        seen["running_on"] = lines[-1].get("worker") if lines else None
        if not seen["running_on"]:
            return seen
        time.sleep(settle_s)
        seen["killed"] = cluster.nodes().get(seen["running_on"])
        if seen["killed"] is None:
            return seen
        cluster.engine.docker("kill", seen["killed"])
        seen["killed_at"] = time.time()
        for raw in watch.stdout:
            lines.append(json.loads(raw))
            worker = lines[-1].get("worker")
            if seen["continued_at"] is None and worker and worker != seen["running_on"]:
                seen["continued_at"] = lines[-1]["t"]
        watch.wait(30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    return seen


@contextlib.contextmanager
def engine_from_env() -> Iterator[Engine]:
    """Our own engine, or the one COMPOSE_TEST_DOCKER_HOST names; always stopped if ours."""
    engine = Engine(os.environ.get("COMPOSE_TEST_DOCKER_HOST") or None)
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()


def local_images_wanted() -> bool:
    return os.environ.get("COMPOSE_TEST_IMAGES", "local") == "local"

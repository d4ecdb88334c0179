"""docker-compose.yml, deploy/Dockerfile and .env.example agree with the spec and the code.

The compose file is validated against the compose specification, and then read as YAML to
check that what it runs is what the code reads: the ENACT_* names are the ones
``enact/config.py`` defines, the worker command and healthcheck are Celery's, and the
native twin hands its workers the same variables.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from enact import config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
SCRIPT = REPO / "deploy" / "local-cluster.sh"

CONFIG_NAMES = {value for name, value in vars(config).items() if name.startswith("ENV_")}
# Worker tuning the compose file passes on; the twin's workers inherit them from `start`.
TUNING = {
    config.ENV_WORKER_POOL,
    config.ENV_WORKER_CONCURRENCY,
    config.ENV_VISIBILITY_TIMEOUT_S,
    config.ENV_CHECKPOINT_INTERVAL_S,
    config.ENV_FLOW_LOCK_TTL_S,
    config.ENV_CACHE_URL,
    config.ENV_CACHE_TTL_S,
}
WORKER_COMMAND = [
    "celery",
    "-A",
    "enact.worker",
    "worker",
    "--loglevel=INFO",
    "--hostname=worker@%h",
]
WORKER_HEALTHCHECK = (
    "celery -A enact.worker inspect ping --destination worker@$HOSTNAME --timeout 5"
)
# Secrets: no default, so compose refuses to start until each is set.
REQUIRED = ("ENACT_REDIS_URL", "REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY", "ENACT_API_TOKEN")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def unescape(text: str) -> str:
    """A compose string as the container sees it: `$$` is a literal `$`."""
    return text.replace("$$", "$")


def default_of(value: str) -> str:
    """The value of a `${VAR:-default}` string when VAR is unset."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


# Validation against the compose specification ------------------------------------------


def test_compose_file_validates_against_the_compose_spec(require):
    if importlib.util.find_spec("check_jsonschema") is None:
        require("check-jsonschema is not installed")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def docker_compose_config(env_file: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    args = [binary, "--project-directory", str(REPO), "-f", str(COMPOSE)]
    args += ["--env-file", str(env_file), "config", "-q"]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ENACT_", "AWS_")) and name != "REDIS_PASSWORD"
    }
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("env_file", [None, ENV_EXAMPLE], ids=["no-env", "env-example"])
def test_docker_compose_refuses_to_start_with_a_secret_unset(env_file, tmp_path):
    # A second opinion on top of the schema check above, which always runs: the
    # Debian docker-compose package is not on every machine, CI's included.
    # An empty env file stands in for "no .env", whatever a developer keeps in the repo.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = docker_compose_config(env_file or empty)
    assert result.returncode != 0
    assert re.search(r"set (ENACT_REDIS_URL|REDIS_PASSWORD|AWS_SECRET_ACCESS_KEY|ENACT_API_TOKEN) "
                     r"in \.env",
                     result.stderr), result.stderr  # fmt: skip


def test_docker_compose_accepts_the_file_with_the_secrets_set(tmp_path):
    filled = tmp_path / "filled.env"
    lines = ENV_EXAMPLE.read_text().splitlines()
    secrets = {
        "REDIS_PASSWORD": "pw",
        "ENACT_REDIS_URL": "redis://:pw@redis:6379/0",
        "AWS_SECRET_ACCESS_KEY": "s3-secret",
        "ENACT_API_TOKEN": "token",
    }
    filled.write_text(
        "\n".join(
            f"{line.partition('=')[0]}={secrets[line.partition('=')[0]]}"
            if line.partition("=")[0] in secrets
            else line
            for line in lines
        )
        + "\n"
    )
    result = docker_compose_config(filled)
    assert result.returncode == 0, result.stdout + result.stderr


# The names and commands match the code --------------------------------------------------


def test_every_enact_variable_in_the_deployment_files_is_one_config_reads():
    for path in (COMPOSE, ENV_EXAMPLE, DOCKERFILE):
        used = set(re.findall(r"\bENACT_[A-Z0-9_]+\b", path.read_text()))
        unknown = used - CONFIG_NAMES
        assert not unknown, f"{path.name} uses {sorted(unknown)}, not defined in enact/config.py"


def test_worker_gets_every_setting_a_cluster_needs(compose):
    env = compose["services"]["worker"]["environment"]
    needed = {
        config.ENV_REDIS_URL,
        config.ENV_BROKER_URL,
        config.ENV_REDIS_PREFIX,
        config.ENV_STORE_URL,
        config.ENV_S3_ENDPOINT_URL,
        config.ENV_IMPORTS,
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        *TUNING,
    }
    assert needed <= set(env), sorted(needed - set(env))
    # Each one can be overridden from .env under its own name.
    for name, value in env.items():
        assert INTERPOLATION.fullmatch(value) and INTERPOLATION.fullmatch(value).group(1) == name
    defaults = {name: default_of(value) for name, value in env.items()}
    # Secrets have no default (compose refuses to start without them); sample values here.
    assert set(REQUIRED) & set(env) == {config.ENV_REDIS_URL, "AWS_SECRET_ACCESS_KEY"}
    defaults[config.ENV_REDIS_URL] = "redis://:pw@redis:6379/0"
    defaults["AWS_SECRET_ACCESS_KEY"] = "s3-secret"
    config.parse_store_url(defaults[config.ENV_STORE_URL])
    settings = config.Settings.from_env(defaults)
    assert settings.broker_url == defaults[config.ENV_REDIS_URL]
    # Tuning left empty means enact's own defaults.
    assert settings.worker_pool == config.DEFAULT_WORKER_POOL
    assert settings.worker_concurrency == config.DEFAULT_WORKER_CONCURRENCY
    assert settings.visibility_timeout_s == config.DEFAULT_VISIBILITY_TIMEOUT_S


def test_env_example_documents_exactly_the_compose_variables():
    code = "\n".join(
        line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    referenced = {name for name, _ in INTERPOLATION.findall(code)}
    assert set(env_example()) == referenced
    # Its values are the compose defaults, secrets aside.
    defaults = {m.group(1): m.group(2) or "" for m in INTERPOLATION.finditer(code)}
    for name, value in env_example().items():
        if name in REQUIRED:  # left empty: compose refuses to start until it is set
            assert value == "", name
        else:
            assert value == defaults[name], name


def test_store_url_names_the_bucket_seaweedfs_creates(compose):
    store = default_of(compose["services"]["worker"]["environment"][config.ENV_STORE_URL])
    bucket = default_of(compose["services"]["s3"]["environment"]["S3_BUCKET"])
    assert config.parse_store_url(store).netloc == bucket
    worker_env = compose["services"]["worker"]["environment"]
    s3_env = compose["services"]["s3"]["environment"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert worker_env[name] == s3_env[name], f"worker and s3 disagree on {name}"


def test_worker_command_and_healthcheck_are_celerys(compose):
    worker = compose["services"]["worker"]
    assert worker["command"] == WORKER_COMMAND
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert unescape(test[1]) == WORKER_HEALTHCHECK
    # The healthcheck pings this container's node: the name the command gives it.
    assert "--hostname=worker@%h" in worker["command"]


def test_worker_service_scales_and_shuts_down_warm(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "hostname" not in worker
    assert worker["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}
    assert worker["init"] is True
    assert worker["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "s3": {"condition": "service_healthy"},
    }
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    # Above Docker's 10 s default and the healthcheck's own timeout, so a warm shutdown
    # (running tasks finish) is not cut short by SIGKILL.
    grace = seconds(worker["stop_grace_period"])
    assert grace >= 60
    assert grace > seconds(worker["healthcheck"]["timeout"])


def test_redis_persists_every_write_and_never_evicts(compose):
    redis = compose["services"]["redis"]
    assert re.fullmatch(r"redis:7\.\d+\.\d+", redis["image"]), "pin Redis by version"
    command = [str(word) for word in redis["command"]]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2]))
    password = flags.pop("--requirepass")
    assert flags == {
        "--appendonly": "yes",
        "--appendfsync": "always",
        "--maxmemory-policy": "noeviction",
    }
    # A password, required: `${REDIS_PASSWORD:?...}` has no default.
    assert INTERPOLATION.fullmatch(password).group(1) == "REDIS_PASSWORD"
    assert password.startswith("${REDIS_PASSWORD:?")
    # The healthcheck's redis-cli authenticates with REDISCLI_AUTH, the same secret.
    assert redis["environment"]["REDISCLI_AUTH"] == password
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_s3_is_seaweedfs_with_a_bucket_and_a_healthcheck(compose):
    s3 = compose["services"]["s3"]
    assert s3["image"].startswith("chrislusf/seaweedfs:")
    assert re.fullmatch(r"\d+\.\d+", default_of(s3["image"]).split(":")[1]), "pin by version"
    assert s3["command"][0] == "mini"
    assert "-s3.port=8333" in s3["command"]
    assert "-master.telemetry=false" in s3["command"]
    assert any(volume.endswith(":/data") for volume in s3["volumes"])
    check = unescape(s3["healthcheck"]["test"][1])
    assert "http://127.0.0.1:8333/healthz" in check
    assert "s3.bucket.list" in check and "$S3_BUCKET" in check
    worker_env = compose["services"]["worker"]["environment"]
    assert default_of(worker_env[config.ENV_S3_ENDPOINT_URL]) == "http://s3:8333"


def test_published_ports_stay_on_loopback(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert default_of(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


# The image and the twin ------------------------------------------------------------------


def test_dockerfile_builds_a_slim_non_root_worker_image(compose):
    text = DOCKERFILE.read_text()
    # The base is a build argument whose default is a slim Python 3.12 pinned by version;
    # both stages (the virtualenv's build and the image) start from it.
    base = re.search(r"^ARG BASE_IMAGE=(\S+)\s*$", text, re.M)
    assert base and re.fullmatch(r"python:3\.12\.\d+-slim(-\w+)?", base.group(1))
    assert re.findall(r"^FROM (.*?)\s*$", text, re.M) == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    assert re.search(r"^ARG PIP_INSTALL_OPTIONS=\s*$", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    # enact[worker] goes into a virtualenv (a Debian base refuses a system-wide install),
    # copied into the image, its bin/ first on PATH.
    assert re.search(r"python3 -m venv /opt/enact\b", text)
    # The worker extra, and the web extra for the inbox service that runs from this image.
    assert re.search(r"/opt/enact/bin/pip install \$PIP_INSTALL_OPTIONS \"[^\"]*\[worker,web\]\"",
                     text)
    assert "COPY --from=build /opt/enact /opt/enact" in text
    assert "PATH=/opt/enact/bin:$PATH" in text
    cmd = re.search(r"^CMD (\[.*\])\s*$", text, re.M)
    assert cmd and json.loads(cmd.group(1)) == WORKER_COMMAND
    # User code: the directory on PYTHONPATH is where compose mounts it.
    assert "PYTHONPATH=/app/user" in text
    mounts = compose["services"]["worker"]["volumes"]
    assert any(default_of(m).split(":")[1] == "/app/user" for m in mounts)


def test_dockerignore_admits_only_the_package():
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!enact/"} <= set(lines)
    # The offline build's wheelhouse (deploy/README.md), and nothing else of deploy/.
    assert [line for line in lines if line.startswith("!deploy")] == ["!deploy/wheels/"]


def test_twin_env_before_start_fails_loudly(tmp_path):
    env = {"PATH": os.environ["PATH"], "ENACT_CLUSTER_DIR": str(tmp_path / "c")}
    result = subprocess.run(
        ["bash", str(SCRIPT), "env"], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 1
    assert "nothing started" in result.stderr and result.stdout == ""
    assert not (tmp_path / "c").exists(), "env must not create the run dir"


def twin_matches_compose_worker(exported: dict[str, str], compose: dict) -> None:
    """The variables a started twin exports are the compose worker's (checked by
    tests/deploy/test_local_cluster.py on a running twin)."""
    worker_names = set(compose["services"]["worker"]["environment"])
    # The twin leaves ENACT_BROKER_URL unset (its broker is its Redis) and passes tuning on
    # from the environment of `start`, which its workers inherit.
    assert set(exported) == worker_names - {config.ENV_BROKER_URL} - TUNING
    assert set(exported) & CONFIG_NAMES == {n for n in exported if n.startswith("ENACT_")}
    assert exported[config.ENV_STORE_URL] == default_of(
        compose["services"]["worker"]["environment"][config.ENV_STORE_URL]
    )

"""Every ``python`` and ``bash`` block of README.md runs as written: one test per block.

Blocks are found by scanning the README, so a new section's blocks are covered with no
change here. Each test is named after the block's line and section.

* **Local python blocks** run in order in one interpreter, sharing their names as a
  reader's session would (the first example defines ``roll_die``, later ones use it),
  in a scratch directory with no ``ENACT_*`` setting.
* **Cluster blocks** (they use ``enact.worker``, the cluster commands of the CLI,
  ``celery``, the inbox or ``deploy/local-cluster.sh``) run against the native twin,
  ``deploy/local-cluster.sh`` (moto as its S3, one worker, the inbox on 7600), with its
  environment. ``myproject.flows``, the README's name for *your* module, is a scratch
  package that re-exports the dice examples.
* **Bash blocks** run line by line in bash. A few lines are not run, because the
  environment of the tests already is what they set up: ``pip install``, ``pytest``
  (this very suite), ``cp .env.example .env`` and ``docker-compose`` (the compose file
  has its own tests in tests/deploy), and the lines that start services the twin
  already runs (``celery ... worker``, ``enact worker``, ``enact serve``,
  ``deploy/local-cluster.sh start|stop``; in a cluster block, ``export ENACT_...``).
* Placeholders in bash blocks stand for what the block made: ``FLOW`` is the last flow
  a block submitted, ``REQUEST`` that flow's oldest pending request, ``REF`` the last
  invocation ref ``enact run`` printed.
* A block fails if it raises (python), or if an ``enact`` command exits 1 or 2 (a
  mistake or a usage error) or a ``curl`` gets an HTTP error (bash). Exit codes 3 to 6
  are flow states, which blocks may show.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

CLUSTER = re.compile(
    r"enact\.worker|\benact (submit|status|inputs|input|answer|flows|cancel|retry|fork|serve|"
    r"worker|show FLOW)\b|local-cluster\.sh|\bcelery\b|localhost:7600|ENACT_REDIS_URL"
)
SETUP = re.compile(r"^\s*(pip install|pytest\b|cp \.env\.example|docker-compose|docker compose)")
SERVICE = re.compile(
    r"^\s*(celery .*\bworker\b|enact (worker|serve)\b|(\w+=\S+ )*deploy/local-cluster\.sh "
    r"(start|stop)\b)"
)
EXPORT_ENACT = re.compile(r"^\s*export ENACT_")
PORTS = {"redis": 7621, "s3": 7631, "inbox": 7600}


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    section: str
    text: str

    @property
    def cluster(self) -> bool:
        return bool(CLUSTER.search(self.text))

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")[:40]
        return f"L{self.line}-{self.lang}-{slug}"


def readme_blocks() -> list[Block]:
    blocks, section, lang, start, body = [], "", None, 0, []
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if lang is None:
            if line.startswith("#") and not line.startswith("#!"):
                section = line.lstrip("#").strip()
            found = re.match(r"^```(\w*)\s*$", line)
            if found:
                lang, start, body = found.group(1), number, []
        elif line.startswith("```"):
            if lang in ("python", "bash"):
                blocks.append(Block(start, lang, section, "\n".join(body) + "\n"))
            lang = None
        else:
            body.append(line)
    return blocks


BLOCKS = readme_blocks()

# One interpreter per kind of session: runs the blocks in order, each in the same
# namespace, and reports each block's outcome as a JSON line.
RUNNER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for line, code in blocks:
    try:
        exec(compile(code, f"README.md:{line}", "exec"), namespace)
        outcome = None
    except BaseException:
        outcome = traceback.format_exc(limit=6)
    sys.stdout.flush()
    print("\n@@RESULT " + json.dumps([line, outcome]), flush=True)
"""

BASH_PRELUDE = r"""
FAILURES=$1; shift
FLOW=""; REQUEST=""; REF=""
FLOW_ID='import json, sys
reply = json.load(open(sys.argv[1]))
print(reply.get("id", "") if isinstance(reply, dict) and "status" in reply else "")'
_refresh() {  # wait for FLOW to settle, then take its oldest pending request
    [ -n "$FLOW" ] || return 0
    python -m enact.cli status "$FLOW" --wait 60 >/dev/null 2>&1
    REQUEST=$(python -m enact.cli inputs --flow "$FLOW" --json 2>/dev/null |
        python -c 'import json,sys; d=json.load(sys.stdin); print(d[-1]["id"] if d else "")')
}
enact() {
    local out err code ref
    out=$(mktemp); err=$(mktemp)
    python -m enact.cli "$@" >"$out" 2>"$err"; code=$?
    cat "$out"; cat "$err" >&2
    case $1 in
    submit) FLOW=$(awk 'NR == 1 { print $1 }' "$out"); _refresh ;;
    answer) _refresh ;;
    esac
    ref=$(grep -oE -- '(--continue|invocation) [0-9a-f]{64}' "$err" | tail -n 1 | awk '{print $2}')
    [ -z "$ref" ] || REF=$ref
    if [ "$code" = 1 ] || [ "$code" = 2 ]; then echo "enact $* exited $code" >>"$FAILURES"; fi
    rm -f "$out" "$err"
    return "$code"
}
curl() {
    local out code id
    out=$(mktemp)
    command curl --silent --show-error --fail-with-body "$@" >"$out"; code=$?
    cat "$out"; echo
    if [ "$code" != 0 ]; then echo "curl $* failed ($code): $(cat "$out")" >>"$FAILURES"; fi
    id=$(python -c "$FLOW_ID" "$out" 2>/dev/null)
    if [ -n "$id" ]; then FLOW=$id; fi
    _refresh
    rm -f "$out"
    return "$code"
}
"""


def bash_script(block: Block) -> str:
    lines = []
    for line in block.text.splitlines():
        if SETUP.match(line) or SERVICE.match(line):
            lines.append(f": not run here: {line.strip()[:60]!r}")
            continue
        if block.cluster and EXPORT_ENACT.match(line):
            lines.append(": the twin's environment is already exported")
            continue
        line = re.sub(r"\bFLOW\b", '"$FLOW"', line)
        line = re.sub(r"\bREQUEST\b", '"$REQUEST"', line)
        line = re.sub(r"\bREF\b", '"$REF"', line)
        lines.append(line)
    return BASH_PRELUDE + "\n".join(lines) + "\n"


def _run_session(blocks: list[Block], env: dict[str, str], cwd: Path) -> dict[int, str | None]:
    source = cwd / "blocks.json"
    source.write_text(json.dumps([[b.line, b.text] for b in blocks]))
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(source)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    results: dict[int, str | None] = {}
    for chunk in done.stdout.split("\n@@RESULT ")[1:]:
        line, outcome = json.loads(chunk.splitlines()[0])
        results[line] = outcome
    for block in blocks:
        results.setdefault(block.line, f"the session ended before it:\n{done.stderr[-3000:]}")
    return results


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENACT_", "AWS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "examples")])
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def local_results(tmp_path_factory: pytest.TempPathFactory) -> dict[int, str | None]:
    blocks = [b for b in BLOCKS if b.lang == "python" and not b.cluster]
    return _run_session(blocks, _clean_env({}), tmp_path_factory.mktemp("readme-local"))


def _port_free(port: int) -> bool:
    """Nothing listens there (a port in TIME_WAIT is free for the servers, which reuse it)."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The native twin, started for the cluster blocks; its client environment."""
    for what in ("redis-server", "curl"):
        if shutil.which(what) is None:
            pytest.fail(f"{what} is needed to run the README's cluster blocks")
    busy = [p for p in PORTS.values() if not _port_free(p)]
    if busy:
        pytest.fail(f"ports {busy} are in use; the README's cluster blocks need them")
    scratch = tmp_path_factory.mktemp("readme-cluster")
    package = scratch / "pkgs" / "myproject"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(
        '"""The README\'s stand-in for your module: the dice examples."""\n'
        "from dice import roll_die, roll_sum  # noqa: F401\n"
        "from human_dice import human_rolls_die, roll_dice_user_flow  # noqa: F401\n"
    )
    run_dir = scratch / "run"
    env = _clean_env(
        {
            "ENACT_CLUSTER_DIR": str(run_dir),
            "ENACT_CLUSTER_REDIS_PORT": str(PORTS["redis"]),
            "ENACT_CLUSTER_S3_PORT": str(PORTS["s3"]),
            "ENACT_CLUSTER_INBOX_PORT": str(PORTS["inbox"]),
            "ENACT_CLUSTER_S3_SERVER": "moto",
            "ENACT_CLUSTER_PYTHON": sys.executable,
            "ENACT_CLUSTER_GRACE_S": "10",
            "ENACT_IMPORTS": "dice,human_dice,myproject.flows",
        }
    )
    env["PYTHONPATH"] += os.pathsep + str(scratch / "pkgs")
    script = str(REPO / "deploy" / "local-cluster.sh")
    started = subprocess.run(
        ["bash", script, "start", "1"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        exported = subprocess.run(
            ["bash", script, "env"], cwd=REPO, env=env, capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
        client = dict(env)
        for line in exported.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            client[name] = subprocess.run(
                ["bash", "-c", f"printf %s {value}"], capture_output=True, text=True
            ).stdout
        yield client
    finally:
        subprocess.run(["bash", script, "stop"], cwd=REPO, env=env, capture_output=True,
                       timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def cluster_results(
    twin: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[int, str | None]:
    blocks = [b for b in BLOCKS if b.lang == "python" and b.cluster]
    return _run_session(blocks, twin, tmp_path_factory.mktemp("readme-cluster-python"))


def test_the_readme_has_blocks_of_both_kinds() -> None:
    assert {b.lang for b in BLOCKS} == {"python", "bash"}
    assert any(b.cluster for b in BLOCKS) and any(not b.cluster for b in BLOCKS)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"], ids=lambda b: b.id)
def test_python_block(block: Block, request: pytest.FixtureRequest) -> None:
    fixture = "cluster_results" if block.cluster else "local_results"
    outcome = request.getfixturevalue(fixture)[block.line]
    assert outcome is None, f"README.md:{block.line} ({block.section}) raised:\n{outcome}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "bash"], ids=lambda b: b.id)
def test_bash_block(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if block.cluster:
        env = request.getfixturevalue("twin")
    else:  # run from the repository, as the README's paths say; the store in scratch
        env = _clean_env({"ENACT_STORE_URL": f"file:{tmp_path / 'store'}"})
    failures = tmp_path / "failures"
    failures.touch()
    script = tmp_path / "block.sh"
    script.write_text(bash_script(block))
    done = subprocess.run(
        ["bash", str(script), str(failures)], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    problems = failures.read_text().strip()
    assert not problems, (
        f"README.md:{block.line} ({block.section}):\n{problems}\n"
        f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-2000:]}"
    )

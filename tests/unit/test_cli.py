"""The ``enact`` command, called through ``main(argv)`` and as a console script.

Local commands and every mistake a person can make on the command line: each gives
one line on stderr and exit code 1, never a traceback. The cluster commands' exit
codes (which follow the flow's state) are in ``tests/web/test_cli_cluster.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import enact
from enact.cli import EXIT_FAILED, EXIT_WAITING, build_parser, main, parse_value

REPO = Path(__file__).resolve().parents[2]
DICE = str(REPO / "examples" / "dice.py")
HUMAN = str(REPO / "examples" / "human_dice.py")


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("enact: "), err
    assert "Traceback" not in err
    return lines[0]


def test_parse_value_reads_json_else_strings():
    assert parse_value("3") == 3 and type(parse_value("3")) is int
    assert parse_value("3.5") == 3.5
    assert parse_value('"3"') == "3"
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("true") is True
    assert parse_value("hello world") == "hello world"


def test_run_prints_the_summary_and_show_prints_it_again(tmp_path, capsys):
    store = f"file:{tmp_path / 'store'}"
    assert main(["run", f"{DICE}:roll_sum", "3", "--store", store]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert re.fullmatch(r"->roll_sum\(3\) = (\d+)", lines[0])
    rolls = [int(re.fullmatch(r"  ->roll_die\(6\) = ([1-6])", line).group(1)) for line in lines[1:]]
    assert len(rolls) == 3 and sum(rolls) == int(lines[0].rsplit(" ", 1)[1])
    digest = re.search(r"invocation ([0-9a-f]{64})", err).group(1)
    assert main(["show", digest, "--store", store]) == 0
    assert capsys.readouterr().out.splitlines() == lines


def test_run_answers_input_requests_in_order(tmp_path, capsys):
    store = f"file:{tmp_path}"
    argv = ["run", f"{HUMAN}:roll_dice_user_flow", "--store", store]
    assert main(argv + ["--answer", "2", "--answer", "5", "--answer", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "->roll_dice_user_flow() = 9"
    assert lines.count("  ->human_rolls_die() = 5") == 1


def _continue_ref(err: str) -> str:
    return re.search(r"--continue ([0-9a-f]{64})", err).group(1)


def test_run_stopped_for_input_prints_its_ref_and_continues_it_without_resampling(tmp_path, capsys):
    store = f"file:{tmp_path}"
    script = tmp_path / "sampled.py"
    script.write_text(
        "import random, enact\n"
        "@enact.register\n"
        "def sample() -> int:\n"
        "    return random.randint(0, 10**9)\n"
        "@enact.register\n"
        "def pick() -> list:\n"
        "    drawn = [sample() for _ in range(3)]\n"
        "    i = enact.request_input(requested_type=int, for_value='which?', context=drawn)\n"
        "    return [drawn, i]\n"
    )
    assert main(["run", f"{script}:pick", "--store", store]) == EXIT_WAITING
    out, err = capsys.readouterr()
    assert "waiting for input: 'which?' (int)" in err
    assert f"continue with: enact run {script}:pick --continue " in err  # it registers pick
    drawn = [int(m) for m in re.findall(r"->sample\(\) = (\d+)", out)]
    ref = _continue_ref(err)
    # A wrong-typed answer: one line, still waiting, the same ref to continue.
    assert main(["run", "--continue", ref, "--answer", "first", "--store", store]) == EXIT_WAITING
    err = capsys.readouterr().err
    assert "does not match the requested type int" in err and _continue_ref(err) == ref
    assert main(["run", "--continue", ref, "--answer", "1", "--store", store]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"->pick() = {[drawn, 1]}"  # the same samples: reused


def test_run_that_fails_prints_its_ref_and_continue_retries_only_what_failed(tmp_path, capsys):
    store = f"file:{tmp_path}"
    marker = tmp_path / "fixed"
    script = tmp_path / "flaky.py"
    script.write_text(
        "import os, random, enact\n"
        "@enact.register\n"
        "def sample() -> int:\n"
        "    return random.randint(0, 10**9)\n"
        "@enact.register\n"
        "def fragile(x: int) -> int:\n"
        f"    if not os.path.exists({str(marker)!r}):\n"
        "        raise RuntimeError('service down')\n"
        "    return x + 1\n"
        "@enact.register\n"
        "def job() -> int:\n"
        "    return fragile(sample())\n"
    )
    assert main(["run", f"{script}:job", "--store", store]) == EXIT_FAILED
    out, err = capsys.readouterr()
    assert "enact: failed: RuntimeError: service down" in err and "Traceback" not in err
    drawn = int(re.search(r"->sample\(\) = (\d+)", out).group(1))
    marker.write_text("")
    assert main(["run", "--continue", _continue_ref(err), "--store", store]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"->job() = {drawn + 1}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nocolon"], "expected FILE.py:NAME or MODULE:NAME"),
        (["run", "missing_dir/missing.py:f"], "no such file"),
        (["run", f"{DICE}:nope"], "has no attribute 'nope'"),
        (["run", "no_such_module_anywhere:f"], "No module named 'no_such_module_anywhere'"),
        (["run", f"{DICE}:roll_sum"], "missing a required argument: 'num_rolls'"),
        (["run", f"{DICE}:roll_sum", "1", "2"], "too many positional arguments"),
        (["run"], "run needs FILE.py:NAME"),
        (["run", "--continue", "abc"], "expects an invocation ref"),
        (["run", "--continue", "0" * 64], "ObjectMissing" + "|" + "no object"),
        (["submit", "nocolon"], "expected FILE.py:NAME or MODULE:NAME"),
        (["submit", f"{DICE}:roll_sum"], "missing a required argument"),
        (["fork", "f1", "--answer", "nope"], "PATH=VALUE"),
        (["flows", "--status", "sleeping"], "unknown status sleeping"),
        (["flows", "--since", "yesterday"], "--since 'yesterday'"),
        (["show", "0" * 64, "--store", "nope://x"], "ConfigError"),
    ],
)
def test_each_mistake_is_one_line_and_exit_code_1(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Cluster commands point at a Redis port nothing listens on (7699: this suite's range).
    monkeypatch.setenv("ENACT_REDIS_URL", "redis://127.0.0.1:7699/0")
    assert main(argv) == 1
    line = _one_line_error(capsys)
    assert re.search(message, line), line


def test_redis_down_is_one_line_naming_the_server(capsys, monkeypatch):
    monkeypatch.setenv("ENACT_REDIS_URL", "redis://user:sekret@127.0.0.1:7699/0")
    for argv in (["flows"], ["inputs"], ["status", "f1"], ["answer", "f1:0", "3"]):
        assert main(argv) == 1
        line = _one_line_error(capsys)
        assert "127.0.0.1:7699" in line and "sekret" not in line


def test_usage_errors_exit_2_and_version_and_help(capsys):
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"enact {enact.__version__}"
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


def test_every_argument_has_help():
    parser = build_parser()
    missing = []
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest != "help" and not action.help:
                missing.append(f"{name} {action.dest}")
    for choice in subparsers._choices_actions:
        if not choice.help:
            missing.append(choice.dest)
    assert missing == []


def test_console_script_runs_on_the_embedded_default_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENACT_")}
    out = subprocess.run(
        ["enact", "run", f"{DICE}:roll_sum", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("->roll_sum(2) = ")
    assert (tmp_path / ".enact" / "objects").is_dir()  # the default: file:.enact


def test_console_script_mistake_has_no_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "enact.cli", "run", "nosuchmodule:f"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "enact: cannot import nosuchmodule: ModuleNotFoundError: No module named 'nosuchmodule'"
    )

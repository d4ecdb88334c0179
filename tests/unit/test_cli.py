"""The ``enact`` command, called through ``main(argv)`` and as a console script."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from enact.cli import main, parse_value

REPO = Path(__file__).resolve().parents[2]
DICE = str(REPO / "examples" / "dice.py")
HUMAN = str(REPO / "examples" / "human_dice.py")


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


def test_run_without_answers_reports_the_waiting_request(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["run", f"{HUMAN}:roll_dice_user_flow", "--store", f"file:{tmp_path}"]) == 2
    out, err = capsys.readouterr()
    assert "raised InputRequest" in out
    assert "waiting for input: 'Total number of rolls?'" in err


def test_run_rejects_a_wrong_typed_answer(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    argv = ["run", f"{HUMAN}:roll_dice_user_flow", "--store", f"file:{tmp_path}"]
    assert main(argv + ["--answer", "three"]) == 2
    assert "does not match the requested type int" in capsys.readouterr().err


def test_bad_targets_name_the_problem(tmp_path):
    with pytest.raises(SystemExit, match="expected FILE.py:NAME"):
        main(["run", "nocolon"])
    with pytest.raises(SystemExit, match="no such file"):
        main(["run", str(tmp_path / "missing.py") + ":f"])
    with pytest.raises(SystemExit, match="has no attribute 'nope'"):
        main(["run", f"{DICE}:nope"])


def test_console_script_runs_on_the_embedded_default_store(tmp_path):
    out = subprocess.run(
        ["enact", "run", f"{DICE}:roll_sum", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("->roll_sum(2) = ")
    assert (tmp_path / ".enact" / "objects").is_dir()  # the default: file:.enact

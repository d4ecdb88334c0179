"""The seed README's examples, run as scripts, print what the README shows.

Random values are matched by pattern; sums must agree with the rolls printed
under them, and the replayed first roll must equal the original one.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

DIE = r"->roll_die\(6\) = ([1-6])"


def run_example(name: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "<function" not in result.stdout, result.stdout
    assert " at 0x" not in result.stdout.replace("Die object at 0x", ""), result.stdout
    return result.stdout.splitlines()


def match_lines(lines: list[str], patterns: list[str]) -> list[re.Match[str]]:
    assert len(lines) == len(patterns), "\n".join(lines)
    matches = []
    for line, pattern in zip(lines, patterns):
        match = re.fullmatch(pattern, line)
        assert match is not None, f"{line!r} does not match {pattern!r}"
        matches.append(match)
    return matches


def test_dice_track_rewind_replay() -> None:
    lines = run_example("dice.py")
    m = match_lines(
        lines,
        [
            r"->roll_sum\(2\) = (\d+)",
            "  " + DIE,
            "  " + DIE,
            r"Partial invocation: ?",
            r"->roll_sum\(2\) incomplete",
            "  " + DIE,
            "",
            r"Replayed invocation: ?",
            r"->roll_sum\(2\) = (\d+)",
            "  " + DIE,
            "  " + DIE,
        ],
    )
    first, second = int(m[1][1]), int(m[2][1])
    assert int(m[0][1]) == first + second
    # The partial invocation keeps the first roll, and the replay reuses it.
    assert int(m[5][1]) == first
    assert int(m[9][1]) == first
    assert int(m[8][1]) == int(m[9][1]) + int(m[10][1])


def test_human_dice_input_requests() -> None:
    lines = run_example("human_dice.py")
    request = r"->RequestInput\(requested_type=<class 'int'>, context=None\)"
    assert lines == [
        "->roll_dice_user_flow() = 18",
        "  ->RequestInput(requested_type=<class 'int'>, context=None)(Total number of rolls?) = 3",
        "  ->human_rolls_die() = 6",
        "    ->RequestInput(requested_type=<class 'int'>, context=None)(Please roll a die.) = 6",
        "  ->human_rolls_die() = 6",
        "    ->RequestInput(requested_type=<class 'int'>, context=None)(Please roll a die.) = 6",
        "  ->human_rolls_die() = 6",
        "    ->RequestInput(requested_type=<class 'int'>, context=None)(Please roll a die.) = 6",
    ]
    assert re.match(request, lines[1].strip())


def test_resources_examples() -> None:
    lines = run_example("resources.py")
    m = match_lines(
        lines,
        [
            r"->DiceRoll\(num_rolls=2, sides_per_die=6\)\(None\) = (\d+)",
            "  " + DIE,
            "  " + DIE,
            re.escape("Dice roll object associated with the invocation: ")
            + re.escape("DiceRoll(num_rolls=2, sides_per_die=6)"),
            re.escape("Dice roll object after modification: ")
            + re.escape("DiceRoll(num_rolls=3, sides_per_die=8)"),
            re.escape("MyResource(x=1, y=[2, 3])"),
            r"-><__main__\.Die object at 0x[0-9a-f]+>\.roll\(\) = ([1-6])",
        ],
    )
    assert int(m[0][1]) == int(m[1][1]) + int(m[2][1])

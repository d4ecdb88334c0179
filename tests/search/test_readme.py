"""The README's "Search over executions" example runs as written and prints what it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_search_example_runs_as_written(tmp_path) -> None:
    readme = (ROOT / "README.md").read_text()
    text = readme.split("## Search over executions\n", 1)[1].split("\n## ", 1)[0]
    [(_, example), (_, shown)] = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == shown.splitlines()

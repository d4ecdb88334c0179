"""The README's compatibility example runs as written (after the first example it continues)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.compat.runner import REPO_ROOT


def _blocks(section: str) -> list[tuple[str, str]]:
    """The (language, body) of each fenced block of a README section."""
    readme = (REPO_ROOT / "README.md").read_text()
    text = readme.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w*)\n(.*?)```", text, re.S)


def test_the_compatibility_example_runs_as_written(tmp_path) -> None:
    first = next(body for lang, body in _blocks("Tracking calls") if lang == "python")
    blocks = _blocks("Compatibility with enact 0.4")
    [(lang, example), (_, shown)] = blocks
    assert lang == "python"
    script = tmp_path / "example.py"
    script.write_text(first + "\n" + example)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The first example prints its own (random) summary first: three lines.
    assert done.stdout.splitlines()[3:] == shown.splitlines()

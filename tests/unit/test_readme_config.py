"""The README's configuration examples (Settings, your own backend) run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _block(marker: str) -> str:
    [block] = [b for b in BLOCKS if marker in b]
    return block


def _run(code: str, tmp_path: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_settings_example(tmp_path: Path) -> None:
    lines = _run(_block("Settings.from_env({"), tmp_path)
    assert lines == ["[1, 2]", "redis://user:secret@cache:6379/0", "False"]


def test_own_backend_example(tmp_path: Path) -> None:
    assert _run(_block("register_scheme"), tmp_path) == ["DictBackend hello"]

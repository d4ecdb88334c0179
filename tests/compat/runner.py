"""Runs the cases against ours or the original, and masks what may differ by design.

Masked: object addresses (``0x...``), digests (they hash different encodings) and
the ``#abc123`` digest tags of ``pformat``; and the original's function reprs in
summaries (``<function f at 0x...>``) become names, the form API.md asks for, so
summaries can be compared at all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.compat.cases import SOURCES

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.py")
ORIGINAL_PYTHON = os.environ.get("ENACT_ORIGINAL_PYTHON", "/work/orig-venv/bin/python")


def original_python() -> tuple[str | None, str]:
    """The interpreter of the original enact 0.4.15, or ``None`` and why it is not usable."""
    if not os.path.exists(ORIGINAL_PYTHON):
        return None, f"no enact 0.4.15 interpreter at {ORIGINAL_PYTHON} (ENACT_ORIGINAL_PYTHON)"
    probe = subprocess.run(
        [ORIGINAL_PYTHON, "-c", "import importlib.metadata as m; print(m.version('enact'))"],
        capture_output=True, text=True, timeout=60, env=_env(ours=False),
        cwd=tempfile.gettempdir(),  # not the repository: its enact.egg-info would answer
    )  # fmt: skip
    if probe.stdout.strip() != "0.4.15":
        return None, f"{ORIGINAL_PYTHON} does not have enact 0.4.15: {probe.stderr.strip()[-200:]}"
    return ORIGINAL_PYTHON, ""


def _env(ours: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENACT_", "PYTHON"))}
    if ours:
        env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def run(python: str, ours: bool) -> dict[str, dict[str, Any]]:
    """Every case's result in one interpreter: ``{name: {output, error, traceback}}``."""
    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "cases.json"
        cases.write_text(json.dumps(SOURCES))
        done = subprocess.run(
            [python, str(DRIVER), str(cases)],
            capture_output=True, text=True, timeout=600, env=_env(ours), cwd=tmp,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the case driver failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def run_ours() -> dict[str, dict[str, Any]]:
    return run(sys.executable, ours=True)


def mask(text: str) -> str:
    text = re.sub(r"<function (\w+) at 0x[0-9a-f]+>", r"\1", text)
    text = re.sub(r"0x[0-9a-f]+", "0x?", text)
    text = re.sub(r"\b[0-9a-f]{64}\b", "<digest>", text)
    return re.sub(r"#[0-9a-f]{6}\b", "#<digest>", text)


def observed(result: dict[str, Any]) -> str:
    """What a case showed: its masked output, and the type of an exception that escaped."""
    shown = mask(result["output"])
    if result["error"]:
        shown += f"<escaped: {result['error']}>\n"
    return shown

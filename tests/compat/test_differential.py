"""Programs written for enact 0.4 run unchanged (issue 12): a differential suite.

Every case in ``cases.py`` runs against ours in a subprocess, and what it shows
(masked: addresses and digests) must equal what enact 0.4.15 showed, recorded in
``expected.py``. Where the original's interpreter is available
(``ENACT_ORIGINAL_PYTHON``, default ``/work/orig-venv/bin/python``), the cases also
run against it, and must still show what ``expected.py`` says, so the expectations
cannot drift from the original. The cases in ``DIFFERENCES`` differ on purpose:
ours must show its own recorded output there, and the two must differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.compat import expected
from tests.compat.cases import DIFFERENCES, SOURCES
from tests.compat.runner import REPO_ROOT, observed, original_python, run, run_ours

NAMES = sorted(SOURCES)


@pytest.fixture(scope="module")
def ours() -> dict[str, dict[str, Any]]:
    return run_ours()


@pytest.fixture(scope="module")
def original() -> dict[str, dict[str, Any]]:
    python, why = original_python()
    if python is None:
        pytest.skip(f"the original enact 0.4.15 is not available: {why}")
    return run(python, ours=False)


@pytest.mark.parametrize("name", NAMES)
def test_ours_shows_what_the_original_showed(name: str, ours: dict[str, dict[str, Any]]) -> None:
    result = ours[name]
    assert result["error"] is None, result["traceback"]
    want = expected.OURS[name] if name in DIFFERENCES else expected.ORIGINAL[name]
    assert observed(result) == want


@pytest.mark.parametrize("name", NAMES)
def test_the_original_still_shows_the_expectation(
    name: str, original: dict[str, dict[str, Any]]
) -> None:
    assert observed(original[name]) == expected.ORIGINAL[name]


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_differences_are_real_and_documented(name: str) -> None:
    assert expected.OURS[name] != expected.ORIGINAL[name]
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Differences from enact 0.4", 1)[1].split("\n## ", 1)[0]
    assert f"`{name}`" in section, f"README's Differences section does not list {name}"


def test_every_case_has_an_expectation() -> None:
    assert set(expected.ORIGINAL) == set(SOURCES)
    assert set(expected.OURS) == set(DIFFERENCES)


def test_masking_keeps_what_matters() -> None:
    from tests.compat.runner import mask

    assert mask("-><function roll at 0x7f00ab>(6) = 4") == "->roll(6) = 4"
    assert mask("a: -> Pair#3d0160") == "a: -> Pair#<digest>"
    assert mask("id " + "ab" * 32) == "id <digest>"
    assert mask("= 42") == "= 42" and re.search("True", mask("True")) is not None
    assert Path(expected.__file__).exists()

"""Re-captures ``expected.py``: ``PYTHONPATH=. python -m tests.compat.capture``.

Runs every case against the original enact 0.4.15 (``ENACT_ORIGINAL_PYTHON``) and,
for the cases in ``DIFFERENCES``, against ours too. Review the diff before
committing it: the expectations are what the compatibility tests hold ours to.
"""

from __future__ import annotations

import pprint
from pathlib import Path

from tests.compat.cases import DIFFERENCES, SOURCES
from tests.compat.runner import observed, original_python, run, run_ours


def main() -> None:
    python, why = original_python()
    if python is None:
        raise SystemExit(f"cannot capture: {why}")
    original = {name: observed(r) for name, r in run(python, ours=False).items()}
    ours = {name: observed(r) for name, r in run_ours().items() if name in DIFFERENCES}
    text = (
        '"""What each case shows (masked), captured by ``tests.compat.capture``.\n\n'
        "``ORIGINAL``: against enact 0.4.15. ``OURS``: against this enact, for the cases\n"
        'that differ on purpose (``cases.DIFFERENCES``)."""\n\n'
        f"ORIGINAL = {pprint.pformat(dict(sorted(original.items())), width=100)}\n\n"
        f"OURS = {pprint.pformat(dict(sorted(ours.items())), width=100)}\n"
    )
    assert set(original) == set(SOURCES)
    Path(__file__).with_name("expected.py").write_text(text)
    print(f"captured {len(original)} cases ({len(ours)} differences)")


if __name__ == "__main__":
    main()

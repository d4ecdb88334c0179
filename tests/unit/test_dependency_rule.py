"""Dependencies point one way: importing enact loads no server client library."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("celery", "boto3", "botocore", "redis", "kombu")


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def _forbidden(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)


def test_importing_enact_loads_no_client_libraries() -> None:
    modules = _modules_after("import enact")
    assert "enact" in modules
    assert _forbidden(modules) == []


def test_using_local_stores_loads_no_client_libraries() -> None:
    code = (
        "import enact, tempfile\n"
        "with enact.InMemoryStore():\n"
        "    enact.commit({'a': (1, 2)})()\n"
        "with enact.FileStore(tempfile.mkdtemp()):\n"
        "    enact.commit([1])()\n"
        "import enact.stores, enact.config\n"
        "enact.config.open_backend('memory://')"
    )
    assert _forbidden(_modules_after(code)) == []


def test_enact_import_does_not_read_the_environment_at_import_time() -> None:
    """A bad ENACT_STORE_URL only matters once a store is opened."""
    env_code = (
        "import os\nos.environ['ENACT_STORE_URL'] = 'bogus://'\nimport enact\n"
        "try:\n    enact.Store()\nexcept enact.ConfigError:\n    pass\n"
        "else:\n    raise SystemExit('no ConfigError')"
    )
    assert "enact" in _modules_after(env_code)

"""A private cluster for the search tests: a redis-server of their own on a free port
in 7500-7599, a file store in a temporary directory, and real Celery worker
processes (``tests.worker.conftest.Workers``) that the fixtures always stop."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import RedisServer, free_port_in, subprocess_env
from tests.worker.conftest import Workers

PORTS = range(7500, 7600)


@pytest.fixture(scope="module")
def search_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of the cluster; the test process is configured to use it too."""
    pytest.importorskip("celery")
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for the search cluster tests")
    from enact.worker import runtime
    from enact.worker.app import reconfigure

    root = tmp_path_factory.mktemp("search-cluster")
    redis_server = RedisServer(root / "redis", free_port_in(PORTS)).start()
    env = subprocess_env(
        {
            "ENACT_REDIS_URL": redis_server.url,
            "ENACT_STORE_URL": f"file://{root / 'store'}",
            "ENACT_IMPORTS": "tests.search.programs",
            "ENACT_CHECKPOINT_INTERVAL_S": "0",
            "SEARCH_TEST_DRAW_LOG": str(root / "draws.log"),
        }
    )
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runtime.reset()
    reconfigure()
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        runtime.reset()
        reconfigure()
        gc.collect()
        redis_server.stop()


@pytest.fixture
def workers(search_cluster: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(search_cluster, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()

"""Fixtures for the recovery tests: clusters that are always stopped, by pid."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import unavailable
from tests.recovery.cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[[int], Cluster]]:
    """``cluster(workers)``: Redis and ``workers`` worker processes, this process their client."""
    pytest.importorskip("celery")
    pytest.importorskip("redis")
    if shutil.which("redis-server") is None:
        unavailable("the recovery tests need a redis-server binary")
    made: list[Cluster] = []

    def make(workers: int) -> Cluster:
        started = Cluster(tmp_path / f"cluster{len(made)}")
        made.append(started)  # before start: a half-started cluster is stopped too
        started.start(workers)
        started.connect()
        return started

    try:
        yield make
    finally:
        for started in made:
            started.close()

"""Fixtures for the compose tests: one engine and one 3-worker cluster for the module.

The engine is the harness's own ``dockerd``. When it cannot start, the tests skip with the
engine's own error, except under ``CI``, where they fail with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.compose import harness

WORKERS = 3


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}\n(CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def host_before() -> dict:
    """The host's interfaces and firewall rules before the engine starts."""
    return {"links": harness.host_links(), "iptables": harness.iptables_rules()}


@pytest.fixture(scope="module")
def engine(host_before) -> Iterator[harness.Engine]:
    engine = harness.Engine(os.environ.get("COMPOSE_TEST_DOCKER_HOST") or None)
    try:
        engine.start()
    except harness.EngineUnavailable as exc:
        engine.stop()
        unavailable(f"the Docker engine cannot run here: {exc}")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def images(engine) -> harness.Images | None:
    """Local images (base from debootstrap), or None to run the compose file's own images."""
    if not harness.local_images_wanted():
        return None
    built = harness.Images(engine)
    try:
        built.build_all()
    except harness.EngineUnavailable as exc:
        unavailable(str(exc))
    return built


@pytest.fixture(scope="module")
def cluster(engine, images, tmp_path_factory) -> Iterator[harness.Cluster]:
    """docker-compose.yml up with 3 workers, healthy; always taken down with its volumes."""
    cluster = harness.Cluster(engine, tmp_path_factory.mktemp("compose"), images)
    cluster.prepare()
    try:
        if images is not None:
            cluster.build()
        cluster.up(WORKERS)
        yield cluster
    finally:
        cluster.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
        timings = {**(images.timings if images else {}), **cluster.timings}
        print("\ncompose timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))

"""enact.search on real Celery workers: the same search as locally, rollouts on workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import enact
import enact.worker
from enact import search
from tests.search.programs import digits, match_score, nested_digits

ROOT = Path(__file__).resolve().parents[2]


def _spec(result):
    return result.invocation.get_input().args[0]


def _children(result):
    return [child.digest for child in result.invocation.get_children()]


@pytest.mark.parametrize("strategy", ["best_of_n", "beam", "mcts"])
def test_identical_results_locally_and_on_workers(workers, strategy):
    workers.start("w1", concurrency=2)
    workers.start("w2", concurrency=2)

    options = dict(scorer=match_score, budget=40, parallelism=4, seed=9)
    with enact.worker.store():
        remote = search.search(strategy, nested_digits, (3,), cluster=True, **options)
    with enact.InMemoryStore():
        local = search.search(strategy, nested_digits, (3,), cluster=False, **options)
    assert _spec(remote).cluster and not _spec(local).cluster
    assert _children(remote) == _children(local)
    assert remote.best.digest == local.best.digest
    assert (remote.score, remote.stats) == (local.score, local.stats)
    assert remote.stats["sampled"] <= 40


def test_cluster_is_chosen_when_configured(workers):
    workers.start("w1", concurrency=2)
    assert search.cluster_configured()
    result = search.best_of_n(digits, (2,), scorer=match_score, budget=6, parallelism=2, seed=1)
    assert _spec(result).cluster
    assert result.stats["sampled"] <= 6 and result.best is not None


def test_game24_example_runs_on_the_cluster_when_configured(workers, search_cluster):
    workers.env = dict(search_cluster, ENACT_IMPORTS="tests.search.programs,examples.game24")
    workers.start("w1", concurrency=4)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "game24.py"), "12"],
        capture_output=True, text=True, timeout=240, cwd=ROOT, env=search_cluster,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5 and all(" samples: " in line for line in lines)
    assert "score 1.0" in done.stdout
    # The rollouts ran on the worker: its log shows the pulled calls.
    assert "enact.pull_calls" in (workers.log_dir / "w1.log").read_text()

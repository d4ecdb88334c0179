"""enact.search on real Celery workers: the same search as locally, rollouts on workers."""

from __future__ import annotations

import pytest

import enact
import enact.worker
from enact import search
from tests.search.programs import digits, match_score, nested_digits


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

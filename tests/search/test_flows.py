"""A search run as a flow: it checkpoints, survives a killed worker without drawing
the samples of finished rollouts again, and pauses for a human scorer answered
through ``enact answer``."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import enact
import enact.worker
from enact import search, tree
from enact.cli import main
from enact.search import Sampler
from tests.search.programs import DRAW_LOG, PICK_DELAY, digits, human_score, match_score


def _draws(search_cluster: dict[str, str]) -> Path:
    return Path(search_cluster[DRAW_LOG])


def _lines(path: Path, skip: int) -> list[str]:
    return path.read_text().splitlines()[skip:] if path.exists() else []


def _values(rollout_invocation: enact.Invocation) -> list[str]:
    """The samples a recorded rollout drew (they follow from its key)."""
    spec = rollout_invocation.get_input().args[0]
    sampler = Sampler(spec.key, spec.cap)
    return [str(sampler.next()) for _ in range(rollout_invocation.get_output().drawn)]


def test_a_search_flow_survives_a_killed_worker(workers, search_cluster):
    log = _draws(search_cluster)
    skip = len(_lines(log, 0))
    workers.env = dict(search_cluster, **{PICK_DELAY: "0.1"})
    workers.start("doomed", concurrency=4)
    options = dict(scorer=match_score, budget=30, parallelism=2, seed=4)
    spec = search.search_spec("mcts", digits, (3,), cluster=True, **options)
    flow = enact.worker.submit(search.run_search, spec)
    deadline = time.monotonic() + 60
    while len(_lines(log, skip)) < 14 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers.kill("doomed")
    with enact.worker.store() as store:
        head = flow.record().head
        assert head is not None  # it checkpointed
        finished = [
            c for c in tree.load(store, head).invocation(store).get_children() if c.successful()
        ]
    assert finished, "no rollout finished before the kill"
    assert flow.status() != "done"

    workers.start("rescuer", concurrency=4)
    assert flow.wait(120) == "done"
    outcome = flow.result()
    counts = collections.Counter(_lines(log, skip))
    with enact.InMemoryStore():  # (this draws the same samples again, in this process)
        local = search.search("mcts", digits, (3,), cluster=False, **options)
    assert (outcome.score, outcome.stats()) == (local.score, local.stats)
    with enact.worker.store():
        rollouts = flow.invocation().get_children()
        assert [r.digest for r in rollouts] == [r.digest for r in local.invocation.get_children()]
        before_kill = [value for r in finished for value in _values(r)]
    # Samples of rollouts finished before the kill were drawn once; only the batch
    # running at the kill ran again (at most twice its caps: the old map and the new).
    assert [counts[value] for value in before_kill] == [1] * len(before_kill)
    assert outcome.sampled <= 30
    assert sum(counts.values()) - outcome.sampled <= 2 * 2 * 3
    assert flow.record().worker == "rescuer@test"


def test_a_human_judged_search_is_answered_through_enact_answer(workers, search_cluster, capsys):
    log = _draws(search_cluster)
    skip = len(_lines(log, 0))
    workers.start("w", concurrency=4)
    spec = search.search_spec(
        "best_of_n", digits, (2,), scorer=human_score, budget=4, parallelism=2, seed=3,
        cluster=True,
    )  # fmt: skip
    flow = enact.worker.submit(search.run_search, spec)
    for answer in ("0.25", "0.75"):
        assert flow.wait(60) == "waiting"
        [request] = enact.worker.pending_inputs(flow.id)
        assert request.context == "score from 0 to 1"
        assert main(["answer", request.id, answer]) == 0
        assert "resumes" in capsys.readouterr().out
    assert flow.wait(60) == "done"
    outcome = flow.result()
    assert outcome.score == 0.75
    assert (outcome.rollouts, outcome.sampled) == (2, 4)
    with enact.worker.store():
        rollouts = flow.invocation().get_children()
        assert outcome.best.digest == rollouts[1].get_output().invocation.digest
        values = [value for r in rollouts for value in _values(r)]
    # The pauses drew nothing again: four samples, each drawn once. (Other lines
    # may come from a killed worker's tasks of an earlier test, redelivered.)
    counts = collections.Counter(_lines(log, skip))
    assert len(values) == 4 and [counts[v] for v in values] == [1, 1, 1, 1]

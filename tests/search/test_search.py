"""enact.search locally: each strategy finds a known optimum, deterministically, within
its budget, reusing recorded samples instead of drawing them again."""

from __future__ import annotations

import pytest

import enact
from enact import search
from enact.search import BudgetExhausted, draw, sampling
from tests.search import programs
from tests.search.programs import EXECUTED, TARGET, digits, match_score, nested_digits

STRATEGIES = ("best_of_n", "beam", "mcts")


@pytest.fixture
def store():
    EXECUTED.take()
    with enact.InMemoryStore() as store:
        yield store


def run(strategy: str, program=digits, args=(3,), **kwargs):
    kwargs.setdefault("scorer", match_score)
    kwargs.setdefault("cluster", False)
    return search.search(strategy, program, args, **kwargs)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_finds_the_known_optimum(store, strategy):
    result = run(strategy, budget=240, parallelism=3, seed=7)
    assert result.score == 1.0
    assert result.best.get_output() == TARGET[:3]
    # The best is a real recorded execution whose score the scorer gives again.
    assert match_score(result.best) == 1.0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nested_sampled_calls_are_cut_below_the_top(store, strategy):
    result = run(strategy, nested_digits, (4,), budget=600, parallelism=2, seed=3)
    assert result.score == 1.0
    assert result.best.get_output() == [TARGET[:2], TARGET[2:]]
    if strategy != "best_of_n":
        assert result.stats["reused_samples"] > 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_search_whatever_the_threads(store, strategy):
    first = run(strategy, budget=40, parallelism=4, seed=11)
    again = run(strategy, budget=40, parallelism=4, seed=11)
    assert first.invocation.digest == again.invocation.digest
    assert first.best.digest == again.best.digest
    assert (first.score, first.stats) == (again.score, again.stats)
    other = run(strategy, budget=40, parallelism=4, seed=12)
    assert other.invocation.digest != first.invocation.digest


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("budget", [0, 1, 2, 3, 5, 8, 13, 32])
def test_the_budget_is_never_exceeded(store, strategy, budget):
    EXECUTED.take()
    result = run(strategy, budget=budget, parallelism=3, seed=budget)
    executed = EXECUTED.take()
    assert result.stats["sampled"] == executed <= budget
    if budget >= 3:
        assert result.best is not None  # at least one rollout finished


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("expected", [1, 3, 10])
def test_expected_samples_only_shapes_the_batches(store, strategy, expected):
    EXECUTED.take()
    result = run(strategy, budget=40, parallelism=4, seed=3, expected_samples=expected)
    assert result.stats["sampled"] == EXECUTED.take() <= 40
    assert result.best is not None
    if expected == 3:  # right: the first batch runs in parallel, nothing is cut short
        rollouts = [child.get_output() for child in result.invocation.get_children()]
        assert rollouts[1].finished


@pytest.mark.parametrize("strategy", ["beam", "mcts"])
def test_reused_samples_are_not_sampled_again(store, strategy):
    EXECUTED.take()
    result = run(strategy, budget=60, parallelism=2, seed=5)
    stats = result.stats
    executed = EXECUTED.take()
    # Every recorded sample a rollout reused ran once, in the rollout that drew it.
    assert stats["reused_samples"] > 0
    assert executed == stats["sampled"] == 60
    rollouts = [child.get_output() for child in result.invocation.get_children()]
    assert sum(r.drawn for r in rollouts) == executed
    assert sum(len(r.samples) for r in rollouts) == executed + stats["reused_samples"]
    # Records are shared, not copied.
    assert stats["bytes_stored"] < stats["bytes_copied"]


def test_the_search_is_tracked_and_replays_without_sampling(store):
    result = run("mcts", budget=30, parallelism=2, seed=2)
    EXECUTED.take()
    replayed = result.invocation.replay()
    assert EXECUTED.take() == 0
    assert replayed.digest == result.invocation.digest
    # A rewound search redoes only what was cut, with the same draws.
    rewound = result.invocation.rewind(1)
    again = rewound.replay()
    assert again.get_output() == result.invocation.get_output()
    assert 0 < EXECUTED.take() <= 3


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_program_that_samples_nothing_ends_the_search(store, strategy):
    result = run(strategy, programs.no_samples, (3,), budget=10, parallelism=2)
    assert result.best.get_output() == [0, 1, 2]
    assert result.stats["sampled"] == 0 and result.stats["rollouts"] <= 2


@pytest.mark.parametrize("strategy", ["beam", "mcts"])
def test_a_resumed_search_continues_where_it_stopped(store, strategy):
    """Resuming (a flow after a crash) reuses finished rollouts and, for new ones,
    still retries the sampled call that ran out of samples in an unfinished prefix."""
    result = run(strategy, budget=30, parallelism=2, seed=8, expected_samples=1)
    children = result.invocation.get_children()
    assert any(c.get_input().args[0].source and not c.get_input().args[0].cut for c in children)
    spec = result.invocation.get_input().args[0]
    rewound = result.invocation.rewind(len(children) // 2)
    EXECUTED.take()
    resumed = enact.invoke(search.run_search, (spec,), replay_from=rewound, retry_raised=False)
    assert resumed.digest == result.invocation.digest
    assert EXECUTED.take() < result.stats["sampled"]


def test_a_search_inside_a_tracked_call_is_its_child(store):
    outer = enact.invoke(programs.searching, (24,))
    [child] = outer.get_children()
    outcome = child.get_output()
    assert isinstance(outcome, search.SearchOutcome)
    assert outer.get_output() == outcome.score and outcome.sampled <= 24
    EXECUTED.take()
    assert outer.replay().digest == outer.digest
    assert EXECUTED.take() == 0


def test_draw_outside_a_search_is_fresh_and_inside_is_keyed_and_capped():
    assert draw() != draw()
    with sampling("k", 2):
        first = [draw(), draw()]
        with pytest.raises(BudgetExhausted):
            draw()
    with sampling("k", 2):
        assert [draw(), draw()] == first


def test_bad_arguments_are_refused(store):
    with pytest.raises(ValueError, match="strategy"):
        run("greedy", budget=3)
    with pytest.raises(TypeError, match="option"):
        run("mcts", budget=3, beam_size=2)
    with pytest.raises(TypeError, match="program"):
        run("mcts", program=programs._flat, args=([1],), budget=3)

"""examples/game24.py and examples/poem.py: the pieces are right and the searches work."""

from __future__ import annotations

from fractions import Fraction

import enact
from enact import search
from examples import game24, poem


def test_game24_puzzles_are_solvable_and_the_verifier_is_exact():
    puzzles = game24.puzzles(20, seed=1)
    assert len({tuple(p) for p in puzzles}) == 20
    for numbers in puzzles:
        steps = game24.solution(tuple(Fraction(n) for n in sorted(numbers)))
        assert game24.check(numbers, steps) == 24
    assert game24.check([4, 6, 1, 1], ["4 * 6 = 24", "1 * 1 = 1", "24 * 1 = 24"]) == 24
    assert game24.check([4, 6, 1, 1], ["4 * 6 = 25", "1 * 1 = 1", "25 - 1 = 24"]) is None
    assert game24.check([4, 6, 1, 1], ["4 * 4 = 16", "1 * 1 = 1", "16 + 1 = 17"]) is None
    assert not game24.solvable((Fraction(1), Fraction(1), Fraction(1), Fraction(1)))


def test_game24_search_solves_a_puzzle_within_its_budget():
    with enact.InMemoryStore():
        for strategy in ("best_of_n", "beam", "mcts"):
            result = search.search(
                strategy, game24.solve24, ([5, 6, 8, 13], 0.3), scorer=game24.verify,
                budget=48, parallelism=4, seed=0, cluster=False, stop_at=1.0,
            )  # fmt: skip
            assert result.score == 1.0
            assert result.stats["sampled"] <= 48
            assert game24.check([5, 6, 8, 13], result.best.get_output()) == 24


def test_poem_mcts_beats_best_of_n_at_the_same_budget():
    assert poem.syllables("whisper") == 2 and poem.syllables("stone") == 1
    assert poem.rhyme("tree") == poem.rhyme("free") != poem.rhyme("stone")
    with enact.InMemoryStore():
        options = dict(scorer=poem.judge, budget=64, parallelism=4, seed=1, cluster=False)
        best_of_n = search.best_of_n(poem.poem, (), **options)
        mcts = search.mcts(poem.poem, (), **options)
    assert mcts.score > best_of_n.score
    assert mcts.stats["reused_samples"] > 0

"""Search over executions: best-of-N, beam and MCTS over a program's recorded runs.

Each node of the search is a prefix of recorded samples; expanding one rewinds a
recorded execution to it and replays it with fresh samples, so every sample
before the cut is reused. The search is itself a tracked invocation. See
``enact.search.strategies`` for the strategies, ``enact.search.rollouts`` for one
rollout and ``enact.search.sampling`` for ``draw()``, where programs take their
randomness from.
"""

from enact.search.rollouts import Rollout, RolloutSpec, footprint, rollout, run_rollouts
from enact.search.sampling import BudgetExhausted, Sampler, draw, sampling
from enact.search.strategies import (
    STRATEGIES,
    SearchOutcome,
    SearchResult,
    SearchSpec,
    beam,
    best_of_n,
    cluster_configured,
    mcts,
    run_search,
    search,
    search_spec,
)

__all__ = [
    "STRATEGIES",
    "BudgetExhausted",
    "Rollout",
    "RolloutSpec",
    "Sampler",
    "SearchOutcome",
    "SearchResult",
    "SearchSpec",
    "beam",
    "best_of_n",
    "cluster_configured",
    "draw",
    "footprint",
    "mcts",
    "rollout",
    "run_rollouts",
    "run_search",
    "sampling",
    "search",
    "search_spec",
]

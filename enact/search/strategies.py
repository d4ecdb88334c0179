"""Best-of-N, beam and MCTS over the tree of a program's executions.

The search tree's nodes are *prefixes*: a node at depth ``d`` stands for the
executions whose first ``d`` sampled calls returned the same outputs (edges are
keyed by the sampled call's output digest, so equal samples share a node). Every
rollout adds the whole chain of prefixes it went through. To expand a node, a
rollout replays a recorded execution through that node, rewound just before its
``d``-th sampled call: the ``d`` samples before the cut are reused, not drawn again.

* ``best_of_n``: independent rollouts from the start until the budget is spent.
* ``beam``: level by level, ``width`` rollouts from each of the ``beam_size`` best
  prefixes; the best children (by best score below them) form the next level.
* ``mcts``: UCT over prefixes with progressive widening (a node with ``n`` visits
  may have ``ceil(widening * sqrt(n))`` expansions): select, expand by a rollout
  from the selected prefix, back the score up the chain.

Determinism: a rollout's randomness comes from the seed and the id of the node it
expands and the number of rollouts that node had before (``enact.search.sampling``);
the search picks rollouts in batches of ``parallelism`` and integrates each batch in
order, so the same seed and parallelism give the same search, locally or on workers.

Budget: counted in draws (sampled calls run fresh). A batch is planned so the caps
of its rollouts fit in what is left (a rollout's cap is the longest finished
rollout seen, or ``expected_samples``, less its prefix; before either is known one
rollout runs alone with the whole budget), so the sum of the draws never exceeds
the budget.

The search is a tracked call (``run_search``): its rollouts are its children, so
replaying or resuming it (a flow after a crash or an answer) reuses every
rollout that finished.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from enact import calls
from enact.config import DEFAULT_REDIS_URL, Settings
from enact.context import active_store
from enact.invokables import invoke
from enact.progress import Progress
from enact.records import Invocation
from enact.registry import register
from enact.resources import Resource
from enact.search.rollouts import Rollout, RolloutSpec, footprint, run_rollouts

__all__ = [
    "STRATEGIES",
    "SearchOutcome",
    "SearchResult",
    "SearchSpec",
    "beam",
    "best_of_n",
    "cluster_configured",
    "mcts",
    "run_search",
    "search",
    "search_spec",
]

STRATEGIES = ("best_of_n", "beam", "mcts")
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "best_of_n": {},
    "beam": {"beam_size": 2, "width": 2},
    "mcts": {"exploration": 0.5, "widening": 1.0, "backup": "mean"},
}


@register
@dataclass
class SearchSpec(Resource):
    """Everything a search depends on (the input of ``run_search``)."""

    strategy: str
    program: Any
    args: list[Any]
    scorer: Any
    budget: int
    parallelism: int = 1
    seed: int = 0
    cluster: bool = False
    stop_at: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    expected_samples: int | None = None


@register
@dataclass
class SearchOutcome(Resource):
    """What a search found (the output of ``run_search``), with its statistics."""

    best: Invocation | None
    score: float | None
    sampled: int
    reused_samples: int
    reused_calls: int
    rollouts: int
    objects: int
    bytes_stored: int
    bytes_copied: int
    bytes_as_trees: int

    def stats(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "reused_samples": self.reused_samples,
            "reused_calls": self.reused_calls,
            "rollouts": self.rollouts,
            "objects": self.objects,
            "bytes_stored": self.bytes_stored,
            "bytes_copied": self.bytes_copied,
            "bytes_as_trees": self.bytes_as_trees,
        }


class _Prefix:
    """A node of the search tree (see the module docstring)."""

    __slots__ = (
        "id", "depth", "parent", "children", "source", "terminal",
        "visits", "total", "best", "expansions", "pending",
    )  # fmt: skip

    def __init__(self, node_id: str, depth: int, parent: _Prefix | None) -> None:
        self.id = node_id
        self.depth = depth
        self.parent = parent
        self.children: dict[str, _Prefix] = {}
        self.source: Rollout | None = None  # a rollout through this node, to rewind
        self.terminal = False  # a finished execution has exactly these samples
        self.visits = 0
        self.total = 0.0
        self.best: float | None = None
        self.expansions = 0
        self.pending = 0

    def child(self, output: str) -> _Prefix:
        node = self.children.get(output)
        if node is None:
            node_id = hashlib.sha256(f"{self.id}/{output}".encode()).hexdigest()[:16]
            node = self.children[output] = _Prefix(node_id, self.depth + 1, self)
        return node

    def path(self) -> list[_Prefix]:
        nodes, node = [], self
        while node is not None:
            nodes.append(node)
            node = node.parent  # type: ignore[assignment]
        return nodes[::-1]

    def mean(self) -> float:
        return self.total / self.visits if self.visits else 0.0


class _Search:
    """The state of one running search: tree, budget, best so far."""

    def __init__(self, spec: SearchSpec) -> None:
        self.spec = spec
        self.options = {**DEFAULT_OPTIONS[spec.strategy], **spec.options}
        self.root = _Prefix("root", 0, None)
        self.used = 0
        # samples of the longest finished rollout (or what the caller expects)
        self.longest: int | None = spec.expected_samples
        self.sampled: set[str] = set()
        self.rollouts: list[Rollout] = []
        self.best: Rollout | None = None
        self.progress = Progress(total=spec.budget, label=spec.strategy)
        self.stalled = False  # a batch drew nothing: the program samples nothing more

    # Budget and batches ---------------------------------------------------------------

    @property
    def remaining(self) -> int:
        return self.spec.budget - self.used

    def done(self) -> bool:
        stop = self.spec.stop_at
        found = self.best is not None and stop is not None and (self.best.score or 0.0) >= stop
        return found or self.stalled or self.remaining <= 0

    def plan(self, candidates: Sequence[_Prefix]) -> list[tuple[_Prefix, int]]:
        """The candidates that fit in the budget left, with their caps, in order."""
        if self.longest is None:  # nothing finished yet: one rollout, the whole budget
            return [(candidates[0], self.remaining)] if candidates and self.remaining > 0 else []
        left = self.remaining
        planned = []
        for node in candidates:
            cap = max(1, self.longest - node.depth)
            if cap <= left:
                planned.append((node, cap))
                left -= cap
        return planned

    def run(self, planned: Sequence[tuple[_Prefix, int]]) -> list[tuple[_Prefix, Rollout]]:
        """Run one batch of rollouts and add them to the tree, in order."""
        specs = [self._spec(node, cap) for node, cap in planned]
        results = run_rollouts(
            specs, parallelism=self.spec.parallelism, cluster=self.spec.cluster
        )
        self.stalled = all(result.drawn == 0 for result in results)
        for (node, cap), result in zip(planned, results):
            self._add(node, result)
            if not result.finished and result.drawn >= cap:  # cut short: allow longer ones
                self.longest = max(self.longest or 0, node.depth + cap + 1)
        extra = f"best {self.best.score:.3g}" if self.best and self.best.score is not None else ""
        self.progress.update(done=self.used, extra=extra)
        return list(zip((node for node, _ in planned), results))

    def _spec(self, node: _Prefix, cap: int) -> RolloutSpec:
        key = f"{self.spec.seed}/{node.id}/{node.expansions}"
        node.expansions += 1
        source, cut = None, None
        if node.depth > 0 and node.source is not None:
            record = node.source
            source = record.invocation.digest
            cut = record.samples[node.depth] if node.depth < len(record.samples) else None
        return RolloutSpec(
            program=self.spec.program,
            args=list(self.spec.args),
            scorer=self.spec.scorer,
            key=key,
            cap=cap,
            source=source,
            cut=cut,
            depth=node.depth if source is not None else 0,
            sampled=sorted(self.sampled),
        )

    def _add(self, start: _Prefix, result: Rollout) -> None:
        self.rollouts.append(result)
        self.used += result.drawn
        self.sampled.update(result.sampled)
        if result.finished:
            self.longest = max(self.longest or 0, len(result.samples))
        best = self.best
        if result.score is not None and (best is None or result.score > (best.score or 0.0)):
            self.best = result
        node = start
        for output in result.outputs[start.depth :]:
            node = node.child(output)
            if node.source is None:
                node.source = result
        if result.finished:
            node.terminal = True
        elif node.source is None:
            node.source = result
        value = result.score or 0.0
        for visited in node.path():
            visited.visits += 1
            visited.total += value
            visited.best = value if visited.best is None else max(visited.best, value)

    def outcome(self) -> SearchOutcome:
        self.progress.close()
        scope = calls.current()
        store = calls.store_of(scope) if scope is not None else None
        objects = stored = copied = as_trees = 0
        if store is not None and self.rollouts:
            objects, stored, copied, as_trees = footprint(
                store, [r.invocation.digest for r in self.rollouts]
            )
        best = self.best
        return SearchOutcome(
            best=None if best is None else best.invocation,
            score=None if best is None else best.score,
            sampled=self.used,
            reused_samples=sum(r.reused_samples for r in self.rollouts),
            reused_calls=sum(r.reused_calls for r in self.rollouts),
            rollouts=len(self.rollouts),
            objects=objects,
            bytes_stored=stored,
            bytes_copied=copied,
            bytes_as_trees=as_trees,
        )


# Strategies ----------------------------------------------------------------------------


def _best_of_n(search: _Search) -> None:
    while not search.done():
        planned = search.plan([search.root] * search.spec.parallelism)
        if not planned:
            return
        search.run(planned)


def _beam(search: _Search) -> None:
    size, width = int(search.options["beam_size"]), int(search.options["width"])
    frontier = [search.root]
    while not search.done():
        per_node = max(1, (size * width) // len(frontier))
        queue = [node for node in frontier for _ in range(per_node)]
        children: dict[str, _Prefix] = {}
        while queue and not search.done():
            planned = search.plan(queue[: search.spec.parallelism])
            if not planned:
                return
            del queue[: len(planned)]
            for start, result in search.run(planned):
                if len(result.outputs) > start.depth:
                    child = start.children[result.outputs[start.depth]]
                    if not child.terminal:
                        children[child.id] = child
        ranked = sorted(children.values(), key=lambda n: (-(n.best or 0.0), -n.mean(), n.id))
        frontier = ranked[:size] or [search.root]


def _mcts(search: _Search) -> None:
    exploration = float(search.options["exploration"])
    widening = float(search.options["widening"])
    use_max = search.options["backup"] == "max"

    def select() -> _Prefix:
        node = search.root
        while True:
            seen = node.visits + node.pending
            if node.expansions < max(1, math.ceil(widening * math.sqrt(seen))):
                return node
            open_children = [c for c in node.children.values() if not c.terminal]
            if not open_children:
                return node
            log_n = math.log(max(1, seen))
            node = max(open_children, key=lambda c: _uct(c, log_n, exploration, use_max))

    while not search.done():
        chosen: list[_Prefix] = []
        for _ in range(search.spec.parallelism):
            node = select()
            chosen.append(node)
            for visited in node.path():  # a virtual visit: spreads the batch
                visited.pending += 1
            node.expansions += 1  # counted now so the next selection widens elsewhere
        for node in chosen:
            node.expansions -= 1
            for visited in node.path():
                visited.pending -= 1
        planned = search.plan(chosen)
        if not planned:
            return
        search.run(planned)


def _uct(child: _Prefix, log_n: float, exploration: float, use_max: bool) -> tuple[float, str]:
    n = child.visits + child.pending
    value = (child.best or 0.0) if use_max else child.total / n
    return (value + exploration * math.sqrt(log_n / n), child.id)


_STRATEGY: dict[str, Callable[[_Search], None]] = {
    "best_of_n": _best_of_n,
    "beam": _beam,
    "mcts": _mcts,
}


@register
def run_search(spec: SearchSpec) -> SearchOutcome:
    """Run the search ``spec`` describes; its rollouts are this call's children."""
    if spec.strategy not in _STRATEGY:
        raise ValueError(f"unknown search strategy {spec.strategy!r}: use one of {STRATEGIES}")
    if spec.budget < 0 or spec.parallelism < 1:
        raise ValueError(
            f"a search needs a budget >= 0 and a parallelism >= 1, got {spec.budget} "
            f"and {spec.parallelism}"
        )
    search = _Search(spec)
    try:
        _STRATEGY[spec.strategy](search)
    finally:
        search.progress.close()
    return search.outcome()


# The public functions ---------------------------------------------------------------------


@dataclass
class SearchResult:
    """The best invocation found, its score, the statistics, and the search's own record."""

    best: Invocation | None
    score: float | None
    stats: dict[str, Any]
    invocation: Invocation | None  # the search's record (None when run inside a tracked call)


def cluster_configured(settings: Settings | None = None) -> bool:
    """Whether a cluster is configured (``ENACT_REDIS_URL`` names a Redis of its own)."""
    settings = settings or Settings.from_env()
    return settings.redis_url != DEFAULT_REDIS_URL


def search_spec(
    strategy: str,
    program: Any,
    args: Sequence[Any] = (),
    *,
    scorer: Any,
    budget: int,
    parallelism: int = 1,
    seed: int = 0,
    cluster: bool | None = None,
    stop_at: float | None = None,
    expected_samples: int | None = None,
    **options: Any,
) -> SearchSpec:
    """The ``SearchSpec`` for ``run_search`` (to submit a search as a flow, say).

    ``cluster=None`` means: on the cluster if one is configured. ``expected_samples``
    (the sampled calls of one finished run, if known) lets the first batch run in
    parallel; without it the first rollout runs alone, capped by the whole budget.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown search strategy {strategy!r}: use one of {STRATEGIES}")
    unknown = set(options) - set(DEFAULT_OPTIONS[strategy])
    if unknown:
        raise TypeError(f"{strategy} takes no option {sorted(unknown)}")
    return SearchSpec(
        strategy=strategy,
        program=program,
        args=list(args),
        scorer=scorer,
        budget=budget,
        parallelism=parallelism,
        seed=seed,
        cluster=cluster_configured() if cluster is None else cluster,
        stop_at=stop_at,
        options=options,
        expected_samples=expected_samples,
    )


def search(strategy: str, program: Any, args: Sequence[Any] = (), **kwargs: Any) -> SearchResult:
    """Run a search as a tracked invocation (or as a child, inside a tracked call)."""
    spec = search_spec(strategy, program, args, **kwargs)
    if calls.current() is not None:
        outcome = run_search(spec)
        return SearchResult(outcome.best, outcome.score, outcome.stats(), None)
    if spec.cluster and active_store() is None:
        import enact.worker

        with enact.worker.store():
            invocation = invoke(run_search, (spec,))
    else:
        invocation = invoke(run_search, (spec,))
    outcome = invocation.get_output()
    return SearchResult(outcome.best, outcome.score, outcome.stats(), invocation)


def best_of_n(program: Any, args: Sequence[Any] = (), **kwargs: Any) -> SearchResult:
    """Independent rollouts until the budget is spent; the best one wins.

    Keywords: ``scorer`` (a registered function of the finished invocation, higher
    is better), ``budget`` (sampled calls), ``parallelism``, ``seed``, ``cluster``
    (``None``: the cluster if configured), ``stop_at`` (a score that ends the search),
    ``expected_samples`` (sampled calls in one run, if known: see ``search_spec``).
    """
    return search("best_of_n", program, args, **kwargs)


def beam(program: Any, args: Sequence[Any] = (), **kwargs: Any) -> SearchResult:
    """Beam search over prefixes (``beam_size`` kept per depth, ``width`` rollouts
    each); keywords as ``best_of_n``."""
    return search("beam", program, args, **kwargs)


def mcts(program: Any, args: Sequence[Any] = (), **kwargs: Any) -> SearchResult:
    """Monte Carlo tree search over prefixes (``exploration``, ``widening``);
    keywords as ``best_of_n``."""
    return search("mcts", program, args, **kwargs)

"""RedisState against real Redis: refs with CAS, input requests, restarts, URLs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from enact.config import Settings
from enact.errors import (
    ConfigError,
    ConflictError,
    StoreError,
    StoreUnavailable,
    UnknownInputRequest,
)

pytest.importorskip("redis")

from enact.stores.redis import PendingInput, RedisBackend, RedisState  # noqa: E402

D1, D2, D3 = ("1" * 64), ("2" * 64), ("3" * 64)


@pytest.fixture
def state(redis_url: str, redis_prefix: str) -> Any:
    s = RedisState.from_url(redis_url, prefix=redis_prefix)
    yield s
    s.close()


def _request(state: RedisState, **fields: Any) -> PendingInput:
    values: dict[str, Any] = {
        "flow_id": "flow-1",
        "requested_type": "int",
        "for_value": "Please roll a die.",
        "invocation": D1,
        "path": [0, 2],
    }
    values.update(fields)
    return state.add_input_request(**values)


# -- refs --------------------------------------------------------------------------


def test_refs_set_get_list_delete(state: RedisState) -> None:
    assert state.get_ref("main") is None
    state.set_ref("main", D1)
    state.set_ref("flows/a:b*[c]", D2)  # names are opaque: glob and separator characters
    assert state.get_ref("main") == D1
    assert state.get_ref("flows/a:b*[c]") == D2
    assert state.list_refs() == ["flows/a:b*[c]", "main"]
    assert state.delete_ref("main") is True
    assert state.delete_ref("main") is False
    assert state.get_ref("main") is None
    assert state.ref_history("main") == []
    assert state.list_refs() == ["flows/a:b*[c]"]


def test_compare_and_set(state: RedisState) -> None:
    assert state.compare_and_set_ref("r", None, D1) is True
    assert state.compare_and_set_ref("r", None, D2) is False  # already set
    assert state.compare_and_set_ref("r", D2, D3) is False  # not what it holds
    assert state.get_ref("r") == D1
    assert state.compare_and_set_ref("r", D1, D2) is True
    assert state.get_ref("r") == D2


def test_history_is_appended_with_each_change(state: RedisState, redis_client: Any) -> None:
    before = time.time()
    state.set_ref("h", D1)
    state.set_ref("h", D1)  # no change, no entry
    state.compare_and_set_ref("h", D1, D2)
    state.compare_and_set_ref("h", D1, D3)  # lost: no entry
    state.set_ref("h", D3)
    history = state.ref_history("h")
    assert [d for d, _ in history] == [D3, D2, D1]
    times = [t for _, t in history]
    assert times == sorted(times, reverse=True)
    assert all(before - 5 < t < time.time() + 5 for t in times)
    assert state.ref_history("h", limit=2) == history[:2]


def test_history_is_capped(redis_url: str, redis_prefix: str) -> None:
    state = RedisState.from_url(redis_url, prefix=redis_prefix)
    state.history_limit = 3
    for i in range(6):
        state.set_ref("c", f"{i:064d}")
    assert [d for d, _ in state.ref_history("c")] == [f"{i:064d}" for i in (5, 4, 3)]


def test_cas_race_has_exactly_one_winner_per_round(redis_url: str, redis_prefix: str) -> None:
    threads, rounds = 8, 40
    states = [RedisState.from_url(redis_url, prefix=redis_prefix) for _ in range(threads)]
    states[0].set_ref("race", "0" * 64)
    barrier = threading.Barrier(threads)
    wins: list[list[int]] = [[] for _ in range(rounds)]
    failures: list[BaseException] = []

    def contend(t: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=30)
                expected = f"{r:064d}"
                # Everyone read the same value: only one can move it on.
                if states[t].compare_and_set_ref("race", expected, f"{r + 1:064d}"):
                    wins[r].append(t)
                barrier.wait(timeout=30)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=contend, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not failures, failures
    assert [len(w) for w in wins] == [1] * rounds
    assert states[0].get_ref("race") == f"{rounds:064d}"
    assert len(states[0].ref_history("race", limit=1000)) == rounds + 1


def test_distinct_proposals_race_on_one_ref(redis_url: str, redis_prefix: str) -> None:
    threads, rounds = 8, 25
    states = [RedisState.from_url(redis_url, prefix=redis_prefix) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    winners: list[list[str]] = [[] for _ in range(rounds)]

    def contend(t: int) -> None:
        for r in range(rounds):
            current = states[t].get_ref("free")
            barrier.wait(timeout=30)
            proposal = f"{r:032d}{t:032d}"
            if states[t].compare_and_set_ref("free", current, proposal):
                winners[r].append(proposal)
            barrier.wait(timeout=30)

    workers = [threading.Thread(target=contend, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [len(w) for w in winners] == [1] * rounds
    assert states[0].get_ref("free") == winners[-1][0]


# -- input requests -----------------------------------------------------------------


def test_input_request_lifecycle(state: RedisState) -> None:
    request = _request(state, context="the second roll")
    assert request.status == "pending" and request.id
    assert (request.flow_id, request.path, request.context) == ("flow-1", [0, 2], "the second roll")
    assert abs(request.created - time.time()) < 5
    assert state.get_input_request(request.id) == request
    assert state.pending_inputs() == [request]
    assert state.pending_inputs("flow-1") == [request]
    assert state.pending_inputs("other-flow") == []

    claimed = state.claim_input_request(request.id, "alice", lease_s=30)
    assert (claimed.status, claimed.claimed_by) == ("claimed", "alice")
    assert claimed.claim_expires is not None and claimed.claim_expires > time.time() + 20
    with pytest.raises(ConflictError, match="alice"):
        state.claim_input_request(request.id, "bob", lease_s=30)
    with pytest.raises(ConflictError):
        state.answer_input_request(request.id, D2, claimer="bob")
    with pytest.raises(ConflictError):
        state.answer_input_request(request.id, D2)  # a live claim needs its claimer
    assert state.pending_inputs(include_claimed=False) == []
    assert [r.status for r in state.pending_inputs()] == ["claimed"]

    answered = state.answer_input_request(request.id, D2, claimer="alice")
    assert (answered.status, answered.answer, answered.claimed_by) == ("answered", D2, "alice")
    assert answered.answered is not None
    assert state.pending_inputs() == [] and state.pending_inputs("flow-1") == []
    assert state.get_input_request(request.id) == answered
    # Repeating the same answer is a retry that succeeds; another answer is a conflict.
    assert state.answer_input_request(request.id, D2, claimer="alice").answer == D2
    with pytest.raises(ConflictError, match="already answered"):
        state.answer_input_request(request.id, D3, claimer="alice")
    with pytest.raises(ConflictError):
        state.claim_input_request(request.id, "bob", lease_s=30)

    assert state.remove_input_request(request.id) is True
    assert state.remove_input_request(request.id) is False
    with pytest.raises(UnknownInputRequest):
        state.get_input_request(request.id)


def test_unknown_ids(state: RedisState) -> None:
    with pytest.raises(UnknownInputRequest):
        state.get_input_request("nope")
    with pytest.raises(UnknownInputRequest):
        state.claim_input_request("nope", "alice", 10)
    with pytest.raises(UnknownInputRequest):
        state.answer_input_request("nope", D1)
    assert isinstance(UnknownInputRequest("x"), KeyError)


def test_an_unclaimed_request_can_be_answered_directly(state: RedisState) -> None:
    request = _request(state)
    assert state.answer_input_request(request.id, D3).status == "answered"


def test_add_is_idempotent_on_an_explicit_id(state: RedisState) -> None:
    first = _request(state, id="req-1", context=None)
    again = _request(state, id="req-1", for_value="something else")
    assert again == first
    assert first.context is None
    assert [r.id for r in state.pending_inputs()] == ["req-1"]


def test_an_expired_lease_can_be_claimed_again(redis_url: str, redis_prefix: str) -> None:
    # Alice's client claims, then dies before answering: nothing is lost.
    alice = RedisState.from_url(redis_url, prefix=redis_prefix)
    request = _request(alice)
    alice.claim_input_request(request.id, "alice", lease_s=0.3)
    alice.close()
    bob = RedisState.from_url(redis_url, prefix=redis_prefix)
    with pytest.raises(ConflictError):
        bob.claim_input_request(request.id, "bob", lease_s=5)
    time.sleep(0.5)
    lapsed = bob.get_input_request(request.id)
    assert (lapsed.status, lapsed.claimed_by, lapsed.claim_expires) == ("pending", None, None)
    assert [r.id for r in bob.pending_inputs(include_claimed=False)] == [request.id]
    assert bob.claim_input_request(request.id, "bob", lease_s=5).claimed_by == "bob"
    with pytest.raises(ConflictError):  # alice comes back too late
        RedisState.from_url(redis_url, prefix=redis_prefix).answer_input_request(
            request.id, D2, claimer="alice"
        )
    assert bob.answer_input_request(request.id, D3, claimer="bob").answer == D3


def test_the_holder_can_extend_its_lease(state: RedisState) -> None:
    request = _request(state)
    first = state.claim_input_request(request.id, "alice", lease_s=1)
    second = state.claim_input_request(request.id, "alice", lease_s=60)
    assert second.claim_expires is not None and first.claim_expires is not None
    assert second.claim_expires > first.claim_expires + 30


def test_an_answer_after_a_lapsed_lease_is_accepted(state: RedisState) -> None:
    request = _request(state)
    state.claim_input_request(request.id, "alice", lease_s=0.2)
    time.sleep(0.4)
    assert state.answer_input_request(request.id, D2, claimer="bob").claimed_by == "bob"


def test_claims_race_has_one_winner(redis_url: str, redis_prefix: str) -> None:
    state = RedisState.from_url(redis_url, prefix=redis_prefix)
    request = _request(state)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def claim(t: int) -> None:
        mine = RedisState.from_url(redis_url, prefix=redis_prefix)
        barrier.wait(timeout=30)
        try:
            mine.claim_input_request(request.id, f"worker-{t}", lease_s=30)
            outcomes.append("won")
        except ConflictError:
            outcomes.append("lost")

    workers = [threading.Thread(target=claim, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_pending_inputs_are_ordered_by_created_and_filtered_by_flow(state: RedisState) -> None:
    now = time.time()
    c = _request(state, id="c", flow_id="f2", created=now - 1)
    a = _request(state, id="a", flow_id="f1", created=now - 3)
    b = _request(state, id="b", flow_id="f1", created=now - 2)
    assert [r.id for r in state.pending_inputs()] == ["a", "b", "c"]
    assert state.pending_inputs("f1") == [a, b]
    assert state.pending_inputs("f2") == [c]
    assert a.created == pytest.approx(now - 3)


def test_expire_removes_old_requests_only(state: RedisState, redis_client: Any) -> None:
    old = _request(state, id="old", created=time.time() - 100)
    answered = _request(state, id="old-answered", created=time.time() - 100)
    state.answer_input_request(answered.id, D2)
    fresh = _request(state, id="fresh")
    assert sorted(state.expire_input_requests(older_than_s=50)) == ["old", "old-answered"]
    assert [r.id for r in state.pending_inputs()] == [fresh.id]
    with pytest.raises(UnknownInputRequest):
        state.get_input_request(old.id)
    assert redis_client.zrange(state.keys.inputs(), 0, -1) == ["fresh"]
    assert state.expire_input_requests(older_than_s=50) == []


# -- everything under the prefix --------------------------------------------------------


def test_every_key_is_under_the_prefix(redis_server: Any) -> None:
    import redis

    state = RedisState.from_url(redis_server.url, prefix="only-here")
    backend = RedisBackend.from_url(redis_server.url + "?prefix=only-here")
    state.set_ref("r", D1)
    state.compare_and_set_ref("r", D1, D2)
    request = _request(state)
    state.claim_input_request(request.id, "alice", 10)
    _request(state, id="second", flow_id="f2")
    state.answer_input_request(request.id, D3, claimer="alice")
    backend.put({D1: b"x"})
    keys = redis.Redis.from_url(redis_server.url, decode_responses=True).keys("*")
    assert keys and all(k.startswith("only-here:") for k in keys), keys


def test_prefix_and_url_come_from_the_environment(redis_url: str, redis_prefix: str) -> None:
    env = {"ENACT_REDIS_URL": redis_url, "ENACT_REDIS_PREFIX": redis_prefix}
    settings = Settings.from_env(env)
    state = RedisState.from_url(settings.redis_url, settings=settings)
    assert state.keys.prefix == redis_prefix
    state.set_ref("from-env", D1)
    assert RedisState.from_url(redis_url, prefix=redis_prefix).get_ref("from-env") == D1
    url_prefix = RedisState.from_url(f"{redis_url}?prefix={redis_prefix}", settings=settings)
    assert url_prefix.get_ref("from-env") == D1


# -- connections: restarts, outages, credentials, URLs ---------------------------------


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_a_restart_between_two_operations_is_transparent(redis_server: Any, kill: bool) -> None:
    state = RedisState.from_url(redis_server.url, prefix="restart")
    state.set_ref("kept", D1)
    request = _request(state)
    redis_server.restart(kill=kill)  # appendonly + fsync always: nothing acknowledged is lost
    assert state.get_ref("kept") == D1
    assert state.get_input_request(request.id) == request
    assert state.compare_and_set_ref("kept", D1, D2) is True
    redis_server.restart(kill=kill)
    assert state.claim_input_request(request.id, "alice", 10).status == "claimed"
    assert state.ref_history("kept")[0][0] == D2


def test_a_server_that_is_down_raises_store_unavailable(unused_port: int) -> None:
    state = RedisState.from_url(f"redis://:hunter2@127.0.0.1:{unused_port}/0", prefix="p")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        state.get_ref("x")
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{unused_port}" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    backend = RedisBackend.from_url(f"redis://:hunter2@127.0.0.1:{unused_port}/0")
    with pytest.raises(StoreUnavailable):
        backend.get([D1])
    assert "hunter2" not in backend.url and "hunter2" not in repr(backend)


def test_acl_user_urls(redis_server: Any) -> None:
    import redis

    admin = redis.Redis(port=redis_server.port)
    admin.execute_command("ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "&*", "+@all")
    port = redis_server.port
    state = RedisState.from_url(f"redis://alice:s3cret@127.0.0.1:{port}/0", prefix="acl")
    state.set_ref("r", D1)
    assert state.get_ref("r") == D1
    wrong = RedisState.from_url(f"redis://alice:wrong-pw@127.0.0.1:{port}/0", prefix="acl")
    with pytest.raises(StoreError) as caught:
        wrong.get_ref("r")
    assert "wrong-pw" not in str(caught.value) and f"127.0.0.1:{port}" in str(caught.value)
    assert not isinstance(caught.value, StoreUnavailable)  # credentials are not retried


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379",
        "redis://",
        "redis://127.0.0.1:notaport/0",
        "redis://127.0.0.1:6379/zero",
        "redis://127.0.0.1:6379/0?retries=many",
    ],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        RedisState.from_url(url)
    settings = Settings.from_env({"ENACT_REDIS_URL": url})
    with pytest.raises(ConfigError):
        RedisState.from_url(settings.redis_url, settings=settings)
    with pytest.raises(ConfigError):
        RedisBackend.from_url(url)
    with pytest.raises(ConfigError):
        RedisBackend.from_url("")


def test_rediss_urls_are_accepted() -> None:
    state = RedisState.from_url("rediss://user:pw@cache.example:6380/2", prefix="p")
    assert "cache.example:6380/2" in repr(state)
    assert "pw" not in repr(state)


def test_a_malformed_prefix_is_refused(redis_url: str) -> None:
    with pytest.raises(ConfigError):
        RedisState.from_url(redis_url, prefix="has space")

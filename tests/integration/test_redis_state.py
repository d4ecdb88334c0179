"""RedisState against real Redis: refs with CAS, restarts, URLs.

(Input requests moved to enact.worker.flowstate: tests/worker/test_flowstate.py.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from enact.config import Settings
from enact.errors import (
    ConfigError,
    StoreError,
    StoreUnavailable,
)

pytest.importorskip("redis")

from enact.stores.redis import RedisBackend, RedisState  # noqa: E402

D1, D2, D3 = ("1" * 64), ("2" * 64), ("3" * 64)


@pytest.fixture
def state(redis_url: str, redis_prefix: str) -> Any:
    s = RedisState.from_url(redis_url, prefix=redis_prefix)
    yield s
    s.close()


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


# -- everything under the prefix --------------------------------------------------------


def test_every_key_is_under_the_prefix(redis_server: Any) -> None:
    import redis

    state = RedisState.from_url(redis_server.url, prefix="only-here")
    backend = RedisBackend.from_url(redis_server.url + "?prefix=only-here")
    state.set_ref("r", D1)
    state.compare_and_set_ref("r", D1, D2)
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
    redis_server.restart(kill=kill)  # appendonly + fsync always: nothing acknowledged is lost
    assert state.get_ref("kept") == D1
    assert state.compare_and_set_ref("kept", D1, D2) is True
    redis_server.restart(kill=kill)
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

"""Workers run only registered code (issue 9), tried on real Celery workers.

The attacker has the cluster's client API: ``enact.worker`` and what it uses (the
store, the flow table, sending the worker tasks). Each attack names code that
was never registered; a marker file appears if it ever runs. Every attack is
tried twice: through the public functions, which refuse in the caller, and with
the caller's check bypassed (crafted records and raw task messages), where the
worker must refuse.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import enact
import enact.worker
from enact.records import CallArgs
from enact.worker import runtime, wire
from enact.worker.flows import Flow
from enact.worker.flowstate import new_flow_id
from enact.worker.tasks import pull_calls, replay_invocation, run_flow
from tests import crafted
from tests.worker import flows


@pytest.fixture(scope="module")
def worker(cluster_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One worker for the whole module; its log is checked after the attacks."""
    from tests.worker.conftest import Workers

    pool = Workers(cluster_env, tmp_path_factory.mktemp("security-worker"))
    pool.start("guard", concurrency=4)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "marker.txt"
    yield path
    assert not path.exists(), f"attacker code ran: {path} exists"


def _flow_count() -> int:
    return len(runtime.flow_state().ids(10_000))


def _start_crafted_flow(invokable: Any, args: list[Any]) -> Flow:
    """What submit does, minus its check: commit a start request and send the task."""
    store = runtime.store()
    with store:
        start = crafted.start_request(store, invokable, args)
    state = runtime.flow_state()
    flow_id = new_flow_id()
    state.create(flow_id, start, "crafted")
    run_flow.apply_async((flow_id,))
    return Flow(flow_id, state, store)


# Through the public API: refused in the caller, nothing is sent ----------------------


@pytest.mark.parametrize(
    "target, argument",
    [
        (subprocess.getoutput, crafted.shell_command),
        (__import__("os").system, crafted.shell_command),
        (eval, crafted.python_code),
        (exec, crafted.python_code),
    ],
    ids=["subprocess.getoutput", "os.system", "eval", "exec"],
)
def test_submit_of_unregistered_code_is_refused(
    worker: Any, marker: Path, target: Any, argument: Any
) -> None:
    before = _flow_count()
    with pytest.raises(enact.UnregisteredResource, match="register it with @enact.register"):
        enact.worker.submit(target, argument(marker))
    assert _flow_count() == before


def test_submit_of_a_lambda_is_refused(worker: Any, marker: Path) -> None:
    before = _flow_count()
    with pytest.raises(enact.UnregisteredResource, match="lambda"):
        enact.worker.submit(enact.register(lambda: marker.write_text("ran")))
    with pytest.raises(enact.UnregisteredResource, match="lambda"):
        enact.worker.submit(lambda: marker.write_text("ran"))
    assert _flow_count() == before


def test_submit_of_a_function_in_main_is_refused(
    worker: Any, marker: Path, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "client.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import enact, enact.worker

            @enact.register
            def main():
                open({str(marker)!r}, "w").write("ran")

            try:
                enact.worker.submit(main)
            except enact.UnregisteredResource as exc:
                print("refused:", exc)
            """
        )
    )
    before = _flow_count()
    out = subprocess.run(
        [sys.executable, str(script)], env=cluster_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "__main__" in out.stdout
    assert _flow_count() == before


def test_map_and_replay_many_refuse_unregistered_code(worker: Any, marker: Path) -> None:
    with pytest.raises(enact.UnregisteredResource, match="posix.system|os.system"):
        enact.worker.map(__import__("os").system, [crafted.shell_command(marker)])
    with pytest.raises(enact.UnregisteredResource, match="lambda"):
        enact.worker.map(enact.register(lambda x: x), [1])
    store = runtime.store()
    with store:
        system, args = crafted.dangerous_targets(marker)["os.system"]
        recorded = crafted.invocation(store, system, args)
    with pytest.raises(enact.UnregisteredResource, match="system"):
        enact.worker.replay_many(recorded, 2)


# The caller's check bypassed: the worker refuses -----------------------------------------


@pytest.mark.parametrize("name", list(crafted.dangerous_targets("unused")))
def test_a_crafted_flow_of_unregistered_code_fails_on_the_worker(
    worker: Any, marker: Path, name: str
) -> None:
    reference, args = crafted.dangerous_targets(marker)[name]
    flow = _start_crafted_flow(reference, args)
    assert flow.wait(30) == "failed"
    error = flow.record().error or ""
    assert error.startswith("UnregisteredResource:"), error
    assert "is not registered" in error
    with pytest.raises(enact.errors.FlowFailed, match="UnregisteredResource"):
        flow.result()


def test_a_crafted_record_replayed_on_the_worker_runs_nothing(worker: Any, marker: Path) -> None:
    store = runtime.store()
    for reference, args in crafted.dangerous_targets(marker).values():
        with store:
            recorded = crafted.invocation(store, reference, args)
        result = replay_invocation.apply_async((recorded.digest, True))
        with pytest.raises(Exception) as info:
            result.get(timeout=30)
        # Refused as unregistered code (replay says so as UnreplayableCall, a subclass).
        assert isinstance(info.value, enact.UnregisteredResource), info.value
        assert "is not registered" in str(info.value)
        result.forget()


def test_a_crafted_map_of_unregistered_code_runs_nothing(worker: Any, marker: Path) -> None:
    keys = runtime.flow_state().keys
    client = runtime.flow_state().binary
    map_id = uuid.uuid4().hex
    call = crafted_call_bytes(marker)
    client.rpush(keys.map_todo(map_id), wire.pack_work_item(0, call, None, True))
    try:
        for function_id in ("posix.system", "subprocess.getoutput", "builtins.eval"):
            result = pull_calls.apply_async((map_id, function_id, 0))
            with pytest.raises(Exception) as info:
                result.get(timeout=30)
            assert type(info.value).__name__ == "UnregisteredResource", info.value
            assert function_id in str(info.value)
            result.forget()
        assert client.llen(keys.map_todo(map_id)) == 1  # nothing was even taken
    finally:
        client.delete(keys.map_todo(map_id), keys.map_results(map_id))


def crafted_call_bytes(marker: Path) -> bytes:
    from enact.serialization import pack_value

    return pack_value(CallArgs([crafted.shell_command(marker)], {}))[0]


@pytest.mark.parametrize(
    "task, args",
    [
        (run_flow, ("x:lock",)),
        (run_flow, ({"id": 1},)),
        (run_flow, ("../" * 30,)),
        (replay_invocation, ("not a digest", True)),
        (replay_invocation, ("ab" * 32, "yes")),
        (pull_calls, ("m", ["posix.system"], 0)),
        (pull_calls, ("m:x", "tests.worker.flows.square", 0)),
        (pull_calls, ("m", "tests.worker.flows.square", -1)),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_malformed_task_messages_fail_cleanly(worker: Any, task: Any, args: tuple) -> None:
    result = task.apply_async(args)
    with pytest.raises(Exception) as info:
        result.get(timeout=30)
    assert type(info.value).__name__ in ("DeserializationError", "UnregisteredResource"), info.value
    result.forget()


def test_records_of_the_wrong_kind_fail_cleanly(worker: Any) -> None:
    store = runtime.store()
    with store:
        not_a_request = store.commit(["not", "a", "request"]).digest
    state = runtime.flow_state()
    flow_id = new_flow_id()
    state.create(flow_id, not_a_request, "crafted")
    run_flow.apply_async((flow_id,))
    flow = Flow(flow_id, state, store)
    assert flow.wait(30) == "failed"
    assert (flow.record().error or "").startswith("DeserializationError: object ")
    result = replay_invocation.apply_async((not_a_request, True))
    with pytest.raises(Exception) as info:
        result.get(timeout=30)
    assert type(info.value).__name__ == "DeserializationError", info.value
    result.forget()


def test_the_worker_is_intact_after_the_attacks(worker: Any) -> None:
    """Runs last: the attacks left one worker, still serving registered code."""
    flow = enact.worker.submit(flows.roll_sum, 3)
    assert flow.wait(30) == "done"
    assert 3 <= flow.result() <= 18
    assert enact.worker.map(flows.square, [2, 3]) == [4, 9]
    time.sleep(0.5)
    log = (worker.log_dir / "guard.log").read_text()
    # Celery's main() started from a task would print a second banner.
    assert log.count("ready.") == 1
    assert "UnregisteredResource" in log


def test_worker_logs_hide_the_redis_password(tmp_path: Path, python_env: dict[str, str]) -> None:
    """A worker and a client on a Redis that requires a password: no log line shows it,
    nor does a worker given a wrong password."""
    from tests.conftest import RedisServer
    from tests.worker.conftest import Workers

    secret = "pw-" + uuid.uuid4().hex
    server = RedisServer(tmp_path / "redis", None, "--requirepass", secret).start()
    env = dict(
        python_env,
        ENACT_REDIS_URL=f"redis://:{secret}@127.0.0.1:{server.port}/0",
        ENACT_STORE_URL=f"file://{tmp_path / 'store'}",
        ENACT_IMPORTS="tests.worker.flows",
    )
    pool = Workers(env, tmp_path)
    try:
        pool.start("locked", concurrency=2)
        client = subprocess.run(
            [sys.executable, "-m", "enact.cli", "submit", "tests.worker.flows:roll_sum", "2",
             "--wait", "30"],
            env=env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines()[1] == "done"
        wrong = f"{secret}-wrong"
        pool.env = dict(env, ENACT_REDIS_URL=f"redis://:{wrong}@127.0.0.1:{server.port}/0")
        pool.start("refused", wait=False)
        deadline = time.monotonic() + 20
        log = tmp_path / "refused.log"
        while time.monotonic() < deadline:
            text = log.read_text() if log.exists() else ""
            if "Cannot connect" in text or "invalid password" in text.lower():
                break
            time.sleep(0.2)
        pool.stop_all()
        logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("locked", "refused")}
        assert "ready." in logs["locked"] and "ready." not in logs["refused"]
        for text in (*logs.values(), client.stdout, client.stderr):
            assert secret not in text
    finally:
        pool.stop_all()
        server.stop()

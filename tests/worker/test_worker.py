"""The Celery backend against real worker processes, Redis and moto's S3 server."""

from __future__ import annotations

import collections
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

import enact
import enact.worker
from enact.worker import runtime
from tests.worker import flows


def _answer_in_another_process(env: dict[str, str], request_id: str, value: int) -> None:
    code = (
        "import enact.worker, sys; "
        f"enact.worker.answer({request_id!r}, {value!r}); print('answered')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "answered" in out.stdout


def test_dice_flow_pauses_and_resumes_on_another_worker(workers, cluster_env):
    first = workers.start("first")
    flow = enact.worker.submit(flows.roll_dice_user_flow)
    assert flow.wait(30) == "waiting"
    assert flow.record().worker == first
    [request] = enact.worker.pending_inputs(flow.id)
    assert request.for_value == "Total number of rolls?"
    assert request.requested_type == "int"

    # Nothing of the flow lives in the first worker: stop it before answering.
    workers.stop("first")
    second = workers.start("second")
    _answer_in_another_process(cluster_env, request.id, 3)
    for _ in range(3):
        assert flow.wait(30) == "waiting"
        [request] = enact.worker.pending_inputs(flow.id)
        assert request.for_value == "Please roll a die."
        _answer_in_another_process(cluster_env, request.id, 6)
    assert flow.wait(30) == "done"
    assert flow.result() == 18
    assert flow.record().worker == second
    lines = flow.summary().splitlines()
    assert lines[0] == "->roll_dice_user_flow() = 18"
    assert lines[1] == (
        "  ->RequestInput(requested_type=<class 'int'>, context=None)(Total number of rolls?) = 3"
    )
    assert lines.count("  ->human_rolls_die() = 6") == 3
    assert enact.worker.pending_inputs(flow.id) == []


def test_wrong_typed_answer_is_rejected_and_request_stays_pending(workers):
    workers.start("w")
    flow = enact.worker.submit(flows.roll_dice_user_flow)
    assert flow.wait(30) == "waiting"
    [request] = enact.worker.pending_inputs(flow.id)
    with pytest.raises(TypeError, match="does not match the requested type int"):
        enact.worker.answer(request.id, "three")
    with pytest.raises(TypeError):
        enact.worker.answer(request.id, True)  # a bool is not an int here
    assert flow.status() == "waiting"
    [still] = enact.worker.pending_inputs(flow.id)
    assert still.id == request.id and still.status == "pending"
    enact.worker.answer(request.id, 0)
    assert flow.wait(30) == "done"
    assert flow.result() == 0


def test_map_runs_in_order_and_records_children(workers):
    workers.start("a", concurrency=4)
    workers.start("b", concurrency=4)
    assert enact.worker.map(flows.square, range(200)) == [i * i for i in range(200)]

    flow = enact.worker.submit(flows.fan_out_squares, 200)
    assert flow.wait(60) == "done"
    assert flow.result() == sum(i * i for i in range(200))
    invocation = flow.invocation()
    with runtime.store():
        children = invocation.get_children()
        assert len(children) == 200
        assert [c.get_input().args for c in children] == [[i] for i in range(200)]
        assert [c.get_output() for c in children] == [i * i for i in range(200)]
        # Recorded exactly like a local loop: it replays locally without the workers.
        replayed = invocation.rewind(1).replay()
        assert replayed.get_output() == flow.result()
        assert len(replayed.get_children()) == 200


def test_replay_many_resamples_the_rewound_call(workers):
    workers.start("w", concurrency=4)
    store = runtime.store()
    with store:
        invocation = enact.invoke(flows.roll_sum, (3,))
        rewound = invocation.rewind(1)
    replays = enact.worker.replay_many(rewound, 12)
    assert len(replays) == 12
    with store:
        kept = [c.get_output() for c in invocation.get_children()[:2]]
        last_rolls = []
        for replay in replays:
            children = replay.get_children()
            assert [c.get_output() for c in children[:2]] == kept
            assert len(children) == 3
            assert replay.get_output() == sum(c.get_output() for c in children)
            last_rolls.append(children[2].get_output())
    assert all(1 <= r <= 6 for r in last_rolls)
    assert len(set(last_rolls)) > 1  # 12 independent samples of a die


class _Terminal(io.StringIO):
    """stderr as a terminal: progress lines are drawn into it."""

    def isatty(self) -> bool:
        return True


def test_map_and_replay_many_show_progress_on_a_terminal_only(workers, monkeypatch):
    workers.start("w", concurrency=4)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert enact.worker.map(flows.square, range(40)) == [i * i for i in range(40)]
    with runtime.store():
        rewound = enact.invoke(flows.roll_sum, (2,)).rewind(1)
    assert len(enact.worker.replay_many(rewound, 4)) == 4
    drawn = terminal.getvalue()
    assert "map tests.worker.flows.square" in drawn and "40/40" in drawn
    assert "replay_many" in drawn and "4/4" in drawn

    piped = io.StringIO()  # not a terminal: nothing is written
    monkeypatch.setattr(sys, "stderr", piped)
    assert enact.worker.map(flows.square, range(5)) == [i * i for i in range(5)]
    assert piped.getvalue() == ""


def test_failing_flow_records_the_failure(workers):
    workers.start("w")
    flow = enact.worker.submit(flows.failing_flow, 7)
    assert flow.wait(30) == "failed"
    assert "bad input 7" in flow.record().error
    with pytest.raises(enact.errors.FlowFailed, match="bad input 7"):
        flow.result()
    with runtime.store():
        invocation = flow.invocation()
        raised = invocation.get_raised()
        assert isinstance(raised, enact.NativeException)
        assert raised.type_name == "ValueError"
        assert len(invocation.get_children()) == 1  # the die roll before the error


def test_killed_worker_flow_completes_elsewhere_without_rerunning_steps(
    workers, cluster_env, tmp_path: Path
):
    side_channel = tmp_path / "executions.txt"
    workers.env = dict(cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel))
    workers.start("doomed")
    flow = enact.worker.submit(flows.long_flow, 50, 0.08)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if side_channel.exists() and len(side_channel.read_text().splitlines()) >= 20:
            break
        time.sleep(0.05)
    workers.kill("doomed")  # SIGKILL: no warm shutdown, the task is not acknowledged
    executed_before_kill = len(side_channel.read_text().splitlines())
    assert 20 <= executed_before_kill < 50

    workers.start("rescuer")
    assert flow.wait(90) == "done"
    assert flow.result() == sum(range(50))
    counts = collections.Counter(line.split()[0] for line in side_channel.read_text().splitlines())
    assert set(counts) == {f"step{i}" for i in range(50)}
    repeated = [step for step, n in counts.items() if n > 1]
    # Every step that completed before the kill was checkpointed and replayed from
    # the record; at most the step running at the moment of the kill runs again.
    assert len(repeated) <= 1, repeated
    assert flow.record().worker == "rescuer@test"
    with runtime.store():
        assert [c.get_output() for c in flow.invocation().get_children()] == list(range(50))


def test_cli_submit_status_inputs_answer_show(workers, capsys):
    from enact.cli import EXIT_WAITING, main

    workers.start("w")
    assert main(["submit", "tests.worker.flows:roll_dice_user_flow"]) == 0
    flow_id = capsys.readouterr().out.strip()
    flow = enact.worker.get_flow(flow_id)
    assert flow.wait(30) == "waiting"
    assert main(["status", flow_id]) == EXIT_WAITING  # the exit code follows the flow
    assert "waiting for" in capsys.readouterr().out
    for answer in ("1", "4"):
        assert main(["inputs", "--flow", flow_id]) == 0
        request_id = capsys.readouterr().out.split()[0]
        assert request_id.startswith(flow_id + ":")
        assert main(["answer", request_id, answer]) == 0
        capsys.readouterr()
        flow.wait(30)
    assert flow.status() == "done"
    assert main(["status", flow_id]) == 0
    assert "result: 4" in capsys.readouterr().out
    assert main(["show", flow_id]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "->roll_dice_user_flow() = 4"
    # The request was answered and consumed: answering again is a clear error.
    assert main(["answer", request_id, "5"]) == 1
    err = capsys.readouterr().err
    assert request_id in err and "is not pending" in err and "moved on" in err


def test_redelivered_flow_task_does_nothing_twice(workers, cluster_env, tmp_path: Path):
    from enact.worker.tasks import run_flow

    side_channel = tmp_path / "executions.txt"
    workers.env = dict(cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel))
    workers.start("w")
    flow = enact.worker.submit(flows.long_flow, 3, 0.0)
    assert flow.wait(30) == "done"
    head = flow.record().head
    assert len(side_channel.read_text().splitlines()) == 3
    # The same task delivered again (as after a lost acknowledgement) finds the
    # flow done and changes nothing.
    assert run_flow.apply_async((flow.id,)).get(timeout=30) == "done"
    assert len(side_channel.read_text().splitlines()) == 3
    assert flow.record().head == head
    assert flow.result() == 3
    # Delivered again while it runs elsewhere (a live lease): that task ends at once.
    running = enact.worker.submit(flows.long_flow, 20, 0.2)
    assert running.wait(30, until=("running",)) == "running"
    assert run_flow.apply_async((running.id,)).get(timeout=30) == "busy"
    assert running.wait(60) == "done"
    assert len(side_channel.read_text().splitlines()) == 3 + 20


def test_map_replays_an_incomplete_recorded_call_on_a_worker(workers, cluster_env, tmp_path):
    side_channel = tmp_path / "executions.txt"
    workers.env = dict(cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel))
    workers.start("w", concurrency=4)
    flow = enact.worker.submit(flows.fan_out_rolls, 4)
    assert flow.wait(60) == "done"
    assert len(side_channel.read_text().splitlines()) == 8
    store = runtime.store()
    with store:
        recorded = flow.invocation()
        rewound = recorded.rewind_leaves(1)  # the last item loses its second roll
        [replayed] = enact.worker.replay_many(rewound, 1, timeout=60)
        old, new = recorded.get_children(), replayed.get_children()
        assert [c.digest for c in new[:3]] == [c.digest for c in old[:3]]
        last = new[3].get_children()
        assert len(last) == 2 and last[0].digest == old[3].get_children()[0].digest
        assert replayed.get_output()[:3] == recorded.get_output()[:3]
    # Only the rewound roll ran again: the item was replayed remotely, not rerun whole.
    assert len(side_channel.read_text().splitlines()) == 9


def test_map_sends_a_recorded_call_that_raised_again_on_replay(workers, cluster_env, tmp_path):
    """Replay reuses recorded calls that returned and runs again those that raised
    (enact 0.4's rule); inside ``map`` the item that raised is sent to a worker again,
    replaying its own recorded children there, as a loop's replay would run it."""
    side_channel = tmp_path / "executions.txt"
    fail_file = tmp_path / "fail.txt"
    fail_file.write_text("2")
    workers.env = dict(
        cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel), ENACT_TEST_FAIL_FILE=str(fail_file)
    )
    workers.start("w", concurrency=4)
    flow = enact.worker.submit(flows.fan_out_flaky, 4)
    assert flow.wait(60) == "failed"
    assert "item 2 failed" in flow.record().error

    def runs() -> collections.Counter[str]:
        lines = side_channel.read_text().splitlines()
        return collections.Counter(line.split()[0] for line in lines)

    # All four items ran (in parallel); the record ends at the item that raised, as a
    # loop's would: the slot of item 3 was given back.
    assert runs() == {f"flaky_item{x}": 1 for x in range(4)} | {"marked_roll": 4}
    store = runtime.store()
    with store:
        failed = flow.invocation()
        old = failed.get_children()
        assert [c.get_input().args for c in old] == [[0], [1], [2]]
        assert [c.successful() for c in old] == [True, True, False]
        assert old[2].get_raised_here()
        old_roll = old[2].get_children()[0]

    fail_file.write_text("")  # item 2 would now succeed
    [replayed] = enact.worker.replay_many(failed, 1, timeout=60)
    with store:
        new = replayed.get_children()
        assert [c.digest for c in new[:2]] == [c.digest for c in old[:2]]  # reused
        assert new[2].digest != old[2].digest and new[2].successful()
        # The item ran again on a worker, replaying its recorded roll.
        assert new[2].get_children()[0].digest == old_roll.digest
        assert replayed.get_output() == [
            x * 10 + new[x].get_children()[0].get_output() for x in range(4)
        ]
    # Items 0 and 1 were not sent; item 2 ran again without rolling again; item 3 is new.
    assert runs() == {
        "flaky_item0": 1,
        "flaky_item1": 1,
        "flaky_item2": 2,
        "flaky_item3": 2,
        "marked_roll": 5,
    }


def test_a_resumed_flow_does_not_run_again_a_call_that_raised(workers, cluster_env, tmp_path):
    """Replay retries what raised, but resuming a flow (after an answer) continues the
    execution where it stopped: a failure the flow caught is reused, even though the
    call would now succeed (running it again would make the flow take another path)."""
    side_channel = tmp_path / "executions.txt"
    fail_file = tmp_path / "fail.txt"
    fail_file.write_text("1")
    workers.env = dict(
        cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel), ENACT_TEST_FAIL_FILE=str(fail_file)
    )
    workers.start("w")
    flow = enact.worker.submit(flows.tolerant_flow)
    assert flow.wait(30) == "waiting"
    fail_file.write_text("")
    [request] = enact.worker.pending_inputs(flow.id)
    enact.worker.answer(request.id, 5)
    assert flow.wait(30) == "done"
    assert flow.result() == 4  # -1 from the caught failure, plus the answer
    assert side_channel.read_text().count("flaky_item1") == 1
    with runtime.store():
        [flaky, _] = flow.invocation().get_children()
        assert flaky.get_raised_here() and "item 1 failed" in str(flaky.get_raised())


def test_a_worker_running_100000_tracked_calls_keeps_a_bounded_node_cache(workers):
    workers.start("w", concurrency=2)
    before = enact.worker.submit(flows.worker_memory)
    assert before.wait(60) == "done"
    flow = enact.worker.submit(flows.many_calls, 100, 1000)
    assert flow.wait(900) == "done", flow.record().error
    assert flow.result() == sum(b * 1_000_003 * 1000 + 999 * 1000 // 2 for b in range(100))
    after = enact.worker.submit(flows.worker_memory)
    assert after.wait(60) == "done"
    first, last = before.result(), after.result()
    assert first["pid"] == last["pid"]  # the same worker process ran everything
    assert last["nodes"] <= last["limit"] < 100_000
    print(f"worker memory: before {first}, after 100,100 tracked calls {last}")


def test_a_map_whose_puller_worker_is_killed_completes_elsewhere(
    workers, cluster_env, tmp_path: Path
):
    """The caller sends the task of a puller that died holding items again, without
    waiting for the broker's visibility timeout (an hour by default)."""
    import threading

    side_channel = tmp_path / "executions.txt"
    workers.env = dict(cluster_env, ENACT_TEST_SIDE_CHANNEL=str(side_channel))
    workers.start("doomed", concurrency=2)
    outputs: list[list[int]] = []
    caller = threading.Thread(
        target=lambda: outputs.append(enact.worker.map(flows.marked_nap, range(20), parallelism=2))
    )
    caller.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if side_channel.exists() and len(side_channel.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    workers.kill("doomed")
    workers.start("rescuer", concurrency=2)
    caller.join(300)
    assert outputs == [list(range(20))]
    counts = collections.Counter(line.split()[0] for line in side_channel.read_text().splitlines())
    assert set(counts) == {f"nap{i}" for i in range(20)}
    assert sum(n > 1 for n in counts.values()) <= 2  # at most the items in flight at the kill

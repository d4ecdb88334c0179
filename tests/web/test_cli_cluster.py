"""The cluster commands against a real worker: exit codes follow the flow's state,
listings print JSON with ``--json``, ``enact inputs`` shows the context, and each
mistake is one line."""

from __future__ import annotations

import json
from typing import Any

import pytest

import enact.worker
from enact.cli import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_NOT_FINISHED,
    EXIT_OK,
    EXIT_WAITING,
    main,
)
from tests.web import flows


@pytest.fixture(autouse=True)
def _cluster(cluster: Any) -> None:
    """The CLI reads the cluster's ENACT_* from the environment (set by ``cluster``)."""


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_submit_wait_and_status_exit_codes(capsys: Any) -> None:
    code, out, _ = run(capsys, "submit", "tests.web.flows:add", "2", "3", "--wait", "60")
    assert code == EXIT_OK
    flow_id, status_line = out.splitlines()[0].split()[0], out.splitlines()
    assert "result: 5" in status_line
    assert run(capsys, "status", flow_id)[0] == EXIT_OK

    code, out, _ = run(capsys, "submit", "tests.web.flows:explode", "boom", "--wait", "60")
    assert code == EXIT_FAILED and "error: " in out and "boom" in out

    code, out, _ = run(capsys, "submit", "tests.web.flows:pick_best", "2", "--wait", "60")
    assert code == EXIT_WAITING and "waiting for " in out
    waiting_id = out.split()[0]
    assert run(capsys, "status", waiting_id)[0] == EXIT_WAITING

    code, out, err = run(capsys, "submit", "tests.web.flows:nap", "3", "--wait", "0.2")
    assert code == EXIT_NOT_FINISHED and "still" in err
    nap_id = out.split()[0]
    assert run(capsys, "status", nap_id)[0] == EXIT_NOT_FINISHED
    assert run(capsys, "status", nap_id, "--wait", "60")[0] == EXIT_OK

    code, out, _ = run(capsys, "status", waiting_id, "--json")
    data = json.loads(out)
    assert code == EXIT_WAITING and data["status"] == "waiting" and data["pending_inputs"]


def test_inputs_show_context_and_answer(capsys: Any) -> None:
    flow = enact.worker.submit(flows.pick_best, 3)
    assert flow.wait(60) == "waiting"
    [pending] = flow.pending_inputs()
    samples = flow.invocation().get_child(0)  # the first sample, to find in the context
    first = samples.get_output()

    code, out, _ = run(capsys, "inputs", "--flow", flow.id)
    assert code == EXIT_OK
    assert pending.id in out and "Which sample is best?" in out and str(first) in out
    code, out, _ = run(capsys, "inputs", "--json")
    listed = {i["id"]: i for i in json.loads(out)}
    assert listed[pending.id]["context"][0] == first
    code, out, _ = run(capsys, "input", pending.id)
    assert code == EXIT_OK and "context" in out and f"enact answer {pending.id} VALUE" in out
    assert json.loads(run(capsys, "input", pending.id, "--json")[1])["requested_type"] == "int"

    code, _, err = run(capsys, "answer", pending.id, "one")
    assert code == EXIT_ERROR and len(err.strip().splitlines()) == 1
    assert "does not match the requested type int" in err and flow.status() == "waiting"
    code, _, err = run(capsys, "answer", "nope:0", "1")
    assert code == EXIT_ERROR and "no input request with id 'nope:0'" in err
    assert run(capsys, "answer", pending.id, "2")[0] == EXIT_OK
    assert flow.wait(60) == "done"


def test_flows_filters_and_json(capsys: Any) -> None:
    done = enact.worker.submit(flows.add, 1, 1)
    assert done.wait(60) == "done"
    code, out, _ = run(capsys, "flows", "--status", "done", "--since", "1h", "--json")
    records = json.loads(out)
    assert code == EXIT_OK and done.id in [r["id"] for r in records]
    assert {r["status"] for r in records} == {"done"}
    code, out, _ = run(capsys, "flows", "--status", "waiting,failed", "--limit", "100")
    assert done.id not in out
    assert done.id in run(capsys, "flows", "--limit", "100")[1]


def test_unknown_flow_is_one_line(capsys: Any) -> None:
    for argv in (["status", "nope"], ["show", "nope"]):
        code, _, err = run(capsys, *argv)
        assert code == EXIT_ERROR and err.count("\n") == 1 and "UnknownFlow" in err


def test_cancel_retry_fork_and_the_cancelled_exit_code(capsys: Any) -> None:
    flow = enact.worker.submit(flows.pick_best, 2)
    assert flow.wait(60) == "waiting"
    code, out, _ = run(capsys, "cancel", flow.id)
    assert code == EXIT_OK and out.split() == [flow.id, "cancelled"]
    assert run(capsys, "status", flow.id)[0] == EXIT_CANCELLED
    done = enact.worker.submit(flows.add, 1, 2)
    assert done.wait(60) == "done"
    code, _, err = run(capsys, "cancel", done.id)
    assert code == EXIT_ERROR and "ConflictError" in err and err.count("\n") == 1
    assert run(capsys, "retry", flow.id)[0] == EXIT_OK
    assert flow.wait(60) == "waiting"
    code, out, _ = run(capsys, "fork", flow.id, "--answer", "2=1")
    assert code == EXIT_OK
    fork = enact.worker.get_flow(out.strip())
    assert fork.wait(60) == "done" and fork.record().parent == flow.id
    code, _, err = run(capsys, "fork", flow.id, "--answer", "2=one")
    assert code == EXIT_ERROR and "AnswerTypeError" in err
    enact.worker.cancel(flow.id)


def test_waiting_shows_progress_on_a_terminal_only(cluster: Any) -> None:
    """``submit --wait`` draws the flow's status and latest call on a terminal's stderr,
    and nothing when stderr is a pipe."""
    import os
    import pty
    import subprocess
    import sys

    argv = [sys.executable, "-m", "enact.cli", "submit", "tests.web.flows:nap", "1.5",
            "--wait", "60"]  # fmt: skip
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            argv, env=cluster.env, stdout=subprocess.PIPE, stderr=terminal, timeout=120
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert done.returncode == EXIT_OK
    flow_id = done.stdout.decode().split()[0]
    text = drawn.decode(errors="replace")
    assert f"flow {flow_id} calls" in text and "\r" in text and "nap(1.5)" in text
    piped = subprocess.run(argv, env=cluster.env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == EXIT_OK and piped.stderr == ""

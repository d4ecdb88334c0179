"""gc on a live cluster: flows, named refs and pins are roots (real workers, Redis, moto S3)."""

from __future__ import annotations

import pytest

import enact
import enact.gc
import enact.worker
from enact.cli import main
from enact.stores.s3 import S3Backend
from enact.worker import runtime
from tests.worker import flows


def test_gc_keeps_everything_flows_refs_and_pins_need(
    workers, cluster_env, capsys: pytest.CaptureFixture[str]
) -> None:
    workers.start("w")
    waiting = enact.worker.submit(flows.roll_dice_user_flow)
    done = enact.worker.submit(flows.roll_sum, 4)
    assert waiting.wait(30) == "waiting"
    assert done.wait(30) == "done"
    expected = done.result()
    store = runtime.store()
    with store:
        garbage = enact.commit({"nobody": "needs this"})
        named = enact.commit({"kept by": "a named ref"})
        pinned = enact.commit({"kept by": "a pin"})
    runtime.state().set_ref("experiment", named.digest)
    assert main(["pin", pinned.digest]) == 0
    assert main(["pin", done.id]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"pinned {done.record().head} as flow-{done.id}"
    )

    # Nothing runs now, so collect everything unreachable, however young.
    assert main(["gc", "--offline", "--grace", "0"]) == 0
    out = capsys.readouterr().out
    assert "roots       " in out and "marked      " in out, out
    # The garbage goes, and so do superseded checkpoints of the flows.
    deleted = int(out.split("deleted")[1].split()[0])
    assert deleted >= 1, out

    bucket, prefix = cluster_env["ENACT_STORE_URL"][len("s3://") :].split("/", 1)
    s3 = S3Backend(bucket, prefix, endpoint_url=cluster_env["ENACT_S3_ENDPOINT_URL"])
    assert s3.has([garbage.digest, named.digest, pinned.digest]) == [False, True, True]
    assert done.result() == expected  # the finished flow's records are all there
    assert done.summary().startswith("->roll_sum(4) =")

    # The waiting flow resumes on the worker (which still holds the indexes from
    # before the gc) and completes: nothing it needs was taken.
    [request] = enact.worker.pending_inputs(waiting.id)
    enact.worker.answer(request.id, 2)
    for _ in range(2):
        assert waiting.wait(30) == "waiting"
        [request] = enact.worker.pending_inputs(waiting.id)
        enact.worker.answer(request.id, 5)
    assert waiting.wait(30) == "done"
    assert waiting.result() == 10
    assert enact.gc.fsck(s3).ok

"""Drive the dice flows against a running cluster, as a user would from a laptop.

Run it with only the cluster's environment (``eval "$(deploy/local-cluster.sh env)"``)::

    python -m tests.deploy.dice_client 2 3 4

The arguments answer ``roll_dice_user_flow``: the number of rolls, then each roll. It prints
one JSON object describing every flow; the deploy tests judge it. Running in its own
process keeps the client's configuration apart from the test process's.
"""

from __future__ import annotations

import json
import sys
import time

import enact.worker
from tests.deploy import dice_flows

TIMEOUT_S = 120.0


def wait_for_request(flow_id: str, for_value: str, answered: set[str]):
    """The first pending request of the flow for ``for_value`` that is not answered yet."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        for request in enact.worker.pending_inputs(flow_id=flow_id):
            if request.id not in answered and request.for_value == for_value:
                return request
        time.sleep(0.05)
    raise TimeoutError(f"flow {flow_id} asked no {for_value!r} within {TIMEOUT_S} s")


def finished(handle) -> dict:
    # wait() also returns when the flow waits for input: an answer takes a moment to land.
    deadline = time.monotonic() + TIMEOUT_S
    while handle.wait(TIMEOUT_S) not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    return {
        "id": handle.id,
        "status": handle.status(),
        "result": handle.result(),
        "has_invocation": handle.invocation() is not None,
    }


def main(argv: list[str]) -> int:
    num_rolls, *rolls = (int(arg) for arg in argv)
    report: dict = {}
    report["roll_die"] = finished(enact.worker.submit(dice_flows.roll_die, 6))
    report["roll_sum"] = finished(enact.worker.submit(dice_flows.roll_sum, 3))

    handle = enact.worker.submit(dice_flows.roll_dice_user_flow)
    answered: set[str] = set()
    requests = []
    for for_value, value in [("Total number of rolls?", num_rolls)] + [
        ("Please roll a die.", roll) for roll in rolls
    ]:
        request = wait_for_request(handle.id, for_value, answered)
        requests.append(
            {
                "for_value": request.for_value,
                "requested_type": getattr(request.requested_type, "__name__", None)
                or str(request.requested_type),
                "status_while_waiting": handle.status(),
            }
        )
        enact.worker.answer(request.id, value)
        answered.add(request.id)
    report["user_flow"] = finished(handle)
    report["user_flow"]["requests"] = requests
    report["user_flow"]["pending_after"] = len(enact.worker.pending_inputs(flow_id=handle.id))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Follow one flow from the host: a JSON line each time its status or worker changes.

    python -m tests.compose.flow_watch FLOW_ID [TIMEOUT_S]

Run with only the cluster's client environment. Each line is
``{"t": <time.time()>, "status": ..., "worker": ...}``; the last one is the final status,
with ``"result"`` when the flow is done. The compose tests read it to see which worker runs
the flow and when another one takes over.
"""

from __future__ import annotations

import json
import sys
import time

import enact.worker

FINAL = {"done", "failed", "cancelled"}


def main(argv: list[str]) -> int:
    flow = enact.worker.get_flow(argv[0])
    deadline = time.monotonic() + (float(argv[1]) if len(argv) > 1 else 300.0)
    last = None
    while time.monotonic() < deadline:
        try:
            record = flow.record()
        except enact.EnactError as exc:  # Redis restarting: say so and keep watching
            print(json.dumps({"t": time.time(), "error": str(exc)}), flush=True)
            time.sleep(0.5)
            continue
        state = (str(getattr(record.status, "value", record.status)), record.worker)
        if state != last:
            line = {"t": time.time(), "status": state[0], "worker": state[1]}
            if state[0] == "done":
                line["result"] = flow.result()
            print(json.dumps(line), flush=True)
            last = state
        if state[0] in FINAL:
            return 0
        time.sleep(0.1)
    print(json.dumps({"t": time.time(), "error": "timeout"}), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A client process for the racing-answer test: ``python -m tests.worker.answerer``.

Reads lines ``<request id> <value> <unix time>`` from stdin; at that time it
answers the request and prints ``ok``, ``conflict`` or ``error <type>: <message>``.
"""

import sys
import time

import enact.worker
from enact.errors import ConflictError


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        request_id, value, at = line.split()
        time.sleep(max(0.0, float(at) - time.time()))
        try:
            enact.worker.answer(request_id, int(value))
            print("ok", flush=True)
        except ConflictError:
            print("conflict", flush=True)
        except Exception as exc:  # reported to the test, which fails on it
            print(f"error {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()

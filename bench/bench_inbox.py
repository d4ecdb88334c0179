"""Inbox benchmark: a person's answer to a finished flow, and the inbox with 1,000 pending.

Starts its own redis-server (a port in 7600-7699), a file store, one Celery worker and
``enact serve``; measures; prints a table; stops everything.

  (a) time from a browser's answer (headless Chromium clicks "Answer") to the flow's
      ``done`` (p50 over 20 flows), against the same answer given through
      ``enact.worker.answer`` in this process (the ratio is the browser's overhead:
      the form post, the server and the redirect);
  (b) the inbox page's server time (its ``Server-Timing`` header) with 1,000 pending
      requests: the first page, a deep page, and the JSON listing; against listing
      all 1,000 with ``enact.worker.pending_inputs()`` (what a page without
      pagination would at least cost).

    python bench/bench_inbox.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import RedisServer, subprocess_env  # noqa: E402
from tests.web.conftest import Cluster, port_in_range  # noqa: E402

FINISHED = ("done", "failed", "cancelled")


def server_ms(url: str) -> float:
    with urllib.request.urlopen(url, timeout=30) as reply:
        reply.read()
        timing = reply.headers["Server-Timing"]
    return float(re.search(r"dur=([0-9.]+)", timing).group(1))


def p50(values: list[float]) -> float:
    return statistics.median(values)


def browser() -> Any:
    from tests.web.test_browser import chromium

    return chromium()


def answer_latency(server: str, flows: int) -> tuple[list[float], list[float]]:
    """Seconds from the click (or the call) to ``done``, browser and direct."""
    from selenium.webdriver.common.by import By

    import enact.worker
    from tests.web import flows as programs

    driver = browser()
    via_browser, direct = [], []
    try:
        for i in range(flows * 2):
            flow = enact.worker.submit(programs.pick_best, 2)
            assert flow.wait(60) == "waiting"
            [pending] = flow.pending_inputs()
            if i % 2 == 0:
                driver.get(f"{server}/flows/{flow.id}")
                form = driver.find_element(By.CSS_SELECTOR, f'form[data-request-id="{pending.id}"]')
                form.find_element(By.NAME, "value").send_keys("1")
                button = form.find_element(By.CSS_SELECTOR, "button[type=submit]")
                started = time.perf_counter()
                button.click()
                # Until done: the flow still reads "waiting" until the server has the answer.
                assert flow.wait(60, until=FINISHED) == "done"
                via_browser.append(time.perf_counter() - started)
            else:
                started = time.perf_counter()
                enact.worker.answer(pending.id, 1)
                assert flow.wait(60, until=FINISHED) == "done"
                direct.append(time.perf_counter() - started)
    finally:
        driver.quit()
    return via_browser, direct


def fill_inbox(count: int) -> None:
    """``count`` flows waiting for an answer, each with its context (2 samples)."""
    import enact.worker
    from tests.web import flows as programs

    handles = [enact.worker.submit(programs.pick_best, 2) for _ in range(count)]
    for flow in handles:
        assert flow.wait(120) == "waiting"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 flows, 200 pending")
    opts = parser.parse_args()
    n_flows, n_pending = (5, 200) if opts.quick else (20, 1000)
    directory = Path(tempfile.mkdtemp(prefix="enact-bench-inbox-"))
    redis_server = RedisServer(directory / "redis", port_in_range()).start()
    env = subprocess_env(
        {
            "ENACT_REDIS_URL": redis_server.url,
            "ENACT_STORE_URL": f"file:{directory / 'store'}",
            "ENACT_IMPORTS": "tests.web.flows",
            "ENACT_REDIS_PREFIX": "benchinbox",
        }
    )
    os.environ.update(env)
    import enact.worker

    enact.worker.reconfigure()
    cluster = Cluster(env, directory)
    try:
        cluster.start_worker()
        server, _ = cluster.serve("127.0.0.1", None)
        via_browser, direct = answer_latency(server, n_flows)
        fill_inbox(n_pending)
        pending = len(enact.worker.pending_inputs())
        last_page = max(1, -(-pending // 25))
        rows: list[tuple[str, float]] = []
        for label, path in (
            ("inbox page 1", "/inbox"),
            (f"inbox page {last_page} (last)", f"/inbox?page={last_page}"),
            ("GET /api/inputs (25)", "/api/inputs"),
        ):
            server_ms(server + path)  # warm: the requests' records, once
            rows.append((label, p50([server_ms(server + path) for _ in range(20)])))
        listing = []
        for _ in range(5):
            started = time.perf_counter()
            enact.worker.pending_inputs()
            listing.append((time.perf_counter() - started) * 1000)
        baseline = p50(listing)

        print(f"\nAnswer to done, p50 over {n_flows} flows each (1 worker, file store)")
        print(f"{'path':<34} {'p50 ms':>8} {'max ms':>8}")
        b, d = [x * 1000 for x in via_browser], [x * 1000 for x in direct]
        print(f"{'browser: click Answer -> done':<34} {p50(b):8.1f} {max(b):8.1f}")
        print(f"{'enact.worker.answer -> done':<34} {p50(d):8.1f} {max(d):8.1f}")
        print(f"{'ratio browser / direct':<34} {p50(b) / p50(d):8.2f}")
        print(f"\nServer time with {pending} pending requests (Server-Timing, p50 of 20)")
        print(f"{'page':<34} {'ms':>8} {'/ list all':>10}")
        for label, ms in rows:
            print(f"{label:<34} {ms:8.1f} {ms / baseline:10.2f}")
        print(f"{'baseline: pending_inputs() (all)':<34} {baseline:8.1f} {1.0:10.2f}")
    finally:
        cluster.stop_all()
        redis_server.stop()


if __name__ == "__main__":
    main()

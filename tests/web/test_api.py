"""The HTTP API end to end, against ``enact serve`` processes and a real worker.

Answers are checked like everywhere else (a wrong type is 422 and the request stays
pending), unknown ids are 404, conflicts 409; off loopback the server refuses to start
without ``ENACT_API_TOKEN`` and then wants the token on every route; cross-site posts
are refused; the token never shows in a page or a log line.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import httpx
import pytest

import enact.worker
from tests.web import flows

TOKEN = "tok-" + "s3cr3t" * 4


def _pending_id(flow: Any) -> str:
    assert flow.wait(60) == "waiting"
    [pending] = flow.pending_inputs()
    return pending.id


def test_openapi_lists_the_routes_and_the_exposed_function(server: str) -> None:
    doc = httpx.get(server + "/api/openapi.json").json()
    paths = set(doc["paths"])
    for path in (
        "/api/inputs", "/api/inputs/{request_id}/answer", "/api/flows",
        "/api/flows/{flow_id}", "/api/flows/{flow_id}/{action}", "/api/run/tests.web.flows.add",
    ):  # fmt: skip
        assert path in paths
    assert doc["paths"]["/api/run/tests.web.flows.add"]["post"]["description"] == (
        "Add two numbers."
    )


def test_submit_by_registered_name_read_and_list(server: str) -> None:
    body = {"name": "tests.web.flows.add", "args": [2, 3]}
    created = httpx.post(server + "/api/flows", json=body)
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    assert enact.worker.get_flow(flow_id).wait(60) == "done"
    data = httpx.get(f"{server}/api/flows/{flow_id}", params={"tree": "true"}).json()
    assert data["status"] == "done" and data["result"] == 5
    assert data["tree"]["call"].startswith("add(") and data["tree"]["state"] == "done"
    done = httpx.get(server + "/api/flows", params={"status": "done"}).json()["flows"]
    assert flow_id in [f["id"] for f in done] and {f["status"] for f in done} == {"done"}
    waiting = httpx.get(server + "/api/flows", params={"status": "waiting"}).json()["flows"]
    assert flow_id not in [f["id"] for f in waiting]
    recent = httpx.get(server + "/api/flows", params={"since": "1h"}).json()["flows"]
    assert flow_id in [f["id"] for f in recent]
    assert httpx.get(server + "/api/flows", params={"since": "soon"}).status_code == 422


def test_submit_mistakes(server: str) -> None:
    unknown = httpx.post(server + "/api/flows", json={"name": "os.system", "args": ["true"]})
    assert unknown.status_code == 404 and "nothing registered is named" in unknown.json()["error"]
    missing = httpx.post(server + "/api/flows", json={"name": "tests.web.flows.add", "args": [1]})
    assert missing.status_code == 422 and "missing a required argument" in missing.text
    assert httpx.post(server + "/api/flows", json={"args": []}).status_code == 422


def test_exposed_function_runs_as_a_flow(server: str) -> None:
    reply = httpx.post(
        server + "/api/run/tests.web.flows.add", params={"wait": 60},
        json={"kwargs": {"a": 20, "b": 22}}, timeout=90,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "done" and reply.json()["result"] == 42


def test_answer_wrong_type_unknown_id_conflict(server: str) -> None:
    flow = enact.worker.submit(flows.pick_best, 2)
    request_id = _pending_id(flow)
    listed = httpx.get(server + "/api/inputs").json()
    mine = next(i for i in listed["inputs"] if i["id"] == request_id)
    assert mine["for_value"] == "Which sample is best?" and len(mine["context"]) == 2
    assert mine["requested_type"] == "int" and mine["field"] == "int"
    assert httpx.get(f"{server}/api/inputs/{request_id}").json()["id"] == request_id

    wrong = httpx.post(f"{server}/api/inputs/{request_id}/answer", json={"value": "one"})
    assert wrong.status_code == 422 and "does not match the requested type int" in wrong.text
    assert flow.status() == "waiting" and [p.id for p in flow.pending_inputs()] == [request_id]
    assert httpx.post(f"{server}/api/inputs/nope:0/answer", json={"value": 1}).status_code == 404
    assert httpx.get(f"{server}/api/inputs/nope:0").status_code == 404
    assert httpx.get(f"{server}/api/flows/nope").status_code == 404

    right = httpx.post(f"{server}/api/inputs/{request_id}/answer", json={"value": 0})
    assert right.status_code == 200, right.text
    again = httpx.post(f"{server}/api/inputs/{request_id}/answer", json={"value": 0})
    # Answered: a conflict while the request is kept, unknown once the flow removed it.
    assert again.status_code in (404, 409), again.text
    assert flow.wait(60) == "done"


def test_enum_and_resource_answers_over_json(server: str) -> None:
    color, point = enact.worker.submit(flows.choose_color), enact.worker.submit(flows.place)
    color_id, point_id = _pending_id(color), _pending_id(point)
    bad = httpx.post(f"{server}/api/inputs/{color_id}/answer", json={"value": "GREEN"})
    assert bad.status_code == 422
    assert httpx.post(f"{server}/api/inputs/{color_id}/answer", json={"value": "RED"}).is_success
    assert httpx.post(
        f"{server}/api/inputs/{point_id}/answer", json={"value": {"x": 2, "y": 5}}
    ).is_success
    assert color.wait(60) == "done" and color.result() == "red"
    assert point.wait(60) == "done" and point.result() == 7


def test_cross_site_posts_are_refused(server: str) -> None:
    flow = enact.worker.submit(flows.pick_best, 2)
    request_id = _pending_id(flow)
    evil = {"Origin": "http://evil.example"}
    api = httpx.post(f"{server}/api/inputs/{request_id}/answer", json={"value": 0}, headers=evil)
    assert api.status_code == 403
    plain = httpx.post(
        f"{server}/api/inputs/{request_id}/answer", content='{"value": 0}',
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    assert plain.status_code == 415  # what a cross-site form could send
    form_url = f"{server}/inbox/{request_id}/answer"
    assert httpx.post(form_url, data={"value": "0"}, headers=evil).status_code == 403
    assert httpx.post(form_url, data={"value": "0"}).status_code == 403  # no CSRF token
    with httpx.Client(base_url=server) as browser:  # the real page: cookie and token
        page = browser.get("/inbox").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        forged = browser.post(form_url, data={"value": "0", "csrf": csrf}, headers=evil)
        assert forged.status_code == 403
        assert flow.status() == "waiting"
        ok = browser.post(form_url, data={"value": "0", "csrf": csrf})
        assert ok.status_code == 303 and ok.headers["location"].startswith(f"/flows/{flow.id}")
    assert flow.wait(60) == "done"


def test_off_loopback_needs_a_token(cluster: Any) -> None:
    url, process = cluster.serve("0.0.0.0", None, wait=False)
    assert process.wait(30) != 0
    log = (cluster.directory / f"serve-{url.rsplit(':', 1)[1]}.log").read_text()
    assert "refusing to listen on 0.0.0.0" in log and "ENACT_API_TOKEN" in log
    assert "Traceback" not in log

    url, process = cluster.serve("0.0.0.0", TOKEN)
    assert httpx.get(url + "/api/inputs").status_code == 401
    # The health check needs no token and shows nothing else.
    health = httpx.get(url + "/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert httpx.get(url + "/api/openapi.json").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(url + "/api/inputs", headers=wrong).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url + "/api/inputs", headers=auth).status_code == 200
    created = httpx.post(url + "/api/flows", headers=auth, json={"name": "tests.web.flows.add",
                                                                "args": [1, 1]})  # fmt: skip
    assert created.status_code == 201
    assert httpx.post(url + "/api/flows", json={"name": "x"}).status_code == 401

    with httpx.Client(base_url=url, follow_redirects=True) as browser:
        login = browser.get("/inbox")  # a page redirects to the login form
        assert login.url.path == "/login" and TOKEN not in login.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        assert browser.post("/login", data={"token": "nope", "csrf": csrf}).status_code == 401
        done = browser.post("/login", data={"token": TOKEN, "csrf": csrf, "next": "/flows"})
        assert done.status_code == 200 and done.url.path == "/flows"
        assert TOKEN not in done.text and TOKEN not in str(browser.cookies.jar)
        assert browser.get("/api/flows").status_code == 200  # the session cookie works
    time.sleep(0.2)
    log = (cluster.directory / f"serve-{url.rsplit(':', 1)[1]}.log").read_text()
    assert TOKEN not in log


def test_flow_pages_list_filter_and_show_a_failure(server: str) -> None:
    flow = enact.worker.submit(flows.explode, "kaboom")
    assert flow.wait(60) == "failed"
    page = httpx.get(f"{server}/flows/{flow.id}").text
    assert 'data-flow-status="failed"' in page and "ValueError: kaboom" in page
    listing = httpx.get(f"{server}/flows", params={"status": "failed"}).text
    assert flow.id in listing
    assert flow.id not in httpx.get(f"{server}/flows", params={"status": "done"}).text
    assert httpx.get(f"{server}/flows/nope").status_code == 404


@pytest.mark.parametrize("path", ["/inbox", "/flows", "/api/inputs", "/api/flows"])
def test_pages_and_listings_answer(server: str, path: str) -> None:
    assert httpx.get(server + path, follow_redirects=True).status_code == 200


def test_serve_without_the_web_extra_is_one_line() -> None:
    done = subprocess.run(
        ["python", "-c", "import sys; sys.modules['fastapi'] = None\n"
         "from enact.cli import main; sys.exit(main(['serve']))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().startswith("enact: enact serve needs: pip install 'enact[web]'")


def test_cancel_retry_fork(server: str) -> None:
    flow = enact.worker.submit(flows.pick_best, 2)
    request_id = _pending_id(flow)
    assert httpx.get(f"{server}/api/flows/{flow.id}").json()["actions"] == ["cancel", "fork"]
    cancelled = httpx.post(f"{server}/api/flows/{flow.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["actions"] == ["retry", "fork"]
    assert request_id not in [i["id"] for i in httpx.get(server + "/api/inputs").json()["inputs"]]
    assert httpx.post(f"{server}/api/flows/{flow.id}/cancel").status_code == 409  # final
    done = enact.worker.submit(flows.add, 1, 2)
    assert done.wait(60) == "done"
    assert httpx.post(f"{server}/api/flows/{done.id}/cancel").status_code == 409

    assert httpx.post(f"{server}/api/flows/{flow.id}/retry").status_code == 200
    assert flow.wait(60) == "waiting"
    samples = flow.invocation()
    forked = httpx.post(f"{server}/api/flows/{flow.id}/fork")
    assert forked.status_code == 200 and forked.json()["parent"] == flow.id
    fork = enact.worker.get_flow(forked.json()["id"])
    assert fork.wait(60) == "waiting"
    # The fork continues the record: the same samples, not drawn again.
    assert [c.get_output() for c in fork.invocation().get_children()[:2]] == [
        c.get_output() for c in samples.get_children()[:2]
    ]
    assert httpx.post(f"{server}/api/flows/{flow.id}/explode").status_code == 404
    # A fork with another answer to the request at path 2 (the 'which is best?').
    other = httpx.post(f"{server}/api/flows/{flow.id}/fork", json={"answers": {"2": 0}})
    assert other.status_code == 200, other.text
    other_flow = enact.worker.get_flow(other.json()["id"])
    assert other_flow.wait(60) == "done"
    assert other_flow.result() == samples.get_child(0).get_output()
    wrong = httpx.post(f"{server}/api/flows/{flow.id}/fork", json={"answers": {"2": "x"}})
    assert wrong.status_code == 422
    bad_path = httpx.post(f"{server}/api/flows/{flow.id}/fork", json={"at": "a.b"})
    assert bad_path.status_code == 422

    with httpx.Client(base_url=server) as browser:  # the page's Cancel button
        page = browser.get(f"/flows/{fork.id}").text
        assert 'data-action="cancel"' in page and 'data-flow-status="waiting"' in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        done = browser.post(f"/flows/{fork.id}/cancel", data={"csrf": csrf})
        assert done.status_code == 303 and fork.status() == "cancelled"
    enact.worker.cancel(flow.id)

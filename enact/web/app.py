"""The server: the inbox and flow pages (server-rendered), and the JSON API under ``/api``.

``create_app(config)`` builds a FastAPI application over this process's cluster
configuration (``enact.worker``'s settings). Pages and API share one set of
operations (``enact.web.flowops``) and one set of checks (``enact.web.security``):

* every route needs the token when one is set (API: bearer header, pages: the
  session cookie ``/login`` sets);
* every form post needs the CSRF token and a same-origin ``Origin``; every API post
  needs a JSON body (which a cross-site form cannot send) and a same-origin
  ``Origin`` if it names one.

Errors map to statuses in one place (``_STATUS``): an unknown flow or request is 404,
a wrong-typed answer 422 (the request stays pending), a conflict 409, Redis or the
store down 503. The OpenAPI document is at ``/api/openapi.json``, its viewer at
``/api/docs``.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import enact
import enact.worker
from enact.errors import (
    AnswerTypeError,
    ConflictError,
    EnactError,
    FlowTimeout,
    StoreUnavailable,
    UnknownFlow,
    UnknownInputRequest,
    UnregisteredResource,
)
from enact.web import flowops
from enact.web.forms import AnswerParseError, from_json, parse_form, to_json
from enact.web.inbox import PAGE_SIZE, InboxItem, Requests, age, call_tree
from enact.web.render import render_value
from enact.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    WebConfig,
    same_origin,
)

TEMPLATES = Path(__file__).parent / "templates"

_STATUS: list[tuple[type[BaseException], int]] = [
    (UnknownFlow, 404),
    (UnknownInputRequest, 404),
    (UnregisteredResource, 404),
    (AnswerTypeError, 422),
    (AnswerParseError, 422),
    (ConflictError, 409),
    (FlowTimeout, 504),
    (StoreUnavailable, 503),
    (LookupError, 404),
    (TypeError, 422),
    (EnactError, 400),
]


def _status_for(exc: BaseException) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


class Refused(Exception):
    """A request this server will not serve (no token, a cross-site post)."""

    def __init__(self, status: int, message: str, login: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.login = login


def create_app(config: WebConfig | None = None) -> FastAPI:
    """The application; ``config`` says whom it serves and what it exposes."""
    config = config or WebConfig()
    requests = Requests()
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["render"] = render_value
    templates.env.filters["age"] = age
    templates.env.filters["when"] = lambda t: time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(float(t))
    )
    templates.env.globals["auth_required"] = config.auth_required

    app = FastAPI(
        title="enact",
        version=enact.__version__,
        description="Pending input requests and flows of an enact cluster.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    @app.middleware("http")
    async def server_timing(request: Request, call_next: Any) -> Response:
        """``Server-Timing: app;dur=<ms>``: the server's own time, as browsers show it.

        Also guards the OpenAPI document and its viewer, which FastAPI serves itself.
        """
        started = time.perf_counter()
        if request.url.path in ("/api/openapi.json", "/api/docs") and not config.authorized(
            request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
        ):
            return JSONResponse({"error": "missing or wrong bearer token"}, 401)
        response: Response = await call_next(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
        return response

    # -- checks -----------------------------------------------------------------

    def page_guard(request: Request) -> None:
        if not config.authorized(
            request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
        ):
            raise Refused(401, "log in with the API token", login=True)

    def api_guard(request: Request) -> None:
        if not config.authorized(
            request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
        ):
            raise Refused(401, "missing or wrong bearer token (Authorization: Bearer ...)")
        if request.method == "POST":
            if not same_origin(request.headers.get("origin"), None, request.headers.get("host")):
                raise Refused(403, "cross-site request refused")
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in ("application/json", ""):
                raise Refused(415, "send a JSON body (Content-Type: application/json)")

    async def form_guard(request: Request) -> dict[str, str]:
        """The posted form, once its origin and CSRF token are checked."""
        if not same_origin(
            request.headers.get("origin"),
            request.headers.get("referer"),
            request.headers.get("host"),
        ):
            raise Refused(403, "cross-site form post refused")
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not config.csrf_ok(fields.get(CSRF_FIELD), request.cookies.get(CSRF_COOKIE)):
            raise Refused(403, "the form's CSRF token is missing or stale; reload the page")
        return fields

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        if request.url.path.startswith("/api"):
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse({"error": str(exc)}, exc.status, headers=headers)
        if exc.login:
            target = urllib.parse.quote(request.url.path)
            return RedirectResponse(f"/login?next={target}", 303)
        return HTMLResponse(f"<h1>{exc.status}</h1><p>{exc}</p>", exc.status)

    async def failure(request: Request, exc: Exception) -> Response:
        status = _status_for(exc)
        message = f"{type(exc).__name__}: {exc}"
        if request.url.path.startswith("/api"):
            return JSONResponse({"error": message, "type": type(exc).__name__}, status)
        return render(request, "error.html", {"status": status, "message": message}, status)

    for kind in (EnactError, AnswerParseError, LookupError, TypeError):
        app.add_exception_handler(kind, failure)

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE)
        fresh = csrf is None or not config.csrf_ok(csrf, csrf)
        if fresh:
            csrf = config.new_csrf()
        context = {"csrf": csrf, "pending_count": _count(), **context}
        response = templates.TemplateResponse(request, name, context, status_code=status)
        if fresh:
            response.set_cookie(CSRF_COOKIE, str(csrf), httponly=True, samesite="strict")
        return response

    def _count() -> int | None:
        try:
            return requests.count()
        except EnactError:
            return None

    # -- pages ------------------------------------------------------------------

    pages = APIRouter(dependencies=[Depends(page_guard)], include_in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        """For load balancers and compose healthchecks: no token needed, no data shown.
        200 while Redis (the flows' state) answers, 503 otherwise."""
        try:
            enact.worker.flow_state().ping()
        except EnactError:
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/inbox", 303)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/inbox") -> Response:
        return render(request, "login.html", {"next": _local(next), "error": None})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        fields = await form_guard(request)
        target = _local(fields.get("next", "/inbox"))
        if not config.token_matches(fields.get("token", "")):
            context = {"next": target, "error": "wrong token"}
            return render(request, "login.html", context, 401)
        response = RedirectResponse(target, 303)
        if config.token:
            response.set_cookie(
                SESSION_COOKIE, config.session_value(), httponly=True, samesite="strict"
            )
        return response

    @pages.get("/inbox", response_class=HTMLResponse)
    def inbox(request: Request, page: Annotated[int, Query(ge=1)] = 1) -> Response:
        total, items = requests.page((page - 1) * PAGE_SIZE, PAGE_SIZE)
        return render(request, "inbox.html", _inbox_context(total, items, page, {}))

    def _inbox_context(
        total: int, items: list[InboxItem], page: int, errors: dict[str, tuple[str, str]]
    ) -> dict[str, Any]:
        pages_total = max(1, -(-total // PAGE_SIZE))
        return {
            "items": items, "total": total, "page": page, "pages": pages_total,
            "errors": errors,
        }  # fmt: skip

    @pages.post("/inbox/{request_id}/answer")
    async def answer_form(request: Request, request_id: str) -> Response:
        fields = await form_guard(request)
        item = requests.item(request_id)
        if item is None:
            raise ConflictError(f"input request {request_id} was already answered")
        raw = fields.get("value")
        try:
            if item.loaded:
                value = parse_form(item.requested_type, raw)
            else:
                value = parse_form(None, raw)
            flow = enact.worker.answer(request_id, value)
        except (AnswerParseError, AnswerTypeError) as exc:
            errors = {request_id: (str(exc), raw or "")}
            context = _inbox_context(1, [item], 1, errors)
            context["single"] = True
            return render(request, "inbox.html", context, 422)
        return RedirectResponse(f"/flows/{flow.id}?answered={urllib.parse.quote(request_id)}", 303)

    @pages.get("/flows", response_class=HTMLResponse)
    def flows_page(
        request: Request,
        status: Annotated[list[str] | None, Query()] = None,
        since: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        since_s = _since(since)
        records = flowops.list_flows(status or None, since_s, limit)
        context = {
            "records": [flowops.record_json(r) for r in records],
            "statuses": flowops.STATUSES, "chosen": set(status or ()), "since": since,
        }  # fmt: skip
        return render(request, "flows.html", context)

    @pages.get("/flows/{flow_id}", response_class=HTMLResponse)
    def flow_page(request: Request, flow_id: str) -> Response:
        flow = enact.worker.get_flow(flow_id)
        record = flow.record()
        data = flowops.flow_json(flow, record)
        root, count = (None, 0) if not record.head else call_tree(flow_id, record.head)
        output = None
        if data["status"] == "done":
            output = flow.result()
        items = [i for i in (requests.item(r.id) for r in flow.pending_inputs()) if i]
        context = {
            "flow": data, "root": root, "calls": count, "output": output,
            "has_output": data["status"] == "done", "items": items, "errors": {},
            "final": data["status"] in flowops.FINAL,
        }  # fmt: skip
        return render(request, "flow.html", context)

    @pages.post("/flows/{flow_id}/{action}")
    async def flow_action(request: Request, flow_id: str, action: str) -> Response:
        await form_guard(request)
        if action not in flowops.ACTIONS:
            raise LookupError(f"no action {action!r} for flows")
        flow = flowops.act(flow_id, action)
        return RedirectResponse(f"/flows/{flow.id}", 303)

    app.include_router(pages)

    # -- API --------------------------------------------------------------------

    api = APIRouter(prefix="/api", dependencies=[Depends(api_guard)])

    @api.get("/inputs", summary="Pending input requests, newest first")
    def api_inputs(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
    ) -> dict[str, Any]:
        total, items = requests.page(offset, limit)
        return {"total": total, "offset": offset, "inputs": [i.to_json() for i in items]}

    @api.get("/inputs/{request_id}", summary="One pending input request")
    def api_input(request_id: str) -> dict[str, Any]:
        item = requests.item(request_id)
        if item is None:
            raise ConflictError(f"input request {request_id} was already answered")
        return item.to_json()

    @api.post("/inputs/{request_id}/answer", summary="Answer a request; its flow resumes")
    def api_answer(
        request_id: str,
        value: Annotated[Any, Body(embed=True, description="the answer, as JSON")],
    ) -> dict[str, Any]:
        item = requests.item(request_id)
        if item is None:
            raise ConflictError(f"input request {request_id} was already answered")
        shaped = from_json(item.requested_type, value) if item.loaded else value
        flow = enact.worker.answer(request_id, shaped)
        return {"answered": request_id, "flow": flowops.flow_json(flow)}

    @api.get("/flows", summary="Flows, newest first")
    def api_flows(
        status: Annotated[list[str] | None, Query(description="only these statuses")] = None,
        since: Annotated[str, Query(description="within 90s, 15m, 2h, 1d; or epoch s")] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        records = flowops.list_flows(status or None, _since(since), limit)
        return {"flows": [flowops.record_json(r) for r in records]}

    @api.get("/flows/{flow_id}", summary="A flow: its record, pending requests and result")
    def api_flow(flow_id: str, tree: bool = False) -> dict[str, Any]:
        flow = enact.worker.get_flow(flow_id)
        record = flow.record()
        data = flowops.flow_json(flow, record)
        data["pending_inputs"] = [r.id for r in flow.pending_inputs()]
        if data["status"] == "done":
            data["result"] = to_json(flow.result())
        if tree and record.head:
            data["tree"] = call_tree(flow_id, record.head)[0].to_json()
        return data

    @api.post("/flows", status_code=201, summary="Start a registered function as a flow")
    def api_submit(
        name: Annotated[str, Body(description="a registered function: module.name")],
        args: Annotated[list[Any] | None, Body()] = None,
        kwargs: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> dict[str, Any]:
        flow = flowops.submit(name, args or [], kwargs or {})
        return flowops.flow_json(flow)

    @api.post("/flows/{flow_id}/fork", summary="Fork a flow: a new flow from its record")
    def api_fork(
        flow_id: str,
        at: Annotated[str | None, Body(description="rewind to before this call: 0.2")] = None,
        answers: Annotated[
            dict[str, Any] | None, Body(description="request path -> a new answer")
        ] = None,
    ) -> dict[str, Any]:
        return flowops.flow_json(flowops.fork(flow_id, at, answers))

    @api.post("/flows/{flow_id}/{action}", summary="Cancel or retry a flow")
    def api_action(flow_id: str, action: str) -> dict[str, Any]:
        if action not in flowops.ACTIONS:
            raise LookupError(f"no action {action!r}; one of {', '.join(flowops.ACTIONS)}")
        return flowops.flow_json(flowops.act(flow_id, action))

    for name in config.expose:
        _expose(api, name)

    app.include_router(api)
    return app


def _expose(api: APIRouter, name: str) -> None:
    """``POST /api/run/<name>``: run a registered invokable as a flow (optionally wait)."""
    target = flowops.resolve(name)  # fail at start, not on the first call
    doc = (getattr(target, "__doc__", None) or "").strip()

    def run(
        args: Annotated[list[Any] | None, Body()] = None,
        kwargs: Annotated[dict[str, Any] | None, Body()] = None,
        wait: Annotated[float, Query(ge=0, le=300, description="seconds to wait")] = 0,
    ) -> dict[str, Any]:
        flow = flowops.submit(name, args or [], kwargs or {})
        if wait:
            flow.wait(wait)
        data = flowops.flow_json(flow)
        if data["status"] == "done":
            data["result"] = to_json(flow.result())
        return data

    api.add_api_route(
        f"/run/{name}", run, methods=["POST"], status_code=200,
        summary=f"Run {name} as a flow", description=doc, name=f"run_{name}",
    )  # fmt: skip


def _local(target: str) -> str:
    """A redirect target on this server only (no open redirect to another host)."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return "/inbox"
    return target


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _since(text: str) -> float | None:
    """``90s``, ``15m``, ``2h``, ``1d`` ago, or an epoch time; ``None`` for empty."""
    text = text.strip()
    if not text:
        return None
    unit = text[-1].lower()
    try:
        if unit in _UNITS:
            return time.time() - float(text[:-1]) * _UNITS[unit]
        return float(text)
    except ValueError:
        raise AnswerParseError(
            f"since={text!r}: expected a duration (90s, 15m, 2h, 1d) or an epoch time"
        ) from None

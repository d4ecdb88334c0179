"""The ``enact`` command.

Local:
    enact run FILE.py:NAME ARGS... [--answer V]  run and record a call, print its summary
    enact run --continue REF [--answer V]        continue a stored invocation (no re-sampling)
    enact show REF                               summary of a stored invocation

Cluster (``ENACT_*`` configuration, see README):
    enact worker [celery worker options]         start a worker
    enact serve [--host H] [--port P]            the inbox, flow pages and HTTP API
    enact submit MODULE:NAME ARGS... [--wait S]  start a flow, print its id
    enact status FLOW [--wait S]                 a flow's status, result or error
    enact flows [--status S] [--since 1h]        recent flows
    enact inputs [--flow FLOW]                   pending input requests, with their context
    enact input REQUEST                          one request in full
    enact answer REQUEST VALUE                   answer one; the flow resumes on a worker
    enact cancel|retry FLOW, enact fork FLOW     the flow's lifecycle
    enact show FLOW                              summary of a flow's invocation

Storage upkeep (see README, "Garbage collection"):
    enact gc [--dry-run] [--grace 1h]            delete what no ref, flow or pin reaches
    enact fsck [--repair]                        verify every object; move damage aside
    enact pin REF|FLOW [--name N] | --list       keep something (and all it links to)
    enact unpin NAME|REF                         stop keeping it

Arguments and answers are parsed as JSON when they can be (``3`` is an int,
``"3"`` a string, ``[1, 2]`` a list) and taken as plain strings otherwise.
Every listing takes ``--json``. A mistake prints one line on stderr, never a
traceback.

Exit codes (``status``, ``submit --wait``, ``run`` follow the flow's state):
    0  done (or the command succeeded)
    1  error: a mistake in the command, or enact could not do it (one line on stderr)
    2  usage: unknown command or option, missing argument (argparse)
    3  waiting for input
    4  failed
    5  cancelled
    6  not finished yet: queued, running, or lapsed (its worker died)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import enact
import enact.gc
from enact import tree
from enact.config import Settings
from enact.digests import is_digest
from enact.errors import (
    EnactError,
    FlowTimeout,
    StoreUnavailable,
    UnknownFlow,
    UnknownInputRequest,
)
from enact.printing import describe_call, pformat
from enact.progress import Progress
from enact.redaction import redact
from enact.requests import InputRequest, pending_input_requests

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_WAITING = 3
EXIT_FAILED = 4
EXIT_CANCELLED = 5
EXIT_NOT_FINISHED = 6

EXIT_FOR_STATUS = {
    "done": EXIT_OK,
    "waiting": EXIT_WAITING,
    "failed": EXIT_FAILED,
    "cancelled": EXIT_CANCELLED,
    "queued": EXIT_NOT_FINISHED,
    "running": EXIT_NOT_FINISHED,
    "lapsed": EXIT_NOT_FINISHED,
}
FINAL = ("done", "failed", "cancelled")


class Mistake(Exception):
    """A user mistake: printed as one line (``enact: ...``), exit code 1."""


def parse_value(text: str) -> Any:
    """A command-line value: JSON if it parses, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_target(spec: str) -> Any:
    """Import ``path/to/file.py:name`` or ``package.module:name`` and return ``name``."""
    location, sep, name = spec.rpartition(":")
    if not sep or not location or not name:
        raise Mistake(f"expected FILE.py:NAME or MODULE:NAME, got {spec!r}")
    module = load_module(location)
    try:
        return getattr(module, name)
    except AttributeError:
        raise Mistake(f"{location} has no attribute {name!r}") from None


def load_module(location: str) -> Any:
    """Import a module by file path (``dir/file.py``) or by name (``package.module``)."""
    try:
        return _import(location)
    except (ImportError, SyntaxError) as exc:
        raise Mistake(f"cannot import {location}: {type(exc).__name__}: {exc}") from None


def _import(location: str) -> Any:
    if location.endswith(".py") or "/" in location:
        path = Path(location).resolve()
        if not path.is_file():
            raise Mistake(f"no such file: {location}")
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
        module = sys.modules.get(module_name)
        if module is None or getattr(module, "__file__", None) != str(path):
            spec_obj = importlib.util.spec_from_file_location(module_name, path)
            assert spec_obj is not None and spec_obj.loader is not None
            module = importlib.util.module_from_spec(spec_obj)
            sys.modules[module_name] = module
            spec_obj.loader.exec_module(module)
        return module
    sys.path.insert(0, str(Path.cwd()))
    return importlib.import_module(location)


def check_arguments(target: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """``Mistake`` if ``target`` cannot take these arguments (checked before running it)."""
    if not callable(target):
        raise Mistake(f"{target!r} is not callable")
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return  # no signature to check against: the call itself will tell
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        name = getattr(target, "__name__", None) or type(target).__name__
        raise Mistake(f"{name}{signature}: {exc}") from None


def _emit_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=repr))


# Local runs --------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    answers = list(args.answer or [])
    with enact.Store(args.store, settings=args.settings) as store:
        if args.continue_ref:
            if args.args:
                raise Mistake("--continue REF takes no arguments: they are recorded")
            if args.target:  # imported for what it registers; the call is the recorded one
                load_target(args.target)
            if not is_digest(args.continue_ref):
                raise Mistake(f"--continue expects an invocation ref (64 hex digits), got "
                              f"{args.continue_ref!r}")  # fmt: skip
            invocation = tree.load(store, args.continue_ref).invocation(store)
            if not pending_input_requests(invocation) and not invocation.successful():
                try:  # a failed invocation: replay it (what returned is reused, not re-run)
                    invocation = invocation.replay()
                except Exception as exc:  # noqa: BLE001 - the program's own error
                    return _stopped_by(exc, store, args.target or "")
            generator = enact.InvocationGenerator.from_invocation(invocation)
        else:
            if not args.target:
                raise Mistake("run needs FILE.py:NAME (or --continue REF)")
            target = load_target(args.target)
            call_args = tuple(parse_value(a) for a in args.args)
            check_arguments(target, call_args, {})
            generator = enact.InvocationGenerator.from_callable(target, call_args)
        try:
            for request in generator:
                status = _answer_locally(generator, request, answers, store, args.target or "")
                if status is not None:
                    return status
        except EnactError:
            raise
        except Exception as exc:  # noqa: BLE001 - the program's own error
            return _stopped_by(exc, store, args.target or "")
        final = generator.invocation
        assert final is not None
        print(enact.invocation_summary(final))
        print(f"invocation {final.digest} in {store!r}", file=sys.stderr)
    return EXIT_OK


def _answer_locally(
    generator: Any, request: InputRequest, answers: list[str], store: Any, target: str
) -> int | None:
    wanted = getattr(request.requested_type, "__name__", request.requested_type)
    prompt = f"{request.requested_for} ({wanted}): "
    while True:
        if answers:
            text = answers.pop(0)
        elif sys.stdin.isatty():
            if request.context is not None:
                print(pformat(request.context), file=sys.stderr)
            text = input(prompt)
        else:
            invocation = generator.invocation
            assert invocation is not None
            print(enact.invocation_summary(invocation))
            print(
                f"waiting for input: {request.requested_for!r} ({wanted}); continue with: "
                f"{_continue_hint(target, invocation.digest)} --answer VALUE",
                file=sys.stderr,
            )
            return EXIT_WAITING
        try:
            generator.set_input(parse_value(text))
            return None
        except TypeError as exc:
            print(f"enact: {exc}", file=sys.stderr)
            if not sys.stdin.isatty():
                invocation = generator.invocation
                print(
                    f"enact: continue with: {_continue_hint(target, invocation.digest)} "
                    "--answer VALUE",
                    file=sys.stderr,
                )
                return EXIT_WAITING


def _continue_hint(target: str, digest: str) -> str:
    """The command that continues an invocation (the target registers its function)."""
    return f"enact run {target + ' ' if target else ''}--continue {digest}"


def _stopped_by(exc: BaseException, store: Any, target: str) -> int:
    """Report a program that raised: its summary, the error, and the ref to retry it."""
    invocation = getattr(exc, "invocation", None)
    if invocation is None:
        raise exc
    print(enact.invocation_summary(invocation))
    print(
        f"enact: failed: {type(exc).__name__}: {redact(exc)}; invocation {invocation.digest} "
        f"(retry what failed, reusing the rest: {_continue_hint(target, invocation.digest)})",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _cmd_show(args: argparse.Namespace) -> int:
    for module in args.imports or ():
        load_module(module)
    if is_digest(args.id):
        with enact.Store(args.store, settings=args.settings) as store:
            print(enact.invocation_summary(tree.load(store, args.id).invocation()))
        return EXIT_OK
    print(_worker(args).get_flow(args.id).summary())
    return EXIT_OK


# Cluster ---------------------------------------------------------------------


def _worker(args: argparse.Namespace, ping: bool = True) -> Any:
    """The ``enact.worker`` package, set to ``args.settings``, its Redis checked."""
    try:
        import enact.worker
    except ImportError as exc:
        raise Mistake(
            f"this command needs the cluster extra: pip install 'enact[worker]' ({exc})"
        ) from None
    if enact.worker.runtime.settings() != args.settings:
        enact.worker.reconfigure(args.settings)
    for name in args.settings.imports:  # the registered types answers are checked against
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # not importable here: only what it registers is missing
    if ping:
        enact.worker.flow_state().ping()
    return enact.worker


def _cmd_worker(args: argparse.Namespace, extra: Sequence[str]) -> int:
    try:
        from enact.worker import app
    except ImportError as exc:
        raise Mistake(f"enact worker needs: pip install 'enact[worker]' ({exc})") from None
    argv = ["worker", "--loglevel=INFO", "--hostname=worker@%h", *extra]
    app.worker_main(argv)
    return EXIT_OK


def _status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def _latest_call(worker: Any, head: str | None) -> tuple[int, str]:
    """How many top-level calls ``head`` recorded, and its last call (the deepest last
    child), for progress lines."""
    if not head:
        return 0, ""
    store = worker.store()
    node = top = tree.load(store, head)
    for _ in range(64):
        if not node.children:
            break
        node = tree.load(store, node.children[-1])
    return len(top.children), describe_call(node.invokable_digest, node.input_digest, store)


def wait_for(worker: Any, flow: Any, timeout_s: float | None) -> str:
    """Wait until the flow is done, failed, cancelled or waiting; a progress line on a
    terminal (the status and the latest call). Returns the status; ``FlowTimeout``."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with Progress(label=f"flow {flow.id} calls") as line:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            step = 1.0 if left is None else max(0.0, min(1.0, left))
            try:
                status = _status_text(flow.wait(step))
            except FlowTimeout:
                status = ""
            record = flow.record()
            if line.enabled:
                calls, latest = _latest_call(worker, record.head)
                line.update(done=calls, extra=f"{_status_text(record.status)} {latest}"[:120])
            if status:
                return status
            if left is not None and left <= 0:
                raise FlowTimeout(
                    f"flow {flow.id} is still {_status_text(record.status)} after {timeout_s} s"
                )


def _cmd_submit(args: argparse.Namespace) -> int:
    target = load_target(args.target)
    call_args = [parse_value(a) for a in args.args]
    check_arguments(target, call_args, {})
    worker = _worker(args)
    flow = worker.submit(target, *call_args)
    if args.wait is None:
        print(flow.id)
        return EXIT_OK
    try:
        wait_for(worker, flow, args.wait)
    except FlowTimeout as exc:
        print(flow.id)
        print(f"enact: {exc}", file=sys.stderr)
        return EXIT_NOT_FINISHED
    return _report(flow, args.json)


def _report(flow: Any, as_json: bool) -> int:
    """Print a flow's state (text or JSON); the exit code follows its status."""
    record = flow.record()
    status = _status_text(record.status)
    pending = flow.pending_inputs() if status == "waiting" else []
    result = flow.result() if status == "done" else None
    if as_json:
        data = _record_json(record)
        data["pending_inputs"] = [p.id for p in pending]
        if status == "done":
            data["result"] = _jsonable(result)
        _emit_json(data)
    else:
        print(f"{record.id} {record.name} {status}")
        if status == "done":
            print(f"result: {result!r}")
        elif status == "failed":
            print(f"error: {record.error}")
        for request in pending:
            print(f"waiting for {request.id}: {request.for_value} ({request.requested_type})")
    return EXIT_FOR_STATUS.get(status, EXIT_ERROR)


def _record_json(record: Any) -> dict[str, Any]:
    to_json = getattr(record, "to_json", None)
    if callable(to_json):
        data = dict(to_json())
    else:
        data = dataclasses.asdict(record)
    data["status"] = _status_text(record.status)
    return data


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _cmd_status(args: argparse.Namespace) -> int:
    worker = _worker(args)
    flow = worker.get_flow(args.flow)
    if args.wait is not None:
        try:
            wait_for(worker, flow, args.wait)
        except FlowTimeout as exc:
            print(f"enact: {exc}", file=sys.stderr)
    return _report(flow, args.json)


def _since(text: str | None) -> float | None:
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return time.time() - float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise Mistake(
            f"--since {text!r}: expected a duration such as 90s, 15m, 2h, 1d, or an epoch time"
        ) from None


def _cmd_flows(args: argparse.Namespace) -> int:
    statuses = {s for group in args.status or () for s in group.split(",") if s}
    unknown = statuses - set(EXIT_FOR_STATUS)
    if unknown:
        raise Mistake(f"unknown status {', '.join(sorted(unknown))}; "
                      f"one of {', '.join(EXIT_FOR_STATUS)}")  # fmt: skip
    since = _since(args.since)
    worker = _worker(args)
    records = _list_flows(worker, statuses or None, since, args.limit)
    if args.json:
        _emit_json([_record_json(r) for r in records])
        return EXIT_OK
    if not records:
        print("no flows")
    for record in records:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        print(f"{record.id}  {_status_text(record.status):9} {created}  {record.name}")
    return EXIT_OK


def _list_flows(worker: Any, statuses: set[str] | None, since: float | None, limit: int) -> list:
    return list(worker.list_flows(status=statuses, since=since, limit=limit))


def _request_object(worker: Any, pending: Any) -> InputRequest | None:
    """The ``InputRequest`` a pending request stands for (its real type and context)."""
    store = worker.store()
    try:
        with store:
            invocation = tree.load(store, pending.invocation).invocation(store)
            return dict(pending_input_requests(invocation)).get(tuple(pending.path))
    except EnactError:
        return None  # its types are not registered here: show what Redis holds


def _input_json(pending: Any, request: InputRequest | None) -> dict[str, Any]:
    context = pending.context if request is None else request.context
    return {
        "id": pending.id,
        "flow_id": pending.flow_id,
        "for_value": pending.for_value if request is None else _jsonable(request.requested_for),
        "requested_type": pending.requested_type,
        "context": _jsonable(context),
        "created": pending.created,
        "status": pending.status,
    }


def _context_lines(pending: Any, request: InputRequest | None, limit: int | None) -> list[str]:
    if request is None:
        text = pending.context
        if text is None:
            return []
    else:
        if request.context is None:
            return []
        with_store = request.context
        text = pformat(with_store)
    lines = str(text).splitlines() or [""]
    if limit is not None and len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines: enact input {pending.id})"]
    return lines


def _cmd_inputs(args: argparse.Namespace) -> int:
    worker = _worker(args)
    requests = worker.pending_inputs(args.flow)
    requests = sorted(requests, key=lambda r: r.created, reverse=True)[: args.limit]
    loaded = [(p, _request_object(worker, p)) for p in requests]
    if args.json:
        _emit_json([_input_json(p, r) for p, r in loaded])
        return EXIT_OK
    if not requests:
        print("no pending input requests")
    for pending, request in loaded:
        age = max(0, int(time.time() - pending.created))
        print(f"{pending.id}  {pending.requested_type}  {pending.for_value}  ({age}s ago)")
        for line in _context_lines(pending, request, 8):
            print(f"    {line}")
    return EXIT_OK


def _cmd_input(args: argparse.Namespace) -> int:
    worker = _worker(args)
    pending = worker.flow_state().get_input_request(args.request)
    request = _request_object(worker, pending)
    if args.json:
        _emit_json(_input_json(pending, request))
        return EXIT_OK
    print(f"request   {pending.id} ({pending.status})")
    print(f"flow      {pending.flow_id}")
    print(f"for       {pending.for_value}")
    print(f"type      {pending.requested_type}")
    print(f"asked     {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(pending.created))}")
    lines = _context_lines(pending, request, None)
    if lines:
        print("context")
        for line in lines:
            print(f"    {line}")
    if pending.status != "answered":
        print(f"answer    enact answer {pending.id} VALUE")
    return EXIT_OK


def _cmd_answer(args: argparse.Namespace) -> int:
    worker = _worker(args)
    try:
        flow = worker.answer(args.request, parse_value(args.value))
    except UnknownInputRequest as exc:
        raise Mistake(f"UnknownInputRequest: {exc}; list them with: enact inputs") from None
    print(f"answered; flow {flow.id} resumes")
    return EXIT_OK


def _cmd_cancel(args: argparse.Namespace) -> int:
    worker = _worker(args)
    flow = worker.cancel(args.flow)
    print(f"{flow.id} {_status_text(flow.status())}")
    return EXIT_OK


def _cmd_retry(args: argparse.Namespace) -> int:
    worker = _worker(args)
    flow = worker.retry(args.flow)
    print(f"{flow.id} {_status_text(flow.status())}")
    return EXIT_OK


def _path(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(".") if p != "")
    except ValueError:
        raise Mistake(f"a call path is dotted child indexes such as 0.2, got {text!r}") from None


def _cmd_fork(args: argparse.Namespace) -> int:
    answers = {}
    for item in args.answer or ():
        path, sep, value = item.partition("=")
        if not sep:
            raise Mistake(f"--answer expects PATH=VALUE (such as 0.1=6), got {item!r}")
        answers[_path(path)] = parse_value(value)
    at = None if args.at is None else _path(args.at)
    worker = _worker(args)
    flow = worker.fork(args.flow, at=at, answers=answers or None)
    print(flow.id)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import enact.web
    except ImportError as exc:
        raise Mistake(f"enact serve needs: pip install 'enact[web]' ({exc})") from None
    config = enact.web.WebConfig.from_settings(
        args.settings, host=args.host, port=args.port, expose=tuple(args.expose or ())
    )
    _worker(args, ping=False)
    config.check_bind()
    enact.web.serve(config, args.settings, log_level=args.log_level)
    return EXIT_OK


class _Progress:
    """Progress lines on stderr, at most one a second."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.started = self.last = time.monotonic()

    def __call__(self, phase: str, count: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last = now
            print(
                f"{self.command}: {phase} {count:,} ({now - self.started:.0f}s)",
                file=sys.stderr,
                flush=True,
            )


def _backend(args: argparse.Namespace) -> Any:
    """The backend gc, fsck and pins work on: ``--store``, else the settings' store."""
    return enact.gc.maintainable(args.store, args.settings)


def _gc_roots(args: argparse.Namespace) -> list[Any]:
    """Root sources besides the store's pins: the cluster's refs and flows in Redis."""
    if args.no_redis:
        return []
    try:
        worker = _worker(args, ping=False)
    except Mistake as exc:
        raise Mistake(
            f"gc reads refs and flows from Redis to know what is live: {exc}; "
            "pass --no-redis if this store has none"
        ) from None
    roots = worker.gc_roots()
    try:
        roots[0].ping()  # fail here, before anything else, if Redis cannot be read
    except StoreUnavailable as exc:
        raise StoreUnavailable(
            f"{exc}. gc reads refs and flows from Redis to know what is live, and deletes "
            "nothing without them; pass --no-redis if this store has no refs or flows"
        ) from exc
    return roots


def _cmd_gc(args: argparse.Namespace) -> int:
    progress = _Progress("gc")
    if args.compact_only:
        report = enact.gc.compact(_backend(args), progress=progress)
        print(f"compacted {report.store}: indexes {report.indexes_before} -> "
              f"{report.indexes_after} ({report.seconds['total']:.2f}s)")  # fmt: skip
        return 0
    grace = None if args.grace is None else enact.gc.parse_duration(args.grace)
    report = enact.gc.collect(
        args.store,
        _gc_roots(args),
        grace_s=grace,
        dry_run=args.dry_run,
        offline=args.offline,
        allow_damaged=args.allow_damaged,
        progress=progress,
        settings=args.settings,
    )
    print(report.summary())
    return 0


def _cmd_fsck(args: argparse.Namespace) -> int:
    report = enact.gc.fsck(
        args.store, repair=args.repair, progress=_Progress("fsck"), settings=args.settings
    )
    print(report.summary())
    return 0 if report.ok else 1


def _cmd_pin(args: argparse.Namespace) -> int:
    if args.list:
        for name, digest in sorted(enact.gc.pins(_backend(args)).items()):
            print(f"{name}  {digest}" if name != digest else digest)
        return 0
    if not args.target:
        raise Mistake("pin needs a REF (a digest) or a FLOW id, or --list")
    target, name = args.target, args.name
    if not is_digest(target):
        flow_pin_target = _worker(args).gcroots.flow_pin_target
        try:
            target, name = flow_pin_target(args.target), name or f"flow-{args.target}"
        except UnknownFlow:
            raise SystemExit(
                f"enact: {args.target!r} is neither a digest (64 hex digits) nor a flow id"
            ) from None
    try:
        pinned = enact.gc.pin(_backend(args), target, name)
    except ValueError as exc:  # a malformed pin name
        raise Mistake(f"{exc}") from None
    print(f"pinned {target}" + (f" as {pinned}" if pinned != target else ""))
    return 0


def _cmd_unpin(args: argparse.Namespace) -> int:
    for name in enact.gc.unpin(_backend(args), args.name):
        print(f"unpinned {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enact",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Exit codes") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"enact {enact.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_help = "store URL (default: $ENACT_STORE_URL or file:.enact)"
    json_help = "print JSON instead of text"

    run = sub.add_parser("run", help="run a registered function locally and print its summary")
    run.add_argument("target", nargs="?", help="FILE.py:NAME or MODULE:NAME")
    run.add_argument("args", nargs="*", help="arguments (JSON, else strings)")
    run.add_argument("--store", help=store_help)
    run.add_argument(
        "--answer", action="append", metavar="VALUE",
        help="answer to the next input request (repeat for several, in order)",
    )  # fmt: skip
    run.add_argument(
        "--continue", dest="continue_ref", metavar="REF",
        help="continue the stored invocation REF (printed when a run stops for input or "
        "fails): what it recorded is reused, not sampled again",
    )  # fmt: skip

    show = sub.add_parser("show", help="summary of a stored invocation (REF) or of a flow")
    show.add_argument("id", help="an invocation ref id (64 hex digits) or a flow id")
    show.add_argument("--store", help="store URL for a ref")
    show.add_argument(
        "--import", dest="imports", action="append", metavar="MODULE",
        help="FILE.py or MODULE to import first (registers the types it shows)",
    )  # fmt: skip

    sub.add_parser("worker", help="start a Celery worker (extra options go to celery)")

    serve = sub.add_parser("serve", help="serve the inbox, flow pages and HTTP API")
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs $ENACT_API_TOKEN)",
    )  # fmt: skip
    serve.add_argument("--port", type=int, default=7600, help="port (default 7600)")
    serve.add_argument(
        "--expose", action="append", metavar="MODULE.NAME",
        help="serve this registered function as POST /api/run/MODULE.NAME (repeatable)",
    )  # fmt: skip
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default info)",
    )  # fmt: skip

    submit = sub.add_parser("submit", help="run a registered function as a flow on the workers")
    submit.add_argument("target", help="MODULE:NAME (importable by the workers)")
    submit.add_argument("args", nargs="*", help="arguments (JSON, else strings)")
    submit.add_argument(
        "--wait", type=float, metavar="SECONDS",
        help="wait up to SECONDS for the flow to finish or ask for input; the exit code "
        "then follows its status",
    )  # fmt: skip
    submit.add_argument("--json", action="store_true", help=json_help + " (with --wait)")

    status = sub.add_parser("status", help="a flow's status; the exit code follows it")
    status.add_argument("flow", help="flow id")
    status.add_argument("--wait", type=float, metavar="SECONDS", help="wait for it first")
    status.add_argument("--json", action="store_true", help=json_help)

    flows = sub.add_parser("flows", help="recent flows, newest first")
    flows.add_argument(
        "--status", action="append", metavar="STATUS",
        help="only these statuses (repeat or comma-separate): " + ", ".join(EXIT_FOR_STATUS),
    )  # fmt: skip
    flows.add_argument("--since", metavar="DURATION", help="created within (90s, 15m, 2h, 1d)")
    flows.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    flows.add_argument("--json", action="store_true", help=json_help)

    inputs = sub.add_parser("inputs", help="pending input requests with their context")
    inputs.add_argument("--flow", help="only this flow's requests")
    inputs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    inputs.add_argument("--json", action="store_true", help=json_help)

    input_ = sub.add_parser("input", help="one input request in full")
    input_.add_argument("request", help="request id (FLOW:PATH, as enact inputs lists it)")
    input_.add_argument("--json", action="store_true", help=json_help)

    answer = sub.add_parser("answer", help="answer an input request; its flow resumes")
    answer.add_argument("request", help="request id (FLOW:PATH)")
    answer.add_argument("value", help="the answer (JSON, else a string); checked by type")

    cancel = sub.add_parser("cancel", help="cancel a flow that has not finished")
    cancel.add_argument("flow", help="flow id")
    retry = sub.add_parser("retry", help="continue a failed or cancelled flow from its record")
    retry.add_argument("flow", help="flow id")
    fork = sub.add_parser("fork", help="start a new flow from another's record; prints its id")
    fork.add_argument("flow", help="flow id to fork")
    fork.add_argument("--at", metavar="PATH", help="rewind to this call first (such as 0.2)")
    fork.add_argument(
        "--answer", action="append", metavar="PATH=VALUE",
        help="answer the request at PATH differently (repeatable)",
    )  # fmt: skip

    gc = sub.add_parser("gc", help="delete what no ref, flow or pin reaches and is old enough")
    gc.add_argument("--store", help=store_help)
    gc.add_argument("--dry-run", action="store_true", help="report what would go; delete nothing")
    gc.add_argument(
        "--grace",
        metavar="DURATION",
        help="keep everything younger than this (default $ENACT_GC_GRACE_S or 1h; e.g. 90m, 2d)",
    )
    gc.add_argument(
        "--offline",
        action="store_true",
        help="nothing writes to the store meanwhile: any grace is allowed (even 0)",
    )
    gc.add_argument(
        "--allow-damaged",
        action="store_true",
        help="collect even if reachable objects are missing or corrupt (treated as leaves)",
    )
    gc.add_argument(
        "--no-redis",
        action="store_true",
        help="the store has no refs or flows in Redis: pins are the only roots",
    )
    gc.add_argument(
        "--compact-only", action="store_true", help="only merge S3 indexes; delete nothing"
    )

    fsck = sub.add_parser("fsck", help="verify every stored object and index")
    fsck.add_argument("--store", help=store_help)
    fsck.add_argument(
        "--repair",
        action="store_true",
        help="move damaged copies aside (so committing again repairs them), restore from "
        "good copies, re-index packs of unreadable indexes",
    )

    pin = sub.add_parser("pin", help="keep an object or a flow's records (and all they link to)")
    pin.add_argument("target", nargs="?", help="a digest, or a flow id")
    pin.add_argument("--name", help="the pin's name (default: the digest, or flow-ID)")
    pin.add_argument("--list", action="store_true", help="list the pins")
    pin.add_argument("--store", help=store_help)

    unpin = sub.add_parser("unpin", help="remove a pin (by name, or every pin of a digest)")
    unpin.add_argument("name", help="the pin's name, or a digest (removes every pin of it)")
    unpin.add_argument("--store", help=store_help)
    return parser


HANDLERS = {
    "run": _cmd_run,
    "show": _cmd_show,
    "serve": _cmd_serve,
    "submit": _cmd_submit,
    "status": _cmd_status,
    "flows": _cmd_flows,
    "inputs": _cmd_inputs,
    "input": _cmd_input,
    "answer": _cmd_answer,
    "cancel": _cmd_cancel,
    "retry": _cmd_retry,
    "fork": _cmd_fork,
    "gc": _cmd_gc,
    "fsck": _cmd_fsck,
    "pin": _cmd_pin,
    "unpin": _cmd_unpin,
}


def _fail(message: str) -> int:
    print(f"enact: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        if argv and argv[0] == "worker":
            return _cmd_worker(parser.parse_args(argv[:1]), argv[1:])
        args = parser.parse_args(argv)
        args.settings = Settings.from_env()
        return HANDLERS[args.command](args)
    except Mistake as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # argparse (usage, --help, --version), or a plain message
        if isinstance(exc.code, str):
            return _fail(exc.code.removeprefix("enact: "))
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except EnactError as exc:
        return _fail(f"{type(exc).__name__}: {redact(exc)}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("redis", "kombu", "botocore", "boto3"):
            return _fail(f"cannot reach a server ({type(exc).__name__}): {redact(exc)}")
        raise


if __name__ == "__main__":
    sys.exit(main())

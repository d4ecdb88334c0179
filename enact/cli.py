"""The ``enact`` command.

Local:
    enact run examples/dice.py:roll_sum 3     run and record a call, print its summary
    enact show REF                            summary of a stored invocation

Storage upkeep (see README, "Garbage collection"):
    enact gc [--dry-run] [--grace 1h]         delete what no ref, flow or pin reaches
    enact fsck [--repair]                     verify every object; move damage aside
    enact pin REF|FLOW [--name N] | --list    keep something (and all it links to)
    enact unpin NAME|REF                      stop keeping it

Cluster (``ENACT_*`` configuration, see README):
    enact worker [celery worker options]      start a worker
    enact submit module:function ARGS...      start a flow, print its id
    enact status FLOW | enact flows           one flow's status | recent flows
    enact inputs [--flow FLOW]                pending input requests
    enact answer REQUEST VALUE                answer one; the flow resumes on a worker
    enact show FLOW                           summary of a flow's invocation

Arguments and answers are parsed as JSON when they can be (``3`` is an int,
``"3"`` a string, ``[1, 2]`` a list) and taken as plain strings otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
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
from enact.errors import EnactError, StoreUnavailable, UnknownFlow


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
        raise SystemExit(f"enact: expected FILE.py:NAME or MODULE:NAME, got {spec!r}")
    module = load_module(location)
    try:
        return getattr(module, name)
    except AttributeError:
        raise SystemExit(f"enact: {location} has no attribute {name!r}") from None


def load_module(location: str) -> Any:
    """Import a module by file path (``dir/file.py``) or by name (``package.module``)."""
    if location.endswith(".py") or "/" in location:
        path = Path(location).resolve()
        if not path.is_file():
            raise SystemExit(f"enact: no such file: {location}")
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
        module = sys.modules.get(module_name)
        if module is None or getattr(module, "__file__", None) != str(path):
            spec_obj = importlib.util.spec_from_file_location(module_name, path)
            assert spec_obj is not None and spec_obj.loader is not None
            module = importlib.util.module_from_spec(spec_obj)
            sys.modules[module_name] = module
            spec_obj.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        module = importlib.import_module(location)
    return module


def _cmd_run(args: argparse.Namespace) -> int:
    target = load_target(args.target)
    call_args = tuple(parse_value(a) for a in args.args)
    answers = list(args.answer or [])
    with enact.Store(args.store, settings=args.settings) as store:
        generator = enact.InvocationGenerator.from_callable(target, call_args)
        for request in generator:
            wanted = getattr(request.requested_type, "__name__", request.requested_type)
            prompt = f"{request.requested_for} ({wanted}): "
            while True:
                if answers:
                    text = answers.pop(0)
                elif sys.stdin.isatty():
                    text = input(prompt)
                else:
                    assert generator.invocation is not None
                    print(enact.invocation_summary(generator.invocation))
                    print(
                        f"waiting for input: {request.requested_for!r}; pass --answer VALUE",
                        file=sys.stderr,
                    )
                    return 2
                try:
                    generator.set_input(parse_value(text))
                    break
                except TypeError as exc:
                    print(f"enact: {exc}", file=sys.stderr)
                    if not sys.stdin.isatty():
                        return 2
        invocation = generator.invocation
        assert invocation is not None
        print(enact.invocation_summary(invocation))
        print(f"invocation {invocation.digest} in {store!r}", file=sys.stderr)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    for module in args.imports or ():
        load_module(module)
    if is_digest(args.id):
        with enact.Store(args.store, settings=args.settings) as store:
            print(enact.invocation_summary(tree.load(store, args.id).invocation()))
        return 0
    print(_worker(args).get_flow(args.id).summary())
    return 0


def _worker(args: argparse.Namespace) -> Any:
    """The ``enact.worker`` package (celery is an optional extra), set to ``args.settings``."""
    import enact.worker

    enact.worker.runtime.configure(args.settings)
    return enact.worker


def _cmd_worker(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from enact.worker import app

    argv = ["worker", "--loglevel=INFO", "--hostname=worker@%h", *extra]
    app.worker_main(argv)
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    flow = _worker(args).submit(load_target(args.target), *(parse_value(a) for a in args.args))
    print(flow.id)
    if args.wait is not None:
        status = flow.wait(args.wait)
        print(status)
        if status == "done":
            print(repr(flow.result()))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    flow = _worker(args).get_flow(args.flow)
    record = flow.record()
    print(f"{record.id} {record.name} {record.status}")
    if record.status == "done":
        print(f"result: {flow.result()!r}")
    elif record.status == "failed":
        print(f"error: {record.error}")
    elif record.status == "waiting":
        for request in flow.pending_inputs():
            print(f"waiting for {request.id}: {request.for_value} ({request.requested_type})")
    return 0


def _cmd_flows(args: argparse.Namespace) -> int:
    for record in _worker(args).list_flows(limit=args.limit):
        print(f"{record.id} {record.status:8} {record.name}")
    return 0


def _cmd_inputs(args: argparse.Namespace) -> int:
    requests = _worker(args).pending_inputs(args.flow)
    if not requests:
        print("no pending input requests")
    for request in requests:
        print(f"{request.id}  {request.requested_type:10} {request.for_value}")
    return 0


def _cmd_answer(args: argparse.Namespace) -> int:
    flow = _worker(args).answer(args.request, parse_value(args.value))
    print(f"answered; flow {flow.id} resumes")
    return 0


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
        worker = _worker(args)
    except ImportError as exc:
        raise SystemExit(
            f"enact: gc reads refs and flows from Redis to know what is live, which needs "
            f"pip install 'enact[worker]' ({exc}); pass --no-redis if this store has none"
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
        raise SystemExit("enact: pin needs a REF (a digest) or a FLOW id, or --list")
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
        raise SystemExit(f"enact: {exc}") from None
    print(f"pinned {target}" + (f" as {pinned}" if pinned != target else ""))
    return 0


def _cmd_unpin(args: argparse.Namespace) -> int:
    for name in enact.gc.unpin(_backend(args), args.name):
        print(f"unpinned {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enact", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a registered function locally and print its summary")
    run.add_argument("target", help="FILE.py:NAME or MODULE:NAME")
    run.add_argument("args", nargs="*", help="arguments (JSON, else strings)")
    run.add_argument("--store", help="store URL (default: $ENACT_STORE_URL or file:.enact)")
    run.add_argument("--answer", action="append", help="answer to the next input request")

    show = sub.add_parser("show", help="summary of a stored invocation (REF) or of a flow")
    show.add_argument("id", help="an invocation ref id (64 hex digits) or a flow id")
    show.add_argument("--store", help="store URL for a ref")
    show.add_argument(
        "--import", dest="imports", action="append", help="FILE.py or MODULE to import first"
    )

    sub.add_parser("worker", help="start a Celery worker (extra options go to celery)")

    submit = sub.add_parser("submit", help="run a registered function as a flow on the workers")
    submit.add_argument("target", help="MODULE:NAME (importable by the workers)")
    submit.add_argument("args", nargs="*")
    submit.add_argument("--wait", type=float, metavar="SECONDS", help="wait for the flow")

    status = sub.add_parser("status", help="a flow's status")
    status.add_argument("flow")

    flows = sub.add_parser("flows", help="recent flows")
    flows.add_argument("--limit", type=int, default=20)

    inputs = sub.add_parser("inputs", help="pending input requests")
    inputs.add_argument("--flow")

    answer = sub.add_parser("answer", help="answer an input request")
    answer.add_argument("request")
    answer.add_argument("value")

    store_help = "store URL (default: $ENACT_STORE_URL or file:.enact)"
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
    unpin.add_argument("name")
    unpin.add_argument("--store", help=store_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "worker":
        return _cmd_worker(parser.parse_args(argv[:1]), argv[1:])
    args = parser.parse_args(argv)
    try:
        args.settings = Settings.from_env()
    except EnactError as exc:
        print(f"enact: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    handlers = {
        "run": _cmd_run,
        "show": _cmd_show,
        "submit": _cmd_submit,
        "status": _cmd_status,
        "flows": _cmd_flows,
        "inputs": _cmd_inputs,
        "answer": _cmd_answer,
        "gc": _cmd_gc,
        "fsck": _cmd_fsck,
        "pin": _cmd_pin,
        "unpin": _cmd_unpin,
    }
    try:
        return handlers[args.command](args)
    except EnactError as exc:
        print(f"enact: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

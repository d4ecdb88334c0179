"""The one owner of flow state in Redis: flows, their leases, input requests, map lists.

Every key, script and status change of a flow goes through ``FlowState``; no
other module writes a status. Each transition is one Lua script
(``enact.worker.flowscripts``), so it is atomic, and every Redis error comes out
as ``StoreUnavailable`` (unreachable, or silent past the socket timeout) or
``StoreError``, within seconds: the client has finite timeouts and does not
retry a read that timed out.

A flow's life::

    queued --start--> running --settle--> done | failed | cancelled
      ^                 |  \\--settle--> waiting --answer--> queued
      |                 |
      +----requeue------+   (its lease lapsed, or its run met an outage)

* **Leases.** The worker running a flow owns it through a token and renews a
  lease (``lease_s``, renewed every third of it, and at every checkpoint). A
  flow whose lease lapsed reads as ``lapsed``; the recovery loop of any worker
  (``enact.worker.recovery``) requeues it, exactly once (the script checks the
  lease again). A second delivery of a flow whose lease is live ends at once.
* **Outbox.** Every transition to ``queued`` also makes the flow's task due in
  ``P:flows:dispatch``. The caller sends the task right after; when a worker
  starts the flow the entry goes. If the send failed, or the message was lost,
  the recovery loop sends it again when it falls due (after ``redispatch_s``,
  doubling for each further attempt), so no flow stays queued without a task.
* **Answers.** An answer is checked and stored with its flow's transition in
  one script: of two racing answers exactly one wins, whole, and the other gets
  ``ConflictError``. The answer's bytes wait in the flow's hash until the run
  that applies them settles.
* **Retention.** A finished flow's hash expires after ``retention_s``; its
  records stay in the object store.
"""

from __future__ import annotations

import base64
import enum
import json
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Literal, Mapping, Sequence

import redis

from enact.config import Settings
from enact.errors import ConflictError, UnknownFlow, UnknownInputRequest
from enact.stores.redis import RedisKeys, make_client, redis_errors, server_seconds
from enact.worker import flowscripts

BATCH = 500


class FlowStatus(str, enum.Enum):
    """A flow's status; compares equal to its value (``status == "done"``)."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"  # reported, never stored: running, but its lease ran out

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({FlowStatus.DONE, FlowStatus.FAILED, FlowStatus.CANCELLED})


@dataclass
class FlowRecord:
    """A flow as its state stands in Redis. Times are unix seconds (server clock)."""

    id: str
    status: FlowStatus
    start: str
    name: str = ""
    head: str | None = None
    output: str | None = None
    error: str | None = None
    requests: list[str] = field(default_factory=list)
    created: float = 0.0
    updated: float = 0.0
    worker: str | None = None
    parent: str | None = None
    cancel_requested: bool = False
    lease_expires: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (status as its string, times as floats)."""
        out = asdict(self)
        out["status"] = self.status.value
        return out


InputStatus = Literal["pending", "claimed", "answered"]


@dataclass
class PendingInput:
    """An input request waiting for (or holding) an answer.

    ``status`` is ``"pending"``, ``"claimed"`` (a client holds a lease until
    ``claim_expires``) or ``"answered"`` (``answer`` is the answer's digest). A
    claim whose lease has run out reads as ``"pending"``. Its id is
    ``"<flow id>:<dotted path>"``. Times are unix seconds on the server's clock.
    """

    id: str
    flow_id: str
    requested_type: str
    for_value: str
    context: str | None
    created: float
    invocation: str
    path: list[int]
    status: InputStatus = "pending"
    answer: str | None = None
    claimed_by: str | None = None
    claim_expires: float | None = None
    answered: float | None = None

    @classmethod
    def from_hash(cls, fields: Mapping[Any, Any], now: float) -> PendingInput:
        f = {_text(k): _text(v) for k, v in fields.items()}
        status: InputStatus = f["status"]  # type: ignore[assignment]
        claimed_by = f.get("claimed_by")
        claim_expires = float(f["claim_expires"]) if "claim_expires" in f else None
        if status == "claimed" and (claim_expires is None or claim_expires <= now):
            status, claimed_by, claim_expires = "pending", None, None
        return cls(
            id=f["id"],
            flow_id=f["flow_id"],
            requested_type=f["requested_type"],
            for_value=f["for_value"],
            context=f.get("context"),
            created=float(f["created"]),
            invocation=f["invocation"],
            path=[int(i) for i in json.loads(f["path"])],
            status=status,
            answer=f.get("answer"),
            claimed_by=claimed_by,
            claim_expires=claim_expires,
            answered=float(f["answered"]) if "answered" in f else None,
        )


@dataclass(frozen=True)
class NewRequest:
    """An input request a run ended on, to register when the flow settles as waiting."""

    id: str
    requested_type: str
    for_value: str
    context: str | None
    invocation: str
    path: tuple[int, ...]


def request_id(flow_id: str, path: Sequence[int]) -> str:
    """The id of the input request at ``path`` of a flow: stable across resumes."""
    return f"{flow_id}:{'.'.join(map(str, path))}"


def new_flow_id() -> str:
    return uuid.uuid4().hex[:20]


class FlowState:
    """Flows, leases, input requests and map work lists of one prefix in Redis.

    ``lease_s``: how long a running flow's lease lasts unless renewed.
    ``redispatch_s``: how long a queued flow's task may take to start before the
    recovery loop sends it again. ``retention_s``: how long a finished flow's
    state stays. Every method raises ``StoreUnavailable`` when Redis cannot be
    reached or does not answer in time.
    """

    def __init__(
        self,
        client: redis.Redis,
        binary: redis.Redis,
        keys: RedisKeys,
        *,
        lease_s: float,
        redispatch_s: float,
        retention_s: float,
    ) -> None:
        # Typed loosely: redis-py's stubs type replies for both decode modes at once.
        self.client: Any = client
        self.binary: Any = binary
        self.keys = keys
        self.lease_s = lease_s
        self.redispatch_s = redispatch_s
        self.retention_s = retention_s
        scripts = {
            name: client.register_script(getattr(flowscripts, name.upper()))
            for name in (
                "create", "start", "renew", "settle", "requeue", "dispatch_due",
                "dispatch_failed", "answer", "cancel", "retry", "prune", "input_add",
                "input_claim", "input_remove",
            )
        }  # fmt: skip
        self._scripts = scripts

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowState:
        """Connect to ``settings.redis_url`` with the settings' timeouts (lazily)."""
        options: dict[str, Any] = {
            "socket_timeout": settings.redis_timeout_s,
            "socket_connect_timeout": settings.redis_connect_timeout_s,
            "retry_timeouts": False,  # a silent server: one timeout, not one per retry
        }
        return cls(
            make_client(settings.redis_url, decode_responses=True, **options),
            make_client(settings.redis_url, decode_responses=False, **options),
            RedisKeys(settings.redis_prefix),
            lease_s=settings.flow_lock_ttl_s,
            redispatch_s=settings.flow_redispatch_s,
            retention_s=settings.flow_retention_s,
        )

    def _errors(self, action: str) -> Any:
        return redis_errors(self.client, action)

    def _run(self, name: str, keys: list[str], args: list[Any], action: str) -> Any:
        with self._errors(action):
            return self._scripts[name](keys=keys, args=args)

    def ping(self) -> None:
        with self._errors("pinging"):
            self.client.ping()

    # -- flows: reading ------------------------------------------------------------

    def get(self, flow_id: str) -> FlowRecord:
        """The flow's record; ``UnknownFlow`` if there is none (or it expired)."""
        with self._errors(f"reading flow {flow_id}"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys.flow(flow_id))
            pipe.time()
            raw, now = pipe.execute()
        if not raw:
            raise UnknownFlow(
                f"no flow with id {flow_id!r} under Redis prefix {self.keys.prefix!r} "
                "(finished flows are forgotten after ENACT_FLOW_RETENTION_S)"
            )
        return _record(flow_id, raw, server_seconds(now))

    def list_flows(
        self,
        status: str | Iterable[str] | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[FlowRecord]:
        """Flows created at or after ``since``, newest first, of the given statuses."""
        wanted = None
        if status is not None:
            names = [status] if isinstance(status, str) else list(status)
            wanted = {FlowStatus(str(s)) for s in names}
        low = "-inf" if since is None else repr(float(since))
        out: list[FlowRecord] = []
        offset = 0
        with self._errors("listing flows"):
            while len(out) < limit:
                ids = self.client.zrevrangebyscore(
                    self.keys.flows(), "+inf", low, start=offset, num=BATCH
                )
                if not ids:
                    break
                offset += len(ids)
                pipe = self.client.pipeline(transaction=False)
                for flow_id in ids:
                    pipe.hgetall(self.keys.flow(flow_id))
                pipe.time()
                *rows, now = pipe.execute()
                for flow_id, raw in zip(ids, rows):
                    if not raw:
                        continue  # expired; pruned by the recovery loop
                    record = _record(flow_id, raw, server_seconds(now))
                    if wanted is None or record.status in wanted:
                        out.append(record)
                        if len(out) >= limit:
                            break
        return out

    def ids(self, limit: int = 100) -> list[str]:
        """Flow ids, newest first."""
        with self._errors("listing flows"):
            return list(self.client.zrevrange(self.keys.flows(), 0, limit - 1))

    def roots(self) -> Iterator[tuple[str, str]]:
        """What flows keep alive, as ``(digest, why)``: each flow's start, head and
        output, and the invocation (and answer) of every input request."""
        with self._errors("listing flows"):
            ids = list(self.client.zrange(self.keys.flows(), 0, -1))
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            with self._errors("reading flows"):
                pipe = self.client.pipeline(transaction=False)
                for flow_id in chunk:
                    pipe.hmget(self.keys.flow(flow_id), "start", "head", "output")
                rows = pipe.execute()
            for flow_id, row in zip(chunk, rows):
                for name, digest in zip(("start", "head", "output"), row):
                    if digest:
                        yield digest, f"flow {flow_id} {name}"
        with self._errors("listing input requests"):
            request_ids = list(self.client.zrange(self.keys.inputs(), 0, -1))
        for start in range(0, len(request_ids), BATCH):
            chunk = request_ids[start : start + BATCH]
            with self._errors("reading input requests"):
                pipe = self.client.pipeline(transaction=False)
                for rid in chunk:
                    pipe.hmget(self.keys.input(rid), "invocation", "answer")
                rows = pipe.execute()
            for rid, (invocation, answer) in zip(chunk, rows):
                if invocation:
                    yield invocation, f"input request {rid}"
                if answer:
                    yield answer, f"answer to input request {rid}"

    def watch(self, flow_id: str) -> FlowWatch:
        """A subscription to the flow's status changes (use it as a context manager)."""
        return FlowWatch(self, flow_id)

    # -- flows: transitions ----------------------------------------------------------

    def create(
        self,
        flow_id: str,
        start: str,
        name: str,
        *,
        head: str | None = None,
        parent: str | None = None,
        retry: bool = False,
    ) -> None:
        """A new queued flow, its task due now (send it next: ``dispatch``)."""
        doc = {
            "start": start, "name": name, "head": head or "", "parent": parent or "",
            "retry": "1" if retry else "",
        }  # fmt: skip
        keys = [self.keys.flow(flow_id), self.keys.flows(), self.keys.flows_dispatch()]
        created = self._run(
            "create",
            keys,
            [flow_id, json.dumps(doc), self.redispatch_s],
            f"creating flow {flow_id}",
        )
        if not created:
            raise ConflictError(f"a flow with id {flow_id!r} exists already")

    def start(self, flow_id: str, worker: str) -> tuple[str, Lease | None]:
        """Take a queued (or lapsed) flow to run it: ``("ok", lease)``, or
        ``(outcome, None)`` with ``busy`` (it runs elsewhere), ``cancel`` (cancel it:
        ``cancel``), ``unknown``, or its status (waiting or final)."""
        token = uuid.uuid4().hex
        keys = [
            self.keys.flow(flow_id), self.keys.flows_running(), self.keys.flows_dispatch(),
            self.keys.flow_events(flow_id),
        ]  # fmt: skip
        outcome, retry = self._run(
            "start", keys, [flow_id, token, worker, self.lease_s], f"starting flow {flow_id}"
        )
        if outcome != "ok":
            return _text(outcome), None
        return "ok", Lease(self, flow_id, token, retry=retry == "1")

    def renew(self, flow_id: str, token: str, head: str | None = None) -> str:
        """Renew the lease (and record ``head``): ``ok``, ``cancel`` or ``lost``."""
        keys = [self.keys.flow(flow_id), self.keys.flows_running()]
        args = [flow_id, token, self.lease_s, head or ""]
        return _text(self._run("renew", keys, args, f"renewing the lease of flow {flow_id}"))

    def settle(
        self,
        flow_id: str,
        token: str,
        status: FlowStatus,
        *,
        head: str | None = None,
        output: str | None = None,
        error: str | None = None,
        requests: Sequence[NewRequest] = (),
        consumed: Sequence[str] = (),
    ) -> str:
        """End the owner's run with ``status`` (waiting, done, failed or cancelled).

        A waiting flow registers ``requests`` (idempotent by id); ``consumed``
        requests (applied by this run, or withdrawn by a cancel) are deleted with
        their answers. Returns the status left (``queued`` if a request was
        answered meanwhile: send its task) or ``lost``.
        """
        doc: dict[str, Any] = {
            "id": flow_id, "token": token, "status": FlowStatus(status).value,
            "retention_s": self.retention_s, "redispatch_s": self.redispatch_s,
            "requests": [
                {
                    "id": r.id, "invocation": r.invocation,
                    "fields": _request_fields(flow_id, r),
                }
                for r in requests
            ],
            "ids": [r.id for r in requests], "consumed": list(consumed),
        }  # fmt: skip
        for name, value in (("head", head), ("output", output), ("error", error)):
            if value is not None:
                doc[name] = value
        if status != FlowStatus.FAILED and error is None:
            doc["error"] = ""
        keys = [
            *self._flow_keys(flow_id),
            *(self.keys.input(r.id) for r in requests),
            *(self.keys.input(rid) for rid in consumed),
        ]
        if not requests:
            doc["requests"] = {}  # cjson: an empty object is an empty table
            doc["ids"] = {}
        if not consumed:
            doc["consumed"] = {}
        return _text(self._run("settle", keys, [json.dumps(doc)], f"settling flow {flow_id}"))

    def requeue(self, flow_id: str, token: str = "") -> str:
        """Put a running flow back in the queue: a lapsed one (``token=""``) or the
        owner's own. Returns ``requeued`` (send its task), ``live``, ``lost``,
        ``cancel`` (cancel asked: ``cancel`` it) or its status."""
        keys = [
            self.keys.flow(flow_id), self.keys.flows_running(), self.keys.flows_dispatch(),
            self.keys.flow_events(flow_id),
        ]  # fmt: skip
        args = [flow_id, token, self.redispatch_s]
        return _text(self._run("requeue", keys, args, f"requeueing flow {flow_id}"))

    def lapsed(self, limit: int = 100) -> list[str]:
        """Running flows whose lease ended (by the server's clock)."""
        with self._errors("listing lapsed flows"):
            now = server_seconds(self.client.time())
            return list(
                self.client.zrangebyscore(
                    self.keys.flows_running(), "-inf", repr(now), start=0, num=limit
                )
            )

    def due(self, limit: int = 100) -> list[str]:
        """Queued flows whose task is due to be sent (again)."""
        with self._errors("listing queued flows"):
            now = server_seconds(self.client.time())
            return list(
                self.client.zrangebyscore(
                    self.keys.flows_dispatch(), "-inf", repr(now), start=0, num=limit
                )
            )

    def claim_dispatch(self, flow_id: str) -> bool:
        """Claim the sending of a due flow's task (one claimer wins; the next is due later)."""
        keys = [self.keys.flow(flow_id), self.keys.flows_dispatch()]
        args = [flow_id, self.redispatch_s]
        return bool(self._run("dispatch_due", keys, args, f"claiming the task of flow {flow_id}"))

    def dispatch_failed(self, flow_id: str, retry_s: float = 5.0) -> None:
        """The send of a flow's task failed: make it due again in ``retry_s``."""
        keys = [self.keys.flow(flow_id), self.keys.flows_dispatch()]
        self._run("dispatch_failed", keys, [flow_id, retry_s], f"rescheduling flow {flow_id}")

    def cancel(self, flow_id: str) -> str:
        """Cancel a flow: ``cancelled`` (done now, requests withdrawn), ``requested``
        (its running owner stops at the next step), ``unknown`` or ``final:<status>``."""
        record = self.get(flow_id)
        for _ in range(5):
            with self._errors(f"reading the requests of flow {flow_id}"):
                open_ids = list(self.client.zrange(self.keys.inputs_flow(flow_id), 0, -1))
            extra = [r for r in record.requests if r not in open_ids]
            doc: dict[str, Any] = {
                "id": flow_id, "ids": open_ids or {}, "extra": extra or {},
                "retention_s": self.retention_s,
            }  # fmt: skip
            keys = [
                *self._flow_keys(flow_id),
                *(self.keys.input(r) for r in [*open_ids, *extra]),
            ]
            outcome = _text(self._run("cancel", keys, [json.dumps(doc)], f"cancelling {flow_id}"))
            if outcome != "retry":
                return outcome
        raise ConflictError(f"flow {flow_id}'s input requests kept changing while cancelling it")

    def retry(self, flow_id: str) -> str:
        """Queue a failed, cancelled or lapsed flow again: ``retried`` or the status it has."""
        keys = [
            self.keys.flow(flow_id), self.keys.flows_running(), self.keys.flows_dispatch(),
            self.keys.flows_final(), self.keys.flow_events(flow_id),
        ]  # fmt: skip
        return _text(
            self._run("retry", keys, [flow_id, self.redispatch_s], f"retrying flow {flow_id}")
        )

    def prune(self, limit: int = 1000) -> int:
        """Forget the ids of flows finished longer ago than the retention."""
        keys = [self.keys.flows(), self.keys.flows_final()]
        return int(self._run("prune", keys, [self.retention_s, limit], "pruning finished flows"))

    def answer_bytes(self, flow_id: str, request_id: str) -> bytes | None:
        """The packed answer kept with the flow until the run applying it settles."""
        with self._errors(f"reading the answer to {request_id}"):
            raw = self.client.hget(self.keys.flow(flow_id), f"answer:{request_id}")
        return None if raw is None else base64.b64decode(raw)

    def _flow_keys(self, flow_id: str) -> list[str]:
        return [
            self.keys.flow(flow_id), self.keys.flows_running(), self.keys.flows_dispatch(),
            self.keys.flows_final(), self.keys.flow_events(flow_id), self.keys.inputs(),
            self.keys.inputs_open(), self.keys.inputs_flow(flow_id),
        ]  # fmt: skip

    # -- input requests ----------------------------------------------------------------

    def answer(
        self, id: str, answer_digest: str, data: bytes | None = None, claimer: str | None = None
    ) -> tuple[PendingInput, bool]:
        """Record the answer to a request and queue its flow, in one step.

        Returns the answered request and whether this answer queued the flow
        (then send its task). ``ConflictError`` if another answer won or another
        client holds a live claim; repeating the same answer succeeds.
        ``UnknownInputRequest`` if there is no such request.
        """
        if not answer_digest:
            raise ValueError("answer_digest must be a non-empty string")
        encoded = "" if data is None else base64.b64encode(data).decode()
        for _ in range(3):
            flow_id = self._flow_of(id)
            keys = [
                self.keys.input(id), self.keys.inputs_open(), self.keys.inputs_flow(flow_id),
                self.keys.flow(flow_id), self.keys.flows_dispatch(), self.keys.flow_events(flow_id),
            ]  # fmt: skip
            args = [id, answer_digest, encoded, claimer or "", flow_id, self.redispatch_s]
            reply = self._run("answer", keys, args, f"answering input request {id}")
            if _text(reply[0]) != "retry":
                queued = _text(reply[2]) == "1"
                request = self._outcome(id, [reply[0], reply[1], *reply[3:]], "answer")
                return request, queued
        raise ConflictError(f"input request {id!r} kept changing flow while being answered")

    def add_input_request(
        self,
        *,
        flow_id: str,
        requested_type: str,
        for_value: str,
        invocation: str,
        path: Sequence[int],
        context: str | None = None,
        id: str | None = None,
        created: float | None = None,
    ) -> PendingInput:
        """Register a pending input request (idempotent on ``id``); returns it as stored."""
        rid = id or request_id(flow_id, path)
        request = NewRequest(rid, requested_type, for_value, context, invocation, tuple(path))
        keys = [
            self.keys.input(rid), self.keys.inputs(), self.keys.inputs_open(),
            self.keys.inputs_flow(flow_id),
        ]  # fmt: skip
        args = [
            rid,
            "" if created is None else repr(float(created)),
            *_request_fields(flow_id, request),
        ]
        reply = self._run("input_add", keys, args, f"adding input request {rid}")
        return PendingInput.from_hash(_pairs(reply[1:]), float(reply[0]))

    def get_input_request(self, id: str) -> PendingInput:
        """The request with this id; ``UnknownInputRequest`` if there is none."""
        with self._errors(f"reading input request {id}"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys.input(id))
            pipe.time()
            fields, now = pipe.execute()
        if not fields:
            raise UnknownInputRequest(f"no input request with id {id!r}")
        return PendingInput.from_hash(fields, server_seconds(now))

    def pending_inputs(
        self, flow_id: str | None = None, *, include_claimed: bool = True
    ) -> list[PendingInput]:
        """Unanswered requests (of one flow, or all), oldest first."""
        index = self.keys.inputs_open() if flow_id is None else self.keys.inputs_flow(flow_id)
        out: list[PendingInput] = []
        with self._errors("listing input requests"):
            ids = list(self.client.zrange(index, 0, -1))
            for start in range(0, len(ids), BATCH):
                pipe = self.client.pipeline(transaction=False)
                for rid in ids[start : start + BATCH]:
                    pipe.hgetall(self.keys.input(rid))
                pipe.time()
                *rows, now = pipe.execute()
                for fields in rows:
                    if not fields:
                        continue  # removed since the listing
                    request = PendingInput.from_hash(fields, server_seconds(now))
                    if request.status == "answered":
                        continue
                    if include_claimed or request.status == "pending":
                        out.append(request)
        return out

    def pending_page(self, offset: int = 0, limit: int = 25) -> tuple[int, list[PendingInput]]:
        """``(number open, the open requests at offset..offset+limit)``, newest first.

        Two round trips whatever the number open, so a page of an inbox with thousands
        of pending requests costs what a page of ten does.
        """
        index = self.keys.inputs_open()
        with self._errors("listing input requests"):
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(index)
            pipe.zrevrange(index, max(offset, 0), max(offset, 0) + max(limit, 1) - 1)
            total, ids = pipe.execute()
            pipe = self.client.pipeline(transaction=False)
            for rid in ids:
                pipe.hgetall(self.keys.input(rid))
            pipe.time()
            *rows, now = pipe.execute()
        clock = server_seconds(now)
        page = [PendingInput.from_hash(fields, clock) for fields in rows if fields]
        return int(total), [request for request in page if request.status != "answered"]

    def flow_names(self, flow_ids: Iterable[str]) -> dict[str, str]:
        """The name of each of these flows (``""`` for one that expired), one round trip."""
        ordered = sorted(set(flow_ids))
        with self._errors("reading flow names"):
            pipe = self.client.pipeline(transaction=False)
            for flow_id in ordered:
                pipe.hget(self.keys.flow(flow_id), "name")
            names = pipe.execute()
        return {flow_id: name or "" for flow_id, name in zip(ordered, names)}

    def claim_input_request(self, id: str, claimer: str, lease_s: float) -> PendingInput:
        """Claim a request for ``lease_s`` seconds so that only ``claimer`` answers it.

        ``ConflictError`` if it is answered or someone else holds a live claim.
        """
        if not claimer:
            raise ValueError("claimer must be a non-empty string")
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s!r}")
        reply = self._run(
            "input_claim", [self.keys.input(id)], [claimer, lease_s], f"claiming input request {id}"
        )
        return self._outcome(id, reply, f"claim by {claimer!r}")

    def remove_input_request(self, id: str) -> bool:
        """Delete a request whatever its status; ``False`` if there was none."""
        try:
            return self._remove(id, cutoff=None)
        except UnknownInputRequest:
            return False

    def expire_input_requests(self, older_than_s: float) -> list[str]:
        """Delete every request created more than ``older_than_s`` seconds ago."""
        with self._errors("expiring input requests"):
            cutoff = server_seconds(self.client.time()) - older_than_s
            ids = list(self.client.zrangebyscore(self.keys.inputs(), "-inf", cutoff))
        removed = []
        for rid in ids:
            try:
                if self._remove(rid, cutoff=cutoff):
                    removed.append(rid)
            except UnknownInputRequest:
                with self._errors("expiring input requests"):
                    self.client.zrem(self.keys.inputs(), rid)
        return removed

    def _remove(self, id: str, cutoff: float | None) -> bool:
        for _ in range(3):
            flow_id = self._flow_of(id)
            keys = [
                self.keys.input(id), self.keys.inputs(), self.keys.inputs_open(),
                self.keys.inputs_flow(flow_id),
            ]  # fmt: skip
            args = [id, flow_id, "" if cutoff is None else repr(cutoff)]
            result = int(self._run("input_remove", keys, args, f"removing input request {id}"))
            if result >= 0:
                return result == 1
        raise ConflictError(f"input request {id!r} kept changing flow while being removed")

    def _flow_of(self, id: str) -> str:
        with self._errors(f"reading input request {id}"):
            flow_id = self.client.hget(self.keys.input(id), "flow_id")
        if flow_id is None:
            raise UnknownInputRequest(f"no input request with id {id!r}")
        return _text(flow_id)

    def _outcome(self, id: str, reply: Sequence[Any], action: str) -> PendingInput:
        outcome, now = _text(reply[0]), float(_text(reply[1]))
        if outcome == "unknown":
            raise UnknownInputRequest(f"no input request with id {id!r}")
        request = PendingInput.from_hash(_pairs(reply[2:]), now)
        if outcome == "answered":
            raise ConflictError(f"input request {id!r} is already answered ({request.answer})")
        if outcome == "claimed":
            left = request.claim_expires - now if request.claim_expires else 0
            raise ConflictError(
                f"input request {id!r} refused {action}: claimed by "
                f"{request.claimed_by!r} for {left:.1f} s more"
            )
        return request

    # -- map work lists -----------------------------------------------------------------

    def map_push(self, map_id: str, items: Sequence[bytes], ttl_s: float) -> None:
        todo = self.keys.map_todo(map_id)
        with self._errors(f"queueing the calls of map {map_id}"):
            pipe = self.binary.pipeline(transaction=False)
            for start in range(0, len(items), 1000):
                pipe.rpush(todo, *items[start : start + 1000])
            pipe.expire(todo, int(ttl_s))
            pipe.execute()

    def map_inflight(self, map_id: str, puller: int) -> list[bytes]:
        """Items puller ``puller`` took and did not report (its redelivery redoes them)."""
        with self._errors(f"reading map {map_id}"):
            return list(self.binary.lrange(self.keys.map_inflight(map_id, puller), 0, -1))

    def map_take(self, map_id: str, puller: int) -> bytes | None:
        """Move the next item into the puller's in-flight list (atomic); ``None`` when empty."""
        with self._errors(f"taking a call of map {map_id}"):
            item = self.binary.lmove(
                self.keys.map_todo(map_id), self.keys.map_inflight(map_id, puller), "LEFT", "RIGHT"
            )
        return item

    def map_report(
        self,
        map_id: str,
        puller: int,
        reports: Sequence[bytes],
        taken: Sequence[bytes],
        ttl_s: float,
    ) -> None:
        """Push results and drop their items from the puller's in-flight list, in one trip."""
        results, inflight = self.keys.map_results(map_id), self.keys.map_inflight(map_id, puller)
        with self._errors(f"reporting results of map {map_id}"):
            pipe = self.binary.pipeline(transaction=False)
            if reports:
                pipe.rpush(results, *reports)
            pipe.expire(results, int(ttl_s))
            for item in taken:
                pipe.lrem(inflight, 1, item)
            pipe.execute()

    def map_results(self, map_id: str, wait_s: float) -> list[bytes]:
        """The results reported so far (waiting up to ``wait_s`` for the first)."""
        key = self.keys.map_results(map_id)
        with self._errors(f"reading results of map {map_id}"):
            first = self.binary.blpop([key], timeout=wait_s)
            if first is None:
                return []
            return [first[1], *(self.binary.lpop(key, 10_000) or [])]

    def map_alive(self, map_id: str, puller: int) -> None:
        """Say that puller ``puller`` runs, for one lease."""
        with self._errors(f"renewing a puller of map {map_id}"):
            self.binary.set(self.keys.map_alive(map_id, puller), b"1", px=int(self.lease_s * 1000))

    def map_stalled(self, map_id: str, pullers: int) -> list[int]:
        """Pullers not alive (dead, or not started) that hold taken items, and, if
        items wait and no puller at all is alive, every puller."""
        with self._errors(f"checking the pullers of map {map_id}"):
            pipe = self.binary.pipeline(transaction=False)
            pipe.llen(self.keys.map_todo(map_id))
            for n in range(pullers):
                pipe.exists(self.keys.map_alive(map_id, n))
                pipe.llen(self.keys.map_inflight(map_id, n))
            todo, *rows = pipe.execute()
        alive = [bool(rows[2 * n]) for n in range(pullers)]
        holding = [n for n in range(pullers) if not alive[n] and rows[2 * n + 1]]
        if todo and not any(alive):
            return list(range(pullers))
        return holding

    def map_drop(self, map_id: str, pullers: int) -> None:
        keys = [self.keys.map_todo(map_id), self.keys.map_results(map_id)]
        keys += [self.keys.map_inflight(map_id, n) for n in range(pullers)]
        keys += [self.keys.map_alive(map_id, n) for n in range(pullers)]
        with self._errors(f"deleting map {map_id}"):
            self.binary.delete(*keys)


class FlowWatch:
    """Status changes of one flow, from a Redis subscription (errors translated)."""

    def __init__(self, state: FlowState, flow_id: str) -> None:
        self.state = state
        self.flow_id = flow_id
        self._pubsub: Any = None

    def __enter__(self) -> FlowWatch:
        with self.state._errors(f"watching flow {self.flow_id}"):
            self._pubsub = self.state.client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(self.state.keys.flow_events(self.flow_id))
        return self

    def next(self, timeout_s: float) -> None:
        """Return at the next published change, or after ``timeout_s``."""
        with self.state._errors(f"watching flow {self.flow_id}"):
            self._pubsub.get_message(timeout=timeout_s)

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._pubsub.close()
        except Exception:
            pass  # closing a dead connection


class Lease:
    """The right to run one flow, renewed by a background thread while it runs.

    ``cancelled`` is set once a cancel was asked; ``lost`` once the flow is no
    longer ours (our lease lapsed and the flow was requeued). ``checkpoint``
    records a new head and renews at once, reporting both.
    """

    def __init__(self, state: FlowState, flow_id: str, token: str, *, retry: bool) -> None:
        self.state = state
        self.flow_id = flow_id
        self.token = token
        self.retry = retry
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep_alive, name=f"enact-lease-{flow_id}", daemon=True
        )
        self._thread.start()

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.state.lease_s / 3):
            try:
                self._note(self.state.renew(self.flow_id, self.token))
            except Exception:
                continue  # Redis briefly away: the next period tries again
            if self.lost.is_set():
                return

    def _note(self, outcome: str) -> str:
        if outcome == "cancel":
            self.cancelled.set()
        elif outcome == "lost":
            self.lost.set()
        return outcome

    def checkpoint(self, head: str | None) -> str:
        """Record ``head`` (if given) and renew: ``ok``, ``cancel`` or ``lost``."""
        return self._note(self.state.renew(self.flow_id, self.token, head))

    def settle(self, status: FlowStatus, **fields: Any) -> str:
        self.stop()
        return self.state.settle(self.flow_id, self.token, status, **fields)

    def requeue(self) -> str:
        self.stop()
        return self.state.requeue(self.flow_id, self.token)

    def stop(self) -> None:
        """Stop renewing (the lease then lapses unless settled or requeued)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def _record(flow_id: str, raw: Mapping[str, str], now: float) -> FlowRecord:
    status = FlowStatus(raw["status"])
    lease = float(raw["lease"]) if raw.get("lease") else None
    if status == FlowStatus.RUNNING and lease is not None and lease <= now:
        status = FlowStatus.LAPSED
    return FlowRecord(
        id=flow_id,
        status=status,
        start=raw["start"],
        name=raw.get("name", ""),
        head=raw.get("head") or None,
        output=raw.get("output") or None,
        error=raw.get("error") or None,
        requests=json.loads(raw.get("requests") or "[]") or [],
        created=float(raw.get("created", 0)),
        updated=float(raw.get("updated", 0)),
        worker=raw.get("worker") or None,
        parent=raw.get("parent") or None,
        cancel_requested=raw.get("cancel") == "1",
        lease_expires=lease,
    )


def _request_fields(flow_id: str, request: NewRequest) -> list[str]:
    fields = [
        "flow_id", flow_id,
        "requested_type", request.requested_type,
        "for_value", request.for_value,
        "invocation", request.invocation,
        "path", json.dumps([int(i) for i in request.path]),
    ]  # fmt: skip
    if request.context is not None:
        fields += ["context", request.context]
    return fields


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}

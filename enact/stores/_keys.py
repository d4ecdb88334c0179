"""Every Redis key enact uses, built in this one module.

All keys live under one prefix (``ENACT_REDIS_PREFIX``, default ``enact``), so
one Redis serves several deployments side by side and a test deletes exactly
its own keys by scanning for ``<prefix>:*``. Nothing else builds a key: the Lua
scripts beside ``redis.py`` receive every key they touch in ``KEYS``.

The schema (``P`` is the prefix)::

    P:obj:<digest>           string  the packed bytes of one object (RedisBackend,
                                     and the object cache in front of S3)
    P:objtime                zset    digest -> server time its object was last
                                     written (RedisBackend; gc deletes only old ones)
    P:quarantine:<digest>    string  bytes found corrupt, moved aside; expire in 7 days
    P:pins                   hash    pin name -> digest it keeps alive (RedisBackend)
    P:gc:lock                string  owner of the running gc or fsck repair; expires
    P:refs                   hash    ref name -> digest it points at
    P:refhist:<name>         list    "<digest> <unix time>" per change of the ref,
                                     newest first, capped (RedisState.history_limit)
    P:input:<id>             hash    one input request: the PendingInput fields
                                     (path as JSON; absent field = None) plus
                                     `answered`, the unix time of the answer
    P:inputs                 zset    every input request id, scored by `created`
    P:inputs:open            zset    ids not answered yet, scored by `created`
    P:inputs:flow:<flow_id>  zset    the open ids of one flow, scored by `created`
    P:flow:<flow_id>         hash    one flow (enact.worker.flowstate): status,
                                     start (digest of its Request), head (its
                                     latest invocation or checkpoint), output,
                                     error, requests (JSON ids), name, parent,
                                     created, updated, worker, owner + lease
                                     (the running worker's token and the server
                                     time its lease ends), cancel, retry,
                                     attempts, and answer:<request id> = base64
                                     of the packed answer until consumed. A
                                     finished flow's hash expires after the
                                     retention (ENACT_FLOW_RETENTION_S)
    P:flow:<flow_id>:events  channel pub/sub: the new status, each time it changes
    P:flows                  zset    every flow id, scored by creation time
    P:flows:running          zset    running flow ids, scored by lease end
    P:flows:dispatch         zset    queued flow ids, scored by the time their
                                     task is due to be sent (again): the outbox
    P:flows:final            zset    finished flow ids, scored by finish time
                                     (pruned from P:flows after the retention)
    P:map:<id>:todo          list    packed [index, CallArgs bytes] of one
                                     enact.worker.map call, not yet taken
    P:map:<id>:inflight:<n>  list    items puller n took and has not reported
    P:map:<id>:alive:<n>     string  set while puller n runs; expires unless renewed,
                                     so the caller re-sends a dead puller's task
    P:map:<id>:results       list    packed [index, node row] per finished item,
                                     or a packed error report of a puller
                                     (the map keys expire after a day)

Times are the Redis server's clock (``TIME``), so clients with skewed clocks
agree on leases. Celery's own broker and result keys are not under this prefix.
"""

from __future__ import annotations

import re

from enact.errors import ConfigError

# The prefix when none is given; ``enact.config`` has the same default for
# ``ENACT_REDIS_PREFIX`` and always passes its value explicitly.
DEFAULT_PREFIX = "enact"

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class RedisKeys:
    """Builds the keys of one prefix; see the module docstring for the schema."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise ConfigError(f"invalid Redis key prefix {prefix!r} (non-empty, no whitespace)")
        self.prefix = prefix

    def object(self, digest: str) -> str:
        return f"{self.prefix}:obj:{digest}"

    def object_times(self) -> str:
        return f"{self.prefix}:objtime"

    def objects_pattern(self) -> str:
        """A ``SCAN MATCH`` pattern for every object key under the prefix."""
        return _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + ":obj:*"

    def quarantine(self, digest: str) -> str:
        return f"{self.prefix}:quarantine:{digest}"

    def pins(self) -> str:
        return f"{self.prefix}:pins"

    def gc_lock(self) -> str:
        return f"{self.prefix}:gc:lock"

    def refs(self) -> str:
        return f"{self.prefix}:refs"

    def ref_history(self, name: str) -> str:
        return f"{self.prefix}:refhist:{name}"

    def input(self, request_id: str) -> str:
        return f"{self.prefix}:input:{request_id}"

    def inputs(self) -> str:
        return f"{self.prefix}:inputs"

    def inputs_open(self) -> str:
        return f"{self.prefix}:inputs:open"

    def inputs_flow(self, flow_id: str) -> str:
        return f"{self.prefix}:inputs:flow:{flow_id}"

    def flow(self, flow_id: str) -> str:
        return f"{self.prefix}:flow:{flow_id}"

    def flow_events(self, flow_id: str) -> str:
        return f"{self.prefix}:flow:{flow_id}:events"

    def flows(self) -> str:
        return f"{self.prefix}:flows"

    def flows_running(self) -> str:
        return f"{self.prefix}:flows:running"

    def flows_dispatch(self) -> str:
        return f"{self.prefix}:flows:dispatch"

    def flows_final(self) -> str:
        return f"{self.prefix}:flows:final"

    def map_todo(self, map_id: str) -> str:
        return f"{self.prefix}:map:{map_id}:todo"

    def map_inflight(self, map_id: str, puller: int) -> str:
        return f"{self.prefix}:map:{map_id}:inflight:{puller}"

    def map_alive(self, map_id: str, puller: int) -> str:
        return f"{self.prefix}:map:{map_id}:alive:{puller}"

    def map_results(self, map_id: str) -> str:
        return f"{self.prefix}:map:{map_id}:results"

    def match_all(self) -> str:
        """A ``SCAN MATCH`` pattern for every key under the prefix (glob characters escaped)."""
        return _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + ":*"

    def __repr__(self) -> str:
        return f"RedisKeys({self.prefix!r})"

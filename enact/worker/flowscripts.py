"""The Lua scripts behind ``enact.worker.flowstate``: one per transition.

Each script is atomic (Redis runs it alone), takes every key it touches in
``KEYS`` (the schema is in ``enact.stores._keys``) and reads the time from the
server (``TIME``), so clients with skewed clocks agree on leases and due times.
Arguments with structure come as one JSON document (``cjson``).

Flow statuses stored here: queued, running, waiting, done, failed, cancelled.
"Lapsed" is never stored: it is a running flow whose ``lease`` is in the past.
"""

from __future__ import annotations

# Shared by every script: the server's clock, in seconds, as a number and a string.
_NOW = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function stamp(t)
  return string.format('%.6f', t)
end
local function final(status)
  return status == 'done' or status == 'failed' or status == 'cancelled'
end
"""

# KEYS: flow, flows, dispatch
# ARGV: id, JSON {start, name, head, parent, retry}, redispatch_s
# Returns 1 if created, 0 if the id exists.
CREATE = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local f = cjson.decode(ARGV[2])
local t = now()
redis.call('HSET', KEYS[1], 'status', 'queued', 'start', f.start, 'name', f.name,
           'created', stamp(t), 'updated', stamp(t), 'attempts', 0)
if f.head ~= '' then redis.call('HSET', KEYS[1], 'head', f.head) end
if f.parent ~= '' then redis.call('HSET', KEYS[1], 'parent', f.parent) end
if f.retry ~= '' then redis.call('HSET', KEYS[1], 'retry', f.retry) end
redis.call('ZADD', KEYS[2], stamp(t), ARGV[1])
redis.call('ZADD', KEYS[3], stamp(t + tonumber(ARGV[3])), ARGV[1])
return 1
"""
)

# Take a queued (or lapsed) flow to run it.
# KEYS: flow, running, dispatch, events
# ARGV: id, token, worker, lease_s
# Returns {outcome, retry}: outcome "ok" (the caller owns the flow now), "busy"
# (running elsewhere under a live lease), "cancel" (cancelled while lapsed),
# "unknown", or the flow's status (waiting or final: nothing to run).
START = (
    _NOW
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'unknown', ''}
end
local t = now()
if status == 'running' then
  if tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') > t then
    return {'busy', ''}
  end
elseif status ~= 'queued' then
  return {status, ''}
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  return {'cancel', ''}
end
local lease = t + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[2], 'lease', stamp(lease),
           'worker', ARGV[3], 'updated', stamp(t))
redis.call('ZADD', KEYS[2], stamp(lease), ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PUBLISH', KEYS[4], 'running')
return {'ok', redis.call('HGET', KEYS[1], 'retry') or ''}
"""
)

# Renew the owner's lease, and record a new head if one is given (a checkpoint).
# KEYS: flow, running
# ARGV: id, token, lease_s, head ("" for none)
# Returns "ok", "cancel" (a cancel was asked: stop at this step) or "lost"
# (the flow is no longer this owner's: stop without writing anything).
RENEW = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2]
   or redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  return 'lost'
end
local t = now()
local lease = t + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'lease', stamp(lease))
redis.call('ZADD', KEYS[2], stamp(lease), ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'head', ARGV[4], 'updated', stamp(t))
  redis.call('HDEL', KEYS[1], 'retry')
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  return 'cancel'
end
return 'ok'
"""
)

# The end of a run: waiting (with its requests), done, failed, cancelled.
# KEYS: flow, running, dispatch, final, events, inputs, inputs_open, inputs_flow,
#       then P:input:<id> of each new request, then of each consumed one
# ARGV: JSON {id, token, status, head, output, error, retention_s, redispatch_s,
#       requests: [{id, fields: [name, value, ...]}], ids: [...], consumed: [...]}
# Returns the status the flow is left in ("queued" if a new request was answered
# already: send its task), or "lost" if the caller no longer owns it.
SETTLE = (
    _NOW
    + """
local a = cjson.decode(ARGV[1])
if redis.call('HGET', KEYS[1], 'owner') ~= a.token
   or redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  return 'lost'
end
local t = now()
local nreq = #a.requests
for i, rid in ipairs(a.consumed) do
  redis.call('DEL', KEYS[8 + nreq + i])
  redis.call('ZREM', KEYS[6], rid)
  redis.call('ZREM', KEYS[7], rid)
  redis.call('ZREM', KEYS[8], rid)
  redis.call('HDEL', KEYS[1], 'answer:' .. rid)
end
local status = a.status
if (status == 'waiting' or status == 'queued') and redis.call('HGET', KEYS[1], 'cancel') == '1' then
  -- cancelled while it ran, and it stopped to ask for input before its next step:
  -- it ends cancelled, and its new requests are never registered
  status = 'cancelled'
  a.error = 'cancelled'
end
if status == 'waiting' then
  for i, r in ipairs(a.requests) do
    local key = KEYS[8 + i]
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'id', r.id, 'created', stamp(t), 'status', 'pending',
                 unpack(r.fields))
      redis.call('ZADD', KEYS[6], stamp(t), r.id)
      redis.call('ZADD', KEYS[7], stamp(t), r.id)
      redis.call('ZADD', KEYS[8], stamp(t), r.id)
    elseif redis.call('HGET', key, 'status') == 'answered' then
      status = 'queued'  -- answered while the flow ran: resume at once
    else
      redis.call('HSET', key, 'invocation', r.invocation)
    end
  end
  redis.call('HSET', KEYS[1], 'requests', cjson.encode(a.ids))
end
redis.call('HSET', KEYS[1], 'status', status, 'updated', stamp(t))
for _, name in ipairs({'head', 'output', 'error'}) do
  if a[name] ~= nil and a[name] ~= '' then
    redis.call('HSET', KEYS[1], name, a[name])
  elseif a[name] == '' then
    redis.call('HDEL', KEYS[1], name)
  end
end
redis.call('HDEL', KEYS[1], 'owner', 'lease', 'cancel', 'retry')
redis.call('ZREM', KEYS[2], a.id)
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'attempts', 0)
  redis.call('ZADD', KEYS[3], stamp(t + a.redispatch_s), a.id)
elseif final(status) then
  redis.call('ZADD', KEYS[4], stamp(t), a.id)
  redis.call('EXPIRE', KEYS[1], math.max(1, math.floor(a.retention_s)))
end
redis.call('PUBLISH', KEYS[5], status)
return status
"""
)

# Put a running flow back in the queue: one whose lease lapsed (token ""), or
# the owner's own (a run stopped by an outage).
# KEYS: flow, running, dispatch, events
# ARGV: id, token, redispatch_s
# Returns "requeued" (send its task), "live" (the lease is still held), "lost"
# (another owner), "cancel" (cancel asked: finish it as cancelled), or the status
# it has (not running: nothing done).
REQUEUE = (
    _NOW
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return status or 'unknown'
end
local t = now()
if ARGV[2] == '' then
  if tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') > t then
    return 'live'
  end
elseif redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then
  return 'lost'
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  return 'cancel'
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated', stamp(t), 'attempts', 0)
redis.call('HDEL', KEYS[1], 'owner', 'lease')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], stamp(t + tonumber(ARGV[3])), ARGV[1])
redis.call('PUBLISH', KEYS[4], 'queued')
return 'requeued'
"""
)

# Claim the right to send a queued flow's task again (its earlier send failed,
# or nothing took it): the next attempt is due later, doubling each time.
# KEYS: flow, dispatch
# ARGV: id, redispatch_s
# Returns 1 if the caller should send the task, 0 otherwise.
DISPATCH_DUE = (
    _NOW
    + """
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due then
  return 0
end
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local t = now()
if tonumber(due) > t then
  return 0
end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local delay = tonumber(ARGV[2]) * math.pow(2, math.min(n - 1, 6))
redis.call('ZADD', KEYS[2], stamp(t + delay), ARGV[1])
return 1
"""
)

# A send failed: make the flow's task due again in a few seconds.
# KEYS: flow, dispatch
# ARGV: id, retry_s
DISPATCH_FAILED = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('ZADD', KEYS[2], stamp(now() + tonumber(ARGV[2])), ARGV[1])
  return 1
end
return 0
"""
)

# Answer an input request and queue its flow, in one step. Only a pending
# request, one whose claim lapsed, or one claimed by this claimer can be
# answered; the same answer again succeeds (a retry after a lost reply).
# KEYS: input, inputs_open, inputs_flow, flow, dispatch, events
# ARGV: id, answer digest, answer bytes (base64, "" to keep none), claimer or "",
#       flow id KEYS[3] was built from, redispatch_s
# Returns {outcome, now, queued, field, value, ...}: outcome "ok", "unknown",
# "retry" (KEYS[3] names the wrong flow), "answered" (another answer won) or
# "claimed"; queued is "1" if this answer queued the flow (send its task).
ANSWER = (
    _NOW
    + """
local t = now()
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unknown', stamp(t), ''}
end
if redis.call('HGET', KEYS[1], 'flow_id') ~= ARGV[5] then
  return {'retry', stamp(t), ''}
end
local status = redis.call('HGET', KEYS[1], 'status')
local holder = redis.call('HGET', KEYS[1], 'claimed_by')
local outcome = 'ok'
local queued = ''
if status == 'answered' then
  local same = redis.call('HGET', KEYS[1], 'answer') == ARGV[2]
  if not (same and (ARGV[4] == '' or holder == false or holder == ARGV[4])) then
    outcome = 'answered'
  end
else
  if status == 'claimed' then
    local expires = tonumber(redis.call('HGET', KEYS[1], 'claim_expires') or '0')
    if holder ~= ARGV[4] and expires > t then
      outcome = 'claimed'
    end
  end
  if outcome == 'ok' then
    redis.call('HSET', KEYS[1], 'status', 'answered', 'answer', ARGV[2], 'answered', stamp(t))
    redis.call('HDEL', KEYS[1], 'claim_expires')
    if ARGV[4] ~= '' then
      redis.call('HSET', KEYS[1], 'claimed_by', ARGV[4])
    end
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[3], ARGV[1])
    if redis.call('EXISTS', KEYS[4]) == 1 then
      if ARGV[3] ~= '' then
        redis.call('HSET', KEYS[4], 'answer:' .. ARGV[1], ARGV[3])
      end
      if redis.call('HGET', KEYS[4], 'status') == 'waiting' then
        redis.call('HSET', KEYS[4], 'status', 'queued', 'updated', stamp(t), 'attempts', 0)
        redis.call('ZADD', KEYS[5], stamp(t + tonumber(ARGV[6])), ARGV[5])
        redis.call('PUBLISH', KEYS[6], 'queued')
        queued = '1'
      end
    end
  end
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, queued)
table.insert(out, 1, stamp(t))
table.insert(out, 1, outcome)
return out
"""
)

# Cancel a flow: at once if nothing runs it (its requests withdrawn), else mark
# it so that its owner stops at the next step.
# KEYS: flow, running, dispatch, final, events, inputs, inputs_open, inputs_flow,
#       then P:input:<id> of each id in ARGV's ids, then of each in extra
# ARGV: JSON {id, ids (the open ids read before), extra (other request ids), retention_s}
# Returns "cancelled", "requested" (the owner will stop), "retry" (the open
# requests changed meanwhile: read them again), "unknown" or "final:<status>".
CANCEL = (
    _NOW
    + """
local a = cjson.decode(ARGV[1])
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return 'unknown'
end
if final(status) then
  return 'final:' .. status
end
local open = redis.call('ZRANGE', KEYS[8], 0, -1)
if #open ~= #a.ids then
  return 'retry'
end
local seen = {}
for _, rid in ipairs(a.ids) do seen[rid] = true end
for _, rid in ipairs(open) do
  if not seen[rid] then return 'retry' end
end
local t = now()
if status == 'running' and tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') > t then
  redis.call('HSET', KEYS[1], 'cancel', '1', 'updated', stamp(t))
  return 'requested'
end
local all = {}
for _, rid in ipairs(a.ids) do table.insert(all, rid) end
for _, rid in ipairs(a.extra) do table.insert(all, rid) end
for i, rid in ipairs(all) do
  redis.call('DEL', KEYS[8 + i])
  redis.call('ZREM', KEYS[6], rid)
  redis.call('ZREM', KEYS[7], rid)
  redis.call('ZREM', KEYS[8], rid)
end
local fields = redis.call('HKEYS', KEYS[1])
for _, name in ipairs(fields) do
  if string.sub(name, 1, 7) == 'answer:' then redis.call('HDEL', KEYS[1], name) end
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'error', 'cancelled', 'updated', stamp(t))
redis.call('HDEL', KEYS[1], 'owner', 'lease', 'cancel', 'retry')
redis.call('ZREM', KEYS[2], a.id)
redis.call('ZREM', KEYS[3], a.id)
redis.call('ZADD', KEYS[4], stamp(t), a.id)
redis.call('EXPIRE', KEYS[1], math.max(1, math.floor(a.retention_s)))
redis.call('PUBLISH', KEYS[5], 'cancelled')
return 'cancelled'
"""
)

# Queue a failed, cancelled or lapsed flow again, to continue from its head.
# KEYS: flow, running, dispatch, final, events
# ARGV: id, redispatch_s
# Returns "retried" (queued now: send its task), "unknown", or the status it has.
RETRY = (
    _NOW
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return 'unknown'
end
local t = now()
if status == 'running' then
  if tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') > t then
    return 'running'
  end
elseif status ~= 'failed' and status ~= 'cancelled' then
  return status
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated', stamp(t), 'attempts', 0)
if status == 'failed' then
  redis.call('HSET', KEYS[1], 'retry', '1')  -- what raised runs again
end
redis.call('HDEL', KEYS[1], 'error', 'owner', 'lease', 'cancel', 'output')
redis.call('PERSIST', KEYS[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], stamp(t + tonumber(ARGV[2])), ARGV[1])
redis.call('PUBLISH', KEYS[5], 'queued')
return 'retried'
"""
)

# Forget flows finished longer ago than the retention (their hashes expired).
# KEYS: flows, final
# ARGV: retention_s, limit
PRUNE = (
    _NOW
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', stamp(now() - tonumber(ARGV[1])),
                       'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return #ids
"""
)

# Register an input request unless one with the same id exists (idempotent).
# KEYS: input, inputs, inputs_open, inputs_flow
# ARGV: id, created ("" for the server's clock), field, value, ...
# Returns {now, field, value, ...}: the stored request, new or existing.
INPUT_ADD = (
    _NOW
    + """
local t = stamp(now())
if redis.call('EXISTS', KEYS[1]) == 0 then
  local created = ARGV[2]
  if created == '' then created = t end
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created', created, 'status', 'pending',
             unpack(ARGV, 3))
  redis.call('ZADD', KEYS[2], created, ARGV[1])
  redis.call('ZADD', KEYS[3], created, ARGV[1])
  redis.call('ZADD', KEYS[4], created, ARGV[1])
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, t)
return out
"""
)

# Claim an input request for a while (a lease), so one client answers it. A
# lapsed claim can be taken again; the holder may claim again to extend it.
# KEYS: input
# ARGV: claimer, lease_s
# Returns {outcome, now, field, value, ...}: "ok", "unknown", "answered", "claimed".
INPUT_CLAIM = (
    _NOW
    + """
local t = now()
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unknown', stamp(t)}
end
local status = redis.call('HGET', KEYS[1], 'status')
local outcome = 'ok'
if status == 'answered' then
  outcome = 'answered'
elseif status == 'claimed' then
  local holder = redis.call('HGET', KEYS[1], 'claimed_by')
  local expires = tonumber(redis.call('HGET', KEYS[1], 'claim_expires') or '0')
  if holder ~= ARGV[1] and expires > t then
    outcome = 'claimed'
  end
end
if outcome == 'ok' then
  redis.call('HSET', KEYS[1], 'status', 'claimed', 'claimed_by', ARGV[1],
             'claim_expires', stamp(t + tonumber(ARGV[2])))
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, stamp(t))
table.insert(out, 1, outcome)
return out
"""
)

# Remove an input request and its index entries.
# KEYS: input, inputs, inputs_open, inputs_flow
# ARGV: id, flow id KEYS[4] was built from, only if created at or before this
#       unix time ("" for any)
# Returns 1 removed, 0 nothing (old enough) to remove, -1 wrong flow (retry).
INPUT_REMOVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
if redis.call('HGET', KEYS[1], 'flow_id') ~= ARGV[2] then
  return -1
end
if ARGV[3] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'created')) > tonumber(ARGV[3]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
"""

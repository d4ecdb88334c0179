-- Answer an input request: only a pending one, one whose lease ran out, or one
-- claimed by this claimer. Answering again with the same answer is a no-op that
-- succeeds, so a client may retry after losing the reply.
--
-- KEYS[1]  P:input:<id>
-- KEYS[2]  P:inputs:open
-- KEYS[3]  P:inputs:flow:<flow_id>
-- ARGV[1]  id
-- ARGV[2]  answer digest
-- ARGV[3]  claimer, or "" for none
-- ARGV[4]  the flow id KEYS[3] was built from
--
-- Returns {outcome, now, field, value, ...} with outcome "ok", "unknown",
-- "retry" (KEYS[3] names the wrong flow), "answered" (with another answer) or
-- "claimed" (someone else holds a live lease).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%d.%06d', tonumber(t[1]), tonumber(t[2]))
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unknown', stamp}
end
if redis.call('HGET', KEYS[1], 'flow_id') ~= ARGV[4] then
  return {'retry', stamp}
end
local status = redis.call('HGET', KEYS[1], 'status')
local holder = redis.call('HGET', KEYS[1], 'claimed_by')
local outcome = 'ok'
if status == 'answered' then
  local same = redis.call('HGET', KEYS[1], 'answer') == ARGV[2]
  if not (same and (ARGV[3] == '' or holder == false or holder == ARGV[3])) then
    outcome = 'answered'
  end
else
  if status == 'claimed' then
    local expires = tonumber(redis.call('HGET', KEYS[1], 'claim_expires') or '0')
    if holder ~= ARGV[3] and expires > now then
      outcome = 'claimed'
    end
  end
  if outcome == 'ok' then
    redis.call('HSET', KEYS[1], 'status', 'answered', 'answer', ARGV[2], 'answered', stamp)
    redis.call('HDEL', KEYS[1], 'claim_expires')
    if ARGV[3] ~= '' then
      redis.call('HSET', KEYS[1], 'claimed_by', ARGV[3])
    end
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[3], ARGV[1])
  end
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, stamp)
table.insert(out, 1, outcome)
return out

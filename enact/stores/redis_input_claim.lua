-- Claim an input request for a while (a lease), so one client answers it.
-- A request whose lease has run out can be claimed again: a client that
-- crashes between claim and answer delays the answer but loses nothing.
-- The current holder may claim again to extend its lease.
--
-- KEYS[1]  P:input:<id>
-- ARGV[1]  claimer
-- ARGV[2]  lease in seconds
--
-- Returns {outcome, now, field, value, ...} with outcome "ok", "unknown",
-- "answered" (too late) or "claimed" (someone else holds a live lease).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%d.%06d', tonumber(t[1]), tonumber(t[2]))
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unknown', stamp}
end
local status = redis.call('HGET', KEYS[1], 'status')
local outcome = 'ok'
if status == 'answered' then
  outcome = 'answered'
elseif status == 'claimed' then
  local holder = redis.call('HGET', KEYS[1], 'claimed_by')
  local expires = tonumber(redis.call('HGET', KEYS[1], 'claim_expires') or '0')
  if holder ~= ARGV[1] and expires > now then
    outcome = 'claimed'
  end
end
if outcome == 'ok' then
  redis.call('HSET', KEYS[1], 'status', 'claimed', 'claimed_by', ARGV[1],
             'claim_expires', string.format('%.6f', now + tonumber(ARGV[2])))
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, stamp)
table.insert(out, 1, outcome)
return out

-- Register an input request unless one with the same id exists (idempotent).
--
-- KEYS[1]  P:input:<id>             hash of the request
-- KEYS[2]  P:inputs                 zset of every id by created
-- KEYS[3]  P:inputs:open            zset of unanswered ids by created
-- KEYS[4]  P:inputs:flow:<flow_id>  zset of the flow's unanswered ids
-- ARGV[1]  id
-- ARGV[2]  created (unix time), or "" for the server's clock
-- ARGV[3..] field, value, field, value ... (the other fields)
--
-- Returns {now, field, value, ...}: the stored request, new or existing.
local t = redis.call('TIME')
local now = string.format('%d.%06d', tonumber(t[1]), tonumber(t[2]))
if redis.call('EXISTS', KEYS[1]) == 0 then
  local created = ARGV[2]
  if created == '' then
    created = now
  end
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created', created, 'status', 'pending',
             unpack(ARGV, 3))
  local score = tonumber(created)
  redis.call('ZADD', KEYS[2], score, ARGV[1])
  redis.call('ZADD', KEYS[3], score, ARGV[1])
  redis.call('ZADD', KEYS[4], score, ARGV[1])
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, now)
return out

-- Remove an input request and its index entries.
--
-- KEYS[1]  P:input:<id>
-- KEYS[2]  P:inputs
-- KEYS[3]  P:inputs:open
-- KEYS[4]  P:inputs:flow:<flow_id>
-- ARGV[1]  id
-- ARGV[2]  the flow id KEYS[4] was built from
-- ARGV[3]  only if created at or before this unix time ("" for any time)
--
-- Returns 1 if removed, 0 if there was nothing (or nothing old enough) to
-- remove, -1 if KEYS[4] names the wrong flow (read the flow id and retry).
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

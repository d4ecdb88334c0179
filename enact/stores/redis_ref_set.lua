-- Point a ref at a digest, optionally only if it holds an expected value, and
-- append the change to the ref's history in the same atomic step.
--
-- KEYS[1]  P:refs            hash: name -> digest
-- KEYS[2]  P:refhist:<name>  list: "<digest> <unix time>", newest first
-- ARGV[1]  name
-- ARGV[2]  new digest
-- ARGV[3]  mode: "any" (set), "absent" (only if unset), "equals" (only if ARGV[4])
-- ARGV[4]  expected digest (mode "equals")
-- ARGV[5]  history cap (0: unbounded)
--
-- Returns 1 if the ref now holds the new digest, 0 if the expectation failed.
-- Setting a ref to the digest it already holds succeeds and records nothing.
local current = redis.call('HGET', KEYS[1], ARGV[1])
local mode = ARGV[3]
if mode == 'absent' and current then
  return 0
end
if mode == 'equals' and current ~= ARGV[4] then
  return 0
end
if current == ARGV[2] then
  return 1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local t = redis.call('TIME')
redis.call('LPUSH', KEYS[2], ARGV[2] .. ' ' .. t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
local cap = tonumber(ARGV[5])
if cap > 0 then
  redis.call('LTRIM', KEYS[2], 0, cap - 1)
end
return 1

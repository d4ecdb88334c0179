-- Store objects, trusting an existing copy only if written within the reuse horizon.
--
-- KEYS[1]      P:objtime (zset: digest -> server time the object was last written)
-- KEYS[2..n+1] P:obj:<digest> of each object
-- ARGV[1]      the reuse horizon in seconds
-- ARGV[2k], ARGV[2k+1]  digest and bytes of object k (k = 1..n, in KEYS order)
--
-- An object missing, or last written longer ago than the horizon, is written and
-- its time set to now; a fresh one is left alone. One script, so a gc sweep
-- (redis_obj_delete.lua) sees either the old time or the new one, never between.
-- Returns the number of objects written.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local trusted = now - tonumber(ARGV[1])
local written = 0
for i = 2, #KEYS do
  local digest = ARGV[2 * (i - 1)]
  local score = redis.call('ZSCORE', KEYS[1], digest)
  if (not score) or tonumber(score) < trusted or redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('SET', KEYS[i], ARGV[2 * (i - 1) + 1])
    redis.call('ZADD', KEYS[1], now, digest)
    written = written + 1
  end
end
return written

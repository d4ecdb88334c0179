-- gc: delete objects still last written before the cutoff.
--
-- KEYS[1]      P:objtime
-- KEYS[2..n+1] P:obj:<digest> of each condemned object
-- ARGV[1]      the cutoff (server unix time, seconds)
-- ARGV[2..n+1] the digests, in KEYS order
--
-- An object written again since gc planned its deletion has a newer time and is
-- kept: a writer racing the sweep loses nothing. A time left without its object
-- is removed. Returns {objects deleted, bytes reclaimed, objects kept as fresh}.
local cutoff = tonumber(ARGV[1])
local deleted, bytes, fresh = 0, 0, 0
for i = 2, #KEYS do
  local digest = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], digest)
  if score and tonumber(score) < cutoff then
    local size = redis.call('STRLEN', KEYS[i])
    if redis.call('DEL', KEYS[i]) == 1 then
      deleted = deleted + 1
      bytes = bytes + size
    end
    redis.call('ZREM', KEYS[1], digest)
  else
    fresh = fresh + 1
  end
end
return {deleted, bytes, fresh}

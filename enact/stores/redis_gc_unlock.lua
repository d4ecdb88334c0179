-- Release the maintenance lock if the caller holds it.
-- KEYS[1] P:gc:lock; ARGV[1] owner. Returns 1 if released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

-- Take or renew the maintenance lock (one gc or fsck repair at a time).
--
-- KEYS[1] P:gc:lock; ARGV[1] owner, ARGV[2] lifetime in ms
-- Returns "" when the caller holds the lock, else the current holder.
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return holder

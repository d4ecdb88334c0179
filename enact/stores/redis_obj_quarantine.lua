-- Move a damaged object aside, so that its digest reads as missing and the next
-- put writes a good copy.
--
-- KEYS[1] P:objtime, KEYS[2] P:obj:<digest>, KEYS[3] P:quarantine:<digest>
-- ARGV[1] the digest, ARGV[2] SHA-1 of the damaged bytes, ARGV[3] expiry in ms
--
-- Only bytes still equal to the damaged ones move: a copy a writer repaired
-- since they were read stays. Returns 1 if moved, 0 if not.
local value = redis.call('GET', KEYS[2])
if not value then
  return 0
end
if redis.sha1hex(value) ~= ARGV[2] then
  return 0
end
redis.call('RENAME', KEYS[2], KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1

-- reencrypt(account): store a field re-encrypted under the current key, but
-- only if it still holds the ciphertext that was read (a concurrent save or
-- rotation wins).
-- KEYS[1] account hash   ARGV[1] field   ARGV[2] ciphertext read   ARGV[3] new ciphertext
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0

-- rotate_webhook_key(account): a new webhook key, for an existing account only
-- (an HSET alone would create a hash for an account that does not exist).
-- KEYS[1] account hash   ARGV[1] the new key's ciphertext
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'webhook_key_enc', ARGV[1])
  return 1
end
return 0

-- encrypt_token(account): replace a plain-text api_token (a record written
-- before encryption at rest) by its ciphertext, unless a concurrent save
-- already stored an encrypted one or changed the token meanwhile.
-- KEYS[1] account hash   ARGV[1] the plain token that was read   ARGV[2] its ciphertext
if redis.call('HGET', KEYS[1], 'api_token') == ARGV[1]
   and redis.call('HEXISTS', KEYS[1], 'api_token_enc') == 0 then
  redis.call('HSET', KEYS[1], 'api_token_enc', ARGV[2])
  redis.call('HDEL', KEYS[1], 'api_token')
  return 1
end
return 0

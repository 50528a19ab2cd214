-- back_off(account): Exotel said 429; admit nothing until ARGV[1]. Only ever
-- moves paused_until later: two workers reading and writing it in turn could
-- otherwise let the shorter Retry-After overwrite the longer one.
-- KEYS[1] account hash   ARGV[1] until (epoch s)
local cur = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0') or 0
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'paused_until', ARGV[1])
  return 1
end
return 0

-- stream_end(call): an attempt's media stream ended (stop frame or socket
-- closed). If that attempt still holds its slot, remember when its stream
-- ended and pull the slot's lease in to the grace deadline, so that if no
-- terminal callback releases the slot by then, reconciliation asks Exotel's
-- call details for this one call. Only ever lowers a lease; an event of an
-- older attempt (the call was retried meanwhile) changes nothing.
--
-- KEYS[1] call hash   KEYS[2] account's active zset
-- ARGV[1] call id   ARGV[2] attempt   ARGV[3] now (epoch s)   ARGV[4] deadline
-- Returns 1 when the lease was pulled in (or already earlier), 0 otherwise.
local st = redis.call('HMGET', KEYS[1], 'state', 'attempt')
if st[2] ~= ARGV[2] then return 0 end
local s = st[1]
if s ~= 'placed' and s ~= 'ringing' and s ~= 'answered' and s ~= 'dialing' and s ~= 'unknown' then
  return 0
end
local held = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not held then return 0 end
redis.call('HSET', KEYS[1], 'stream_end', ARGV[2] .. ':' .. ARGV[3])
-- dialing/unknown keep their lease: a dial may only be judged once its request
-- can no longer be in flight (DIALER_RECONCILE_AFTER_S); PLACED applies the end.
if s ~= 'dialing' and s ~= 'unknown' and tonumber(held) > tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[1])
end
return 1

-- stream_claim(call): a stream token opens one stream, only while its attempt
-- is the call's current one and live. Check and mark in one step, so two
-- sockets racing with the same token cannot both get in.
-- KEYS[1] call hash   KEYS[2] the attempt's claim key
-- ARGV[1] attempt   ARGV[2] token expiry (epoch s)   ARGV[3..] live states
-- Returns 'ok', or why not: 'attempt' (not current), 'state' (not live), 'used'.
local h = redis.call('HMGET', KEYS[1], 'state', 'attempt')
if h[2] ~= ARGV[1] then return 'attempt' end
local live = false
for i = 3, #ARGV do
  if h[1] == ARGV[i] then live = true end
end
if not live then return 'state' end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EXAT', ARGV[2]) then return 'used' end
return 'ok'

-- claim(account, call): reconciliation takes one expired slot to ask Exotel
-- about, and one request from the account's per-minute API budget for it.
--
-- Claiming pushes the slot's lease out (ARGV[5]) in the same step, so two
-- overlapping passes (two workers, a slow Exotel) never both ask about one
-- call: the second finds the lease in the future and leaves it.
--
-- Budget: dials are admitted only while the window holds fewer than
-- calls_per_minute - reserve entries (admit.lua), so the reserve is always
-- there for reconciliation; beyond it reconciliation may borrow unused
-- budget, but never more than half of it, so a backlog of checks (say after
-- a restart) cannot starve dials. A paused (429) or stopped (circuit open)
-- account gets no request at all. No budget: the lease moves to ARGV[6].
--
-- KEYS[1] account hash   KEYS[2] rate zset (every request)   KEYS[3] rate zset
-- of reconciliation requests   KEYS[4] active zset
-- ARGV[1] now   ARGV[2] rate member   ARGV[3] reserve in per cent   ARGV[4] call
-- id   ARGV[5] lease while the request runs   ARGV[6] lease when no budget
-- Returns 1 (claimed: ask Exotel), 0 (no budget now), -1 (not due / not held).
local now = tonumber(ARGV[1])
local held = redis.call('ZSCORE', KEYS[4], ARGV[4])
if not held or tonumber(held) > now then return -1 end
local a = redis.call('HMGET', KEYS[1], 'calls_per_minute', 'paused_until', 'circuit')
local ok = a[3] ~= CIRCUIT_OPEN and tonumber(a[2] or '0') <= now
if ok then
  local cpm = tonumber(a[1] or '200') or 200
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60)
  local reserve = math.floor(cpm * tonumber(ARGV[3]) / 100)
  local share = math.max(reserve, math.floor(cpm / 2), 1)
  ok = redis.call('ZCARD', KEYS[2]) < cpm and redis.call('ZCARD', KEYS[3]) < share
end
if not ok then
  redis.call('ZADD', KEYS[4], 'XX', ARGV[6], ARGV[4])
  return 0
end
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('ZADD', KEYS[4], 'XX', ARGV[5], ARGV[4])
return 1

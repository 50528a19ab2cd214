-- admission(account): the one place a call enters the active set (issue #16).
-- A library, not a script: prepended by dialer.store.scripts to admit.lua
-- (admission on its own: beat's tick, submit, the settle step) and to
-- commit.lua (a transition that releases a slot refills it in the same round
-- trip). Both run this one function.
--
-- admit(acct, active, rate, running, now, pfx, cap, lease, reserve, PENDING, ADMITTED):
-- move as many due calls into the active set as the account has free slots
-- AND per-minute API budget, fairly across its campaigns.
-- acct: account hash; active: active zset; rate: rate zset; running: running set
-- now: epoch s (a string: it is part of the rate entry); pfx: key prefix
-- "dl:{A}:"; cap: limit on calls returned this time (0 = no extra limit);
-- lease: lease of an admitted call in seconds (short: if its dial task is
-- lost, reconciliation re-sends it); reserve: per cent of calls_per_minute
-- left to reconciliation (claim.lua): dials stop short of it, so settling a
-- lost callback never waits on dials; PENDING: the call state a waiting call
-- is in, ADMITTED: the one it enters (dialer.core.calls.State: passed in, so
-- the state names have one home; the call hash's layout is
-- dialer.store.records.call_to_hash).
-- Campaign and call keys are built from the prefix: they share the account's
-- hash tag, so the script touches one cluster slot.
-- Returns a list of call ids now in state ADMITTED.
local function admit(acct, active, rate, running, now_s, pfx, cap, admit_lease, reserve_pct, PENDING, ADMITTED)
  local now = tonumber(now_s)
  cap = tonumber(cap)
  admit_lease = tonumber(admit_lease)
  local a = redis.call('HMGET', acct, 'max_concurrent', 'calls_per_minute', 'paused_until', 'circuit')
  if not a[1] then return {} end
  if a[4] == CIRCUIT_OPEN then return {} end
  if tonumber(a[3] or '0') > now then return {} end
  local free = tonumber(a[1]) - redis.call('ZCARD', active)
  if free <= 0 then return {} end
  redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - 60)
  local cpm = tonumber(a[2] or '200')
  local reserve = math.floor(cpm * (tonumber(reserve_pct) or 0) / 100)
  local budget = cpm - reserve - redis.call('ZCARD', rate)
  local n = math.min(free, budget)
  if cap > 0 then n = math.min(n, cap) end
  if n <= 0 then return {} end

  -- Candidate campaigns: running, with due calls. Due retries are promoted
  -- from the delayed set into the queue first, keeping their submit order.
  local camps = {}
  for _, cid in ipairs(redis.call('SMEMBERS', running)) do
    local ckey = pfx .. 'campaign:' .. cid
    local c = redis.call('HMGET', ckey, 'state', 'weight', 'priority', 'active')
    if c[1] == CAMPAIGN_RUNNING then
      local qkey = pfx .. 'queue:' .. cid
      local dkey = pfx .. 'delayed:' .. cid
      local due = redis.call('ZRANGEBYSCORE', dkey, '-inf', now, 'LIMIT', 0, 1000)
      for _, id in ipairs(due) do
        local idx = tonumber(string.match(id, '%-(%d+)$')) or 0
        redis.call('ZADD', qkey, idx, id)
        redis.call('ZREM', dkey, id)
      end
      if redis.call('ZCARD', qkey) > 0 then
        table.insert(camps, {cid = cid, ckey = ckey, qkey = qkey,
          weight = math.max(tonumber(c[2] or '1') or 1, 0.001),
          priority = tonumber(c[3] or '0') or 0,
          active = tonumber(c[4] or '0') or 0})
      end
    end
  end

  local out = {}
  local guard = 0
  while #out < n and #camps > 0 and guard < n * 4 + 100 do
    guard = guard + 1
    -- Highest priority first; within it the campaign furthest below its
    -- weighted share of slots ((active + 1) / weight smallest).
    local best, bi = nil, 0
    for i, c in ipairs(camps) do
      if best == nil or c.priority > best.priority
         or (c.priority == best.priority and (c.active + 1) / c.weight < (best.active + 1) / best.weight) then
        best, bi = c, i
      end
    end
    local popped = redis.call('ZPOPMIN', best.qkey)
    if #popped == 0 then
      table.remove(camps, bi)
    else
      local id = popped[1]
      local callkey = pfx .. 'call:' .. id
      local st = redis.call('HMGET', callkey, 'state', 'attempt', 'tries')
      if st[1] == PENDING then
        redis.call('HSET', callkey, 'state', ADMITTED, 'admitted_at', now)
        redis.call('ZADD', active, now + admit_lease, id)
        redis.call('ZADD', rate, now, id .. ':' .. (st[2] or '1') .. ':' .. (st[3] or '0') .. ':' .. now_s)
        redis.call('HINCRBY', best.ckey, 'active', 1)
        redis.call('HINCRBY', pfx .. 'counts:' .. best.cid, PENDING, -1)
        redis.call('HINCRBY', pfx .. 'counts:' .. best.cid, ADMITTED, 1)
        best.active = best.active + 1
        table.insert(out, id)
      end
      -- any other state: a stale queue entry (cancelled, suppressed); drop it
      if redis.call('ZCARD', best.qkey) == 0 then table.remove(camps, bi) end
    end
  end
  return out
end

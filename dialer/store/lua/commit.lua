-- commit(call): write a transition decided in Python (dialer.core.calls.apply,
-- turned into commands by dialer.store.records.plan) only if the call is still
-- what the decision read. A compare-and-set on the fields the decision depends
-- on, in one round trip: no WATCH/MULTI. Counters and sets are only ever
-- incremented or added to, so they need no compare.
--
-- KEYS[1] the call hash; KEYS[2..] every other key the commands touch (all
-- under the account's hash tag: one cluster slot); when ARGV[3] is not empty,
-- the last key is the account's events stream.
-- ARGV[1] JSON [[field, value read, or false if it was missing], ...]
-- ARGV[2] JSON commands, keys by KEYS index:
--         ["hset", k, field, value, ...]  ["hincrby", k, field, n]
--         ["zrem", k, member]  ["zadd", k, score, member, xx (1/0)]
-- ARGV[3] JSON flat list [field, value, ...] of an event record to XADD
--         first, whatever the compare says (the raw callback), or ''
-- ARGV[4] the stream's approximate MAXLEN
-- ARGV[5] JSON [acct, active, rate, running (KEYS indexes), now, prefix, cap,
--         lease, reserve, PENDING, ADMITTED] when the transition releases a
--         slot: refill it after the writes (admit in lua/admission.lua, the
--         one home of admission, prepended to this script), or ''
-- Returns {1, admitted id, ...} when written (no ids without ARGV[5]); {2}
-- when written but the refill failed (it is left to the settle step);
-- {0, field, value, ...} (the call's fields now) when the call changed since
-- it was read: decide again on those (nothing is written, nothing admitted).
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[#KEYS], 'MAXLEN', '~', ARGV[4], '*', unpack(cjson.decode(ARGV[3])))
end
local expect = cjson.decode(ARGV[1])
local names = {}
for i, e in ipairs(expect) do names[i] = e[1] end
local now = redis.call('HMGET', KEYS[1], unpack(names))
for i, e in ipairs(expect) do
  if now[i] ~= e[2] then
    local fields = redis.call('HGETALL', KEYS[1])
    table.insert(fields, 1, 0)
    return fields
  end
end
local ops = cjson.decode(ARGV[2])
local known = {hset = true, hincrby = true, zrem = true, zadd = true}
for _, op in ipairs(ops) do
  -- checked before any write: a script's writes are never rolled back
  if not known[op[1]] or KEYS[op[2]] == nil then
    return redis.error_reply('commit: bad command ' .. tostring(op[1]))
  end
end
for _, op in ipairs(ops) do
  local name, key = op[1], KEYS[op[2]]
  if name == 'hset' then
    redis.call('HSET', key, unpack(op, 3))
  elseif name == 'hincrby' then
    redis.call('HINCRBY', key, op[3], op[4])
  elseif name == 'zrem' then
    redis.call('ZREM', key, op[3])
  elseif name == 'zadd' then
    if op[5] == 1 then
      redis.call('ZADD', key, 'XX', op[3], op[4])
    else
      redis.call('ZADD', key, op[3], op[4])
    end
  end
end
if ARGV[5] == '' then return {1} end
local r = cjson.decode(ARGV[5])
-- The transition is written and stays written (no rollback): an error in the
-- refill (a corrupt account field) must not make it look failed, or the
-- caller would answer 500 and skip its follow-ups. {2}: written, refill not
-- run, so the settle step admits instead.
local ok, ids = pcall(admit, KEYS[r[1]], KEYS[r[2]], KEYS[r[3]], KEYS[r[4]], unpack(r, 5))
if not ok then return {2} end
table.insert(ids, 1, 1)
return ids

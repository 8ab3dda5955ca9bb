package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts below are the only multi-key writers. They are immutable
// and compiled once; Script.Run uses EVALSHA and falls back to EVAL.
// Numbers handed back to Redis are formatted with %d: Lua would print large
// ones in exponent form.

// bindingPrelude is shared by the binding scripts.
// KEYS[1]=:h, KEYS[2]=:x, KEYS[3]=:g; ARGV[1]=now ms, ARGV[2]=grace ms,
// ARGV[3]=cap of :g.
const bindingPrelude = `
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
-- purge moves the bindings that expired at or before now to :g, where
-- Sweep will find them, and returns how many.
local function purge()
  local exp = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  for _, k in ipairs(exp) do
    local v = redis.call('HGET', KEYS[1], k)
    if v then redis.call('RPUSH', KEYS[3], v) end
    redis.call('HDEL', KEYS[1], k)
  end
  if #exp > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
    redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
  end
  return #exp
end
-- settle sets the expiry of :h and :x to the last binding's plus grace
-- (absolute, so it does not depend on the caller's now) and that of :g to
-- grace from now, and returns when the AOR is next due for a sweep: its
-- earliest expiry, now when :g holds bindings, 0 when it holds nothing.
local function settle()
  local due = 0
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #last == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
  else
    local at = string.format('%d', tonumber(last[2]) + grace)
    redis.call('PEXPIREAT', KEYS[1], at)
    redis.call('PEXPIREAT', KEYS[2], at)
    due = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2])
  end
  if redis.call('LLEN', KEYS[3]) > 0 then
    redis.call('PEXPIRE', KEYS[3], string.format('%d', grace))
    due = now
  end
  return due
end
`

// bindingPut inserts, refreshes (keeping the stored created) or, when the
// expiry is not in the future, removes one binding. ARGV[4]=key,
// ARGV[5]=expires ms, ARGV[6]=created for a new binding, ARGV[7]=JSON.
// Returns due.
var bindingPut = goredis.NewScript(bindingPrelude + `
purge()
local key = ARGV[4]
if tonumber(ARGV[5]) <= now then
  redis.call('HDEL', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
else
  local created = ARGV[6]
  local old = redis.call('HGET', KEYS[1], key)
  if old then created = string.sub(old, 1, string.find(old, '\n', 1, true) - 1) end
  redis.call('HSET', KEYS[1], key, created .. '\n' .. ARGV[7])
  redis.call('ZADD', KEYS[2], ARGV[5], key)
end
return settle()
`)

// bindingList returns {due, values}; due is -1 when nothing was purged.
var bindingList = goredis.NewScript(bindingPrelude + `
local due = -1
if purge() > 0 then due = settle() end
return {due, redis.call('HVALS', KEYS[1])}
`)

// bindingDelete removes ARGV[4] if live and returns {removed, due}.
var bindingDelete = goredis.NewScript(bindingPrelude + `
purge()
local removed = redis.call('HDEL', KEYS[1], ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[4])
return {removed, settle()}
`)

// bindingDeleteAll removes every live binding and returns {count, due}.
var bindingDeleteAll = goredis.NewScript(bindingPrelude + `
purge()
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return {n, settle()}
`)

// bindingSweep removes the expired bindings, drains :g and returns
// {due, values}: each value is returned by exactly one call.
var bindingSweep = goredis.NewScript(bindingPrelude + `
purge()
local gone = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
return {settle(), gone}
`)

// bindingDue returns when the AOR is due, without changing anything.
var bindingDue = goredis.NewScript(bindingPrelude + `
local due = 0
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #first > 0 then due = tonumber(first[2]) end
if redis.call('LLEN', KEYS[3]) > 0 and (due == 0 or now < due) then due = now end
return due
`)

// eventAppend: KEYS[1]=:seq, KEYS[2]=:log, KEYS[3]=:ids; ARGV[1]=ID (may
// be empty), ARGV[2]=JSON, ARGV[3]=MaxEvents, ARGV[4]=wake channel.
// Returns {seq, created}.
var eventAppend = goredis.NewScript(`
if ARGV[1] ~= '' then
  local old = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if old then return {tonumber(old), 0} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[3], '0-' .. seq, 'e', ARGV[2])
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[3], seq, ARGV[1]) end
local cut = seq - tonumber(ARGV[3])
if cut > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%d', cut)) end
redis.call('PUBLISH', ARGV[4], seq)
return {seq, 1}
`)

// eventRead: KEYS[1]=:seq, KEYS[2]=:log; ARGV[1]=after, ARGV[2]=limit (0:
// all). Returns {0, id, json, id, json...}, or {1} when entries after the
// cursor were trimmed.
var eventRead = goredis.NewScript(`
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
if after >= last then return {0} end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #first == 0 or after + 1 < tonumber(string.sub(first[1][1], 3)) then return {1} end
local r
if tonumber(ARGV[2]) > 0 then
  r = redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
else
  r = redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[1], '+')
end
local out = {0}
for _, e in ipairs(r) do
  out[#out + 1] = e[1]
  out[#out + 1] = e[2][2]
end
return out
`)

// userCreate: KEYS[1]={users}:u, KEYS[2]={users}:i; ARGV[1]=id,
// ARGV[2]=identity, ARGV[3]=tel (may be empty), ARGV[4]=JSON.
// Returns 0, or 1 when the ID, identity or tel is taken.
var userCreate = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 1 end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[1]) end
return 0
`)

// userUpdate: as userCreate plus ARGV[5]=expected version; ARGV[4] is the
// new JSON. Returns 0, 1 unknown, 2 version conflict, 3 alias taken.
var userUpdate = goredis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 1 end
local o = cjson.decode(old)
if o.version ~= tonumber(ARGV[5]) then return 2 end
local function taken(a)
  if a == '' then return false end
  local owner = redis.call('HGET', KEYS[2], a)
  return owner and owner ~= ARGV[1]
end
if taken(ARGV[2]) or taken(ARGV[3]) then return 3 end
if type(o.identity) == 'string' then redis.call('HDEL', KEYS[2], o.identity) end
if type(o.tel) == 'string' then redis.call('HDEL', KEYS[2], o.tel) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 0
`)

// refreshPut: KEYS[1]=:rt:<id>; ARGV[1]=JSON, ARGV[2]=family,
// ARGV[3]=expires ms. Returns 0, or 1 when the ID exists.
var refreshPut = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'f', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 0
`)

// refreshUse: KEYS[1]=:rt:<id>, KEYS[2]=:rf:<family>; ARGV[1]=now ms,
// ARGV[2]=family. Returns {0, json} (now used), {1} unknown, expired or
// family revoked, or {2, json} already used.
var refreshUse = goredis.NewScript(`
local t = redis.call('HMGET', KEYS[1], 'j', 'e', 'u', 'f')
if not t[1] or t[4] ~= ARGV[2] then return {1} end
if tonumber(t[2]) <= tonumber(ARGV[1]) then return {1} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {1} end
if t[3] then return {2, t[1]} end
redis.call('HSET', KEYS[1], 'u', '1')
return {0, t[1]}
`)

// revokeUntil: KEYS[1]; ARGV[1]=TTL ms. Sets the key unless it already
// lives longer: a revocation is never shortened.
var revokeUntil = goredis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 or (ttl >= 0 and ttl < tonumber(ARGV[1])) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
`)

import { luaKeyFunctions, luaLocals, redisKey } from '../store/lua.js';

/**
 * The Redis ledger, as one Lua script run atomically by Redis: an operation and its
 * idempotency check (a receipt's sequence number, a node's running total) are one step, so a
 * receipt is counted once however many controller instances see it, and Redis persists the
 * count and the mark that it was counted together (run Redis with appendonly for the ledger
 * to survive a Redis restart). It mirrors MemoryLedgerStore step for step; the ledger contract
 * tests run the same scenarios against both.
 *
 * Keys (all under `cascade:`):
 *   cascade:ledger:<acct>                           hash   earned granted spent bytes viewersServed onlineMs (integers)
 *   cascade:ledger:<acct>:history                   list   LedgerHistoryEntry JSON, oldest first (newest HISTORY_MAX kept)
 *   cascade:ledger:<acct>:daily                     hash   <day>:earned|spent|bytes => integer
 *   cascade:ledger:<acct>:watched                   hash   streamId => when it was paid for (ms)
 *   cascade:credit:node:<nodeId>                    hash   account confirmed claimed credited lastBytesOut lastSeen
 *   cascade:credit:pending                          set    nodeIds whose counters moved since the last settlement
 *   cascade:credit:bind:<session>:<stream>:<node>   hash   since lastSeq bytes served (expires ttlMs after its last use)
 *   cascade:credit:viewer:<viewer>:<stream>         hash   since bytes (expires likewise)
 *   cascade:credit:edge:<stream>:<child>:<parent>   hash   since at last bytes (expires likewise)
 */
export const LEDGER_KEYS = {
  ledger: redisKey('cascade:ledger:{}'),
  history: redisKey('cascade:ledger:{}:history'),
  daily: redisKey('cascade:ledger:{}:daily'),
  watched: redisKey('cascade:ledger:{}:watched'),
  node: redisKey('cascade:credit:node:{}'),
  pending: 'cascade:credit:pending',
  bind: redisKey('cascade:credit:bind:{}:{}:{}'),
  viewer: redisKey('cascade:credit:viewer:{}:{}'),
  edge: redisKey('cascade:credit:edge:{}:{}:{}'),
} as const;

const K = LEDGER_KEYS;
const PRELUDE = [
  luaLocals({ PENDING: K.pending }),
  luaKeyFunctions({
    ledgerKey: K.ledger,
    historyKey: K.history,
    dailyKey: K.daily,
    watchedKey: K.watched,
    creditNodeKey: K.node,
    bindKey: K.bind,
    viewerKey: K.viewer,
    edgeKey: K.edge,
  }),
].join('\n');

export const LEDGER_LUA = PRELUDE + String.raw`
local function int(x) return string.format('%d', math.floor(x)) end
local function num(x) return tonumber(x) or 0 end

local function hgetnum(key, field) return num(redis.call('HGET', key, field)) end

local function append(acct, entry, max)
  local k = historyKey(acct)
  redis.call('RPUSH', k, cjson.encode(entry))
  redis.call('LTRIM', k, -max, -1)
end

-- A node's counters, started afresh when it now belongs to another account.
local function nodeKey(nodeId, acct)
  local k = creditNodeKey(nodeId)
  local owner = redis.call('HGET', k, 'account')
  if owner ~= acct then
    redis.call('DEL', k)
    redis.call('HSET', k, 'account', acct, 'confirmed', 0, 'claimed', 0, 'credited', 0)
  end
  return k
end

local op = ARGV[1]

if op == 'open' then
  -- acct, grantMicro, now, historyMax
  local k = ledgerKey(ARGV[2])
  if redis.call('EXISTS', k) == 1 then return 0 end
  local grant = tonumber(ARGV[3])
  redis.call('HSET', k, 'earned', 0, 'granted', int(grant), 'spent', 0, 'bytes', 0, 'viewersServed', 0, 'onlineMs', 0)
  if grant > 0 then append(ARGV[2], { at = tonumber(ARGV[4]), kind = 'grant', micro = grant, bytes = 0, ref = 'signup' }, tonumber(ARGV[5])) end
  return 1

elseif op == 'charge' then
  -- acct, streamId, costMicro, now, day, historyMax
  local acct, stream, cost, now, day = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
  local k = ledgerKey(acct)
  if redis.call('EXISTS', k) == 0 then return { 'INSUFFICIENT', 0 } end
  local balance = hgetnum(k, 'earned') + hgetnum(k, 'granted') - hgetnum(k, 'spent')
  if redis.call('HEXISTS', watchedKey(acct), stream) == 1 then return { 'ALREADY', int(balance) } end
  if balance < cost then return { 'INSUFFICIENT', int(balance) } end
  redis.call('HSET', watchedKey(acct), stream, int(now))
  redis.call('HINCRBY', k, 'spent', int(cost))
  redis.call('HINCRBY', dailyKey(acct), day .. ':spent', int(cost))
  append(acct, { at = now, kind = 'spend', micro = cost, bytes = 0, ref = stream }, tonumber(ARGV[7]))
  return { 'CHARGED', int(balance - cost) }

elseif op == 'bind' then
  -- session, viewer, streamId, nodeId, now, ttlMs
  local bk = bindKey(ARGV[2], ARGV[4], ARGV[5])
  local vk = viewerKey(ARGV[3], ARGV[4])
  local now, ttl = ARGV[6], tonumber(ARGV[7])
  redis.call('HSETNX', bk, 'since', now)
  redis.call('HSETNX', bk, 'lastSeq', 0)
  redis.call('HSETNX', bk, 'bytes', 0)
  redis.call('PEXPIRE', bk, ttl)
  redis.call('HSETNX', vk, 'since', now)
  redis.call('HSETNX', vk, 'bytes', 0)
  redis.call('PEXPIRE', vk, ttl)
  return 'OK'

elseif op == 'receipt' then
  -- session, viewer, streamId, nodeId, seq, bytes, maxBytes, accountId ('' for none), now, maxBytesPerMs, graceMs, ttlMs
  local bk = bindKey(ARGV[2], ARGV[4], ARGV[5])
  if redis.call('EXISTS', bk) == 0 then return { 'unplaced', 0 } end
  local seq = tonumber(ARGV[6])
  if seq <= hgetnum(bk, 'lastSeq') then return { 'duplicate', 0 } end
  local vk = viewerKey(ARGV[3], ARGV[4])
  local bytes, maxBytes, acct, now = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
  local rate, grace, ttl = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
  local bSince, bBytes = hgetnum(bk, 'since'), hgetnum(bk, 'bytes')
  local vSince, vBytes = bSince, 0
  if redis.call('EXISTS', vk) == 1 then vSince, vBytes = hgetnum(vk, 'since'), hgetnum(vk, 'bytes') end
  local counted = math.min(bytes, math.floor(maxBytes),
    math.floor(rate * (now - bSince + grace)) - bBytes,
    math.floor(rate * (now - vSince + grace)) - vBytes)
  if counted < 0 then counted = 0 end
  redis.call('HSET', bk, 'lastSeq', int(seq), 'bytes', int(bBytes + counted))
  redis.call('PEXPIRE', bk, ttl)
  redis.call('HSET', vk, 'since', int(vSince), 'bytes', int(vBytes + counted))
  redis.call('PEXPIRE', vk, ttl)
  if counted > 0 and acct ~= '' then
    local nk = nodeKey(ARGV[5], acct)
    redis.call('HINCRBY', nk, 'confirmed', int(counted))
    redis.call('SADD', PENDING, ARGV[5])
    if redis.call('HSETNX', bk, 'served', 1) == 1 and redis.call('EXISTS', ledgerKey(acct)) == 1 then
      redis.call('HINCRBY', ledgerKey(acct), 'viewersServed', 1)
    end
  end
  local outcome = 'counted'
  if counted < bytes then outcome = 'capped' end
  return { outcome, int(counted) }

elseif op == 'child' then
  -- streamId, childId, parentId, bytesFromParent, accountId ('' for none), now, maxBytesPerMs, graceMs, ttlMs
  local ek = edgeKey(ARGV[2], ARGV[3], ARGV[4])
  local value, acct, now = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
  local rate, grace, ttl = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
  local since, at, last, used = now, now, 0, 0
  if redis.call('EXISTS', ek) == 1 then
    since, at, last, used = hgetnum(ek, 'since'), hgetnum(ek, 'at'), hgetnum(ek, 'last'), hgetnum(ek, 'bytes')
  end
  local delta = value
  if value >= last then delta = value - last end
  local room = math.min(math.floor(rate * (now - at + grace)), math.floor(rate * (now - since + grace)) - used)
  local counted = math.min(delta, room)
  if counted < 0 then counted = 0 end
  redis.call('HSET', ek, 'since', int(since), 'at', int(now), 'last', int(value), 'bytes', int(used + counted))
  redis.call('PEXPIRE', ek, ttl)
  if counted > 0 and acct ~= '' then
    redis.call('HINCRBY', nodeKey(ARGV[4], acct), 'confirmed', int(counted))
    redis.call('SADD', PENDING, ARGV[4])
  end
  local outcome = 'counted'
  if counted < delta then outcome = 'capped' end
  return { outcome, int(counted) }

elseif op == 'counts' then
  -- reports JSON [{nodeId, accountId, bytesOut, alive}], now, maxGapMs
  local reports = cjson.decode(ARGV[2])
  local now, maxGap = tonumber(ARGV[3]), tonumber(ARGV[4])
  for _, r in ipairs(reports) do
    local nk = nodeKey(r.nodeId, r.accountId)
    local lastRaw = redis.call('HGET', nk, 'lastBytesOut')
    local last = num(lastRaw)
    local delta = r.bytesOut
    if r.bytesOut >= last then delta = r.bytesOut - last end
    redis.call('HSET', nk, 'lastBytesOut', int(r.bytesOut))
    if delta > 0 then
      redis.call('HINCRBY', nk, 'claimed', int(delta))
      redis.call('SADD', PENDING, r.nodeId)
    end
    if r.alive then
      local seenRaw = redis.call('HGET', nk, 'lastSeen')
      local lk = ledgerKey(r.accountId)
      if seenRaw then
        local seen = tonumber(seenRaw)
        if now > seen and now - seen <= maxGap and redis.call('EXISTS', lk) == 1 then
          redis.call('HINCRBY', lk, 'onlineMs', int(now - seen))
        end
      end
      if not seenRaw or now > tonumber(seenRaw) then redis.call('HSET', nk, 'lastSeen', int(now)) end
    else
      redis.call('HDEL', nk, 'lastSeen')
    end
  end
  return 'OK'

elseif op == 'settle' then
  -- now, day, microPerByte, historyMax
  local now, day, rate, max = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local out = {}
  for _, nodeId in ipairs(redis.call('SMEMBERS', PENDING)) do
    local nk = creditNodeKey(nodeId)
    local acct = redis.call('HGET', nk, 'account')
    if acct then
      local delta = math.min(hgetnum(nk, 'confirmed'), hgetnum(nk, 'claimed')) - hgetnum(nk, 'credited')
      local lk = ledgerKey(acct)
      if delta > 0 and redis.call('EXISTS', lk) == 1 then
        local micro = math.floor(delta * rate + 0.5)
        redis.call('HINCRBY', nk, 'credited', int(delta))
        redis.call('HINCRBY', lk, 'earned', int(micro))
        redis.call('HINCRBY', lk, 'bytes', int(delta))
        redis.call('HINCRBY', dailyKey(acct), day .. ':earned', int(micro))
        redis.call('HINCRBY', dailyKey(acct), day .. ':bytes', int(delta))
        append(acct, { at = now, kind = 'credit', micro = micro, bytes = delta, ref = nodeId }, max)
        table.insert(out, { nodeId = nodeId, accountId = acct, bytes = delta, micro = micro })
      end
    end
  end
  redis.call('DEL', PENDING)
  return cjson.encode(out)
end
return redis.error_reply('unknown op ' .. tostring(op))
`;

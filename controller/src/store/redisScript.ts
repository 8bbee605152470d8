import { luaKeyFunctions, luaLocals, redisKey } from './lua.js';
import { FULL, HEARTBEAT_PRUNE_GRACE_MS, NO_LIMIT, RECONCILE_GRACE_MS } from './scores.js';

/**
 * The Redis store's decisions, as one Lua script run atomically by Redis (one round trip per
 * decision). It mirrors MemoryTopologyStore step for step; the store contract tests run the
 * same scenarios against both. Not Redis Cluster safe: keys are derived inside the script.
 * (Over 450 lines: Redis runs one script per command, and every decision shares its helpers;
 * splitting the Lua text across files would only hide that it is one program.)
 *
 * Keys (all under `cascade:`):
 *   cascade:nodes                 hash   nodeId => NodeRecord JSON
 *   cascade:nodes:expiry          zset   nodeId => liveness deadline (ms)
 *   cascade:nodes:status          hash   nodeId => probing|ready|draining|demoted
 *   cascade:nodes:viewers         hash   nodeId => viewers on the node, all streams
 *   cascade:nodes:oversince       hash   nodeId => ms since reports stayed below the count (0: not)
 *   cascade:nodes:stats           hash   nodeId => NodeStats JSON (last heartbeat)
 *   cascade:nodes:claims          hash   nodeId => JSON { streamId: { p?: parentId, c: [childId] } }: edges
 *                                        its last heartbeat reported that the tree lacks (see MemoryTopologyStore)
 *   cascade:node:<id>:streams     set    streamIds the node carries
 *   cascade:relays                zset   relayId => relayScore (candidates to add to a tree)
 *   cascade:streams               hash   streamId => StreamRecord JSON
 *   cascade:stream:<id>:tree      hash   nodeId => TreeEntry JSON
 *   cascade:stream:<id>:serve     zset   relayId => serveScore (relays serving viewers)
 *   cascade:stream:<id>:parents   zset   nodeId => parentScore (nodes that may feed a relay)
 *   cascade:ticketkey             hash   private/public => PEM of the ticket signing key
 *   cascade:events                channel TopologyEvent JSON
 */
export const KEYS = {
  nodes: 'cascade:nodes',
  expiry: 'cascade:nodes:expiry',
  status: 'cascade:nodes:status',
  viewers: 'cascade:nodes:viewers',
  overSince: 'cascade:nodes:oversince',
  stats: 'cascade:nodes:stats',
  claims: 'cascade:nodes:claims',
  relays: 'cascade:relays',
  streams: 'cascade:streams',
  ticketKey: 'cascade:ticketkey',
  channel: 'cascade:events',
  nodeStreams: redisKey('cascade:node:{}:streams'),
  tree: redisKey('cascade:stream:{}:tree'),
  serve: redisKey('cascade:stream:{}:serve'),
  parents: redisKey('cascade:stream:{}:parents'),
} as const;

/** The script's names for what it shares with TypeScript (keys, scores.ts's constants). */
const PRELUDE = [
  luaLocals({
    FULL,
    NO_LIMIT,
    PRUNE_GRACE: HEARTBEAT_PRUNE_GRACE_MS,
    RECONCILE_GRACE: RECONCILE_GRACE_MS,
    NODES: KEYS.nodes,
    EXPIRY: KEYS.expiry,
    STATUS: KEYS.status,
    VIEWERS: KEYS.viewers,
    OVERSINCE: KEYS.overSince,
    STATS: KEYS.stats,
    CLAIMS: KEYS.claims,
    RELAYS: KEYS.relays,
    STREAMS: KEYS.streams,
    TICKETKEY: KEYS.ticketKey,
  }),
  luaKeyFunctions({ nodeStreamsKey: KEYS.nodeStreams, treeKey: KEYS.tree, serveKey: KEYS.serve, parentsKey: KEYS.parents }),
].join('\n');

export const TOPOLOGY_LUA = PRELUDE + String.raw`

local function floor(x) return math.floor(x) end
local function serveScore(depth, viewers, maxViewers)
  local full = 0
  if viewers >= maxViewers then full = FULL end
  return full + depth * 1e9 + floor((math.min(viewers, maxViewers) / math.max(1, maxViewers)) * 1e6)
end
local function parentScore(depth, volunteer, children, full)
  local s = depth * 1e9 + children
  if volunteer then s = s + 1e8 end
  if full then s = s + FULL end
  return s
end
local function relayScore(volunteer, maxChildren, viewers, maxViewers)
  local s = (1000 - math.min(maxChildren, 999)) * 1e5 + floor((viewers / math.max(1, maxViewers)) * 1e4)
  if volunteer then s = s + 1e9 end
  if viewers >= maxViewers then s = s + FULL end
  return s
end

-- Node records never change during a decision (upsertNode writes before it reads), so each
-- is decoded once per script call.
local nodeCache = {}
local function getNode(id)
  local n = nodeCache[id]
  if n == nil then
    local raw = redis.call('HGET', NODES, id)
    n = raw and cjson.decode(raw) or false
    nodeCache[id] = n
  end
  return n or nil
end
local function getEntry(s, id)
  local raw = redis.call('HGET', treeKey(s), id)
  if not raw then return nil end
  return cjson.decode(raw)
end
local function putEntry(s, e) redis.call('HSET', treeKey(s), e.nodeId, cjson.encode(e)) end
local function isNull(v) return v == nil or v == cjson.null end
local function viewersOf(id) return tonumber(redis.call('HGET', VIEWERS, id) or '0') end
-- Mirror of reconcileCount() in scores.ts.
local function reconcile(stored, reported, overSince, now)
  if reported >= stored then return reported, 0 end
  if overSince == 0 then return stored, now end
  if now - overSince >= RECONCILE_GRACE then return reported, 0 end
  return stored, overSince
end

local function childTotal(id)
  local n = 0
  for _, s in ipairs(redis.call('SMEMBERS', nodeStreamsKey(id))) do
    local e = getEntry(s, id)
    if e then n = n + e.children end
  end
  return n
end

local function refresh(id)
  local node = getNode(id)
  if not node then return end
  local viewers = viewersOf(id)
  local children = childTotal(id)
  local cap = node.capacity
  for _, s in ipairs(redis.call('SMEMBERS', nodeStreamsKey(id))) do
    local e = getEntry(s, id)
    if e then
      if not isNull(e.parent) then redis.call('ZADD', serveKey(s), serveScore(e.depth, viewers, cap.maxViewers), id) end
      redis.call('ZADD', parentsKey(s), parentScore(e.depth, node.volunteer, e.children, children >= cap.maxChildren), id)
    end
  end
  if node.kind == 'relay' then
    redis.call('ZADD', RELAYS, relayScore(node.volunteer, cap.maxChildren, viewers, cap.maxViewers), id)
  end
end

local function usable(id, now, exclude)
  if exclude[id] then return false end
  local exp = redis.call('ZSCORE', EXPIRY, id)
  if not exp or tonumber(exp) <= now then return false end
  return redis.call('HGET', STATUS, id) == 'ready'
end
local function hasViewerRoom(id)
  local node = getNode(id)
  return node ~= nil and viewersOf(id) < node.capacity.maxViewers
end

local function addChildCount(s, id, delta)
  local e = getEntry(s, id)
  if e then
    e.children = math.max(0, e.children + delta)
    putEntry(s, e)
  end
  refresh(id)
end

local function addViewer(s, id)
  local e = getEntry(s, id)
  e.viewers = e.viewers + 1
  putEntry(s, e)
  redis.call('HINCRBY', VIEWERS, id, 1)
  refresh(id)
end

local function removeEntry(s, id)
  local e = getEntry(s, id)
  if not e then return end
  redis.call('HDEL', treeKey(s), id)
  if not isNull(e.parent) then addChildCount(s, e.parent, -1) end
  redis.call('SREM', nodeStreamsKey(id), s)
  redis.call('ZREM', serveKey(s), id)
  redis.call('ZREM', parentsKey(s), id)
end

-- Whether ancestor is on id's parent chain, walked to the top however long (a chain longer
-- than the tree can only be an existing cycle: stop there).
local function isDescendant(s, id, ancestor)
  local e = getEntry(s, id)
  local cur = e and e.parent
  local i = 0
  local limit = redis.call('HLEN', treeKey(s))
  while not isNull(cur) and i < limit do
    if cur == ancestor then return true end
    local ce = getEntry(s, cur)
    cur = ce and ce.parent
    i = i + 1
  end
  return false
end

-- Walk a zset in ascending score below FULL, in batches; stop when fn returns a value.
local function scan(key, fn)
  local offset = 0
  while true do
    local batch = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. string.format('%.0f', FULL), 'LIMIT', offset, 64)
    if #batch == 0 then return nil end
    for _, id in ipairs(batch) do
      local r = fn(id)
      if r ~= nil then return r end
    end
    offset = offset + #batch
  end
end

local function pickParent(s, K, now, exclude, child)
  return scan(parentsKey(s), function(id)
    local e = getEntry(s, id)
    if not e or id == child or e.children >= K then return nil end
    if not usable(id, now, exclude) then return nil end
    local node = getNode(id)
    if childTotal(id) >= node.capacity.maxChildren then return nil end
    if child and isDescendant(s, id, child) then return nil end
    return id
  end)
end

-- Give a node a new depth and its whole subtree the depths that follow from it.
local function setDepth(s, id, depth)
  local below = {}
  for _, raw in ipairs(redis.call('HVALS', treeKey(s))) do
    local x = cjson.decode(raw)
    if not isNull(x.parent) then
      if not below[x.parent] then below[x.parent] = {} end
      table.insert(below[x.parent], x.nodeId)
    end
  end
  local queue, seen, i = { { id, depth } }, {}, 1
  while i <= #queue do
    local cid, d = queue[i][1], queue[i][2]
    i = i + 1
    if not seen[cid] then
      seen[cid] = true
      local e = getEntry(s, cid)
      if e then
        e.depth = d
        putEntry(s, e)
        refresh(cid)
        for _, c in ipairs(below[cid] or {}) do table.insert(queue, { c, d + 1 }) end
      end
    end
  end
end

local function ensureRoot(s, stream, now)
  local root = stream.originNodeId
  if redis.call('HEXISTS', treeKey(s), root) == 0 then
    putEntry(s, { nodeId = root, parent = cjson.null, depth = 0, viewers = 0, children = 0, since = now })
    redis.call('SADD', nodeStreamsKey(root), s)
    refresh(root)
  end
end

-- Put a node into a stream's tree under parent; returns its depth.
local function attach(s, id, parent, now)
  local depth = getEntry(s, parent).depth + 1
  putEntry(s, { nodeId = id, parent = parent, depth = depth, viewers = 0, children = 0, since = now })
  redis.call('SADD', nodeStreamsKey(id), s)
  addChildCount(s, parent, 1)
  return depth
end

-- Mirror of MemoryTopologyStore #restore: put back an edge both of its ends reported.
local function restore(s, child, parent, now, K)
  if child == parent then return false end
  local c, pn = getNode(child), getNode(parent)
  if not c or c.kind ~= 'relay' or not pn then return false end
  if redis.call('HEXISTS', treeKey(s), child) == 1 then return false end
  local pe = getEntry(s, parent)
  if not pe then return false end
  if pe.children >= K or childTotal(parent) >= pn.capacity.maxChildren then return false end
  if isDescendant(s, parent, child) then return false end
  local depth = attach(s, child, parent, now)
  local below = 0
  for _, raw in ipairs(redis.call('HVALS', treeKey(s))) do
    if cjson.decode(raw).parent == child then below = below + 1 end
  end
  if below > 0 then
    local e = getEntry(s, child)
    e.children = below
    putEntry(s, e)
    setDepth(s, child, depth)
  end
  refresh(child)
  return true
end

-- Decoded once per script call: a heartbeat may list many children.
local claimsCache = {}
local function claimsOf(id)
  local c = claimsCache[id]
  if c == nil then
    local raw = redis.call('HGET', CLAIMS, id)
    c = raw and cjson.decode(raw) or {}
    claimsCache[id] = c
  end
  return c
end
local function contains(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

local function excludeSet(json)
  local set = {}
  for _, id in ipairs(cjson.decode(json)) do set[id] = true end
  return set
end

local cmd = ARGV[1]

if cmd == 'upsertNode' then
  local node = cjson.decode(ARGV[2])
  redis.call('HSET', NODES, node.id, ARGV[2])
  redis.call('HSET', STATUS, node.id, ARGV[3])
  redis.call('ZADD', EXPIRY, tonumber(ARGV[5]) + tonumber(ARGV[4]), node.id)
  redis.call('HSETNX', VIEWERS, node.id, 0)
  refresh(node.id)
  return 'OK'

elseif cmd == 'setStatus' then
  if redis.call('HEXISTS', NODES, ARGV[2]) == 0 then return 'OK' end
  redis.call('HSET', STATUS, ARGV[2], ARGV[3])
  refresh(ARGV[2])
  return 'OK'

elseif cmd == 'heartbeat' then
  local id, snap, ttl, now, K = ARGV[2], cjson.decode(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  if K == NO_LIMIT then K = math.huge end
  if redis.call('HEXISTS', NODES, id) == 0 then return 'UNKNOWN' end
  redis.call('ZADD', EXPIRY, now + ttl, id)
  local v, over = reconcile(viewersOf(id), snap.stats.viewers, tonumber(redis.call('HGET', OVERSINCE, id) or '0'), now)
  redis.call('HSET', VIEWERS, id, v)
  redis.call('HSET', OVERSINCE, id, over)
  redis.call('HSET', STATS, id, cjson.encode(snap.stats))
  local reported = {}
  local mine, anyClaim = {}, false
  for _, cs in ipairs(snap.streams) do
    local s = cs.streamId
    if redis.call('HEXISTS', STREAMS, s) == 1 then
      reported[s] = true
      -- No relay's word alone puts a node into a tree (see MemoryTopologyStore.heartbeat);
      -- whichever end of a lost edge reports second restores it.
      local claim, claimed = { c = {} }, false
      local pid = cs.parentNodeId
      if redis.call('HEXISTS', treeKey(s), id) == 0 and not isNull(pid) then
        local pc = claimsOf(pid)[s]
        if not (pc and contains(pc.c, id) and restore(s, id, pid, now, K)) then
          claim.p = pid
          claimed = true
        end
      end
      local e = getEntry(s, id)
      if e then
        local ev, eover = reconcile(e.viewers, cs.viewers, e.overSince or 0, now)
        e.viewers = ev
        e.overSince = eover
        e.bitrateOutKbps = cs.bitrateOutKbps
        putEntry(s, e)
      end
      local seen = {}
      for _, c in ipairs(cs.childNodeIds or {}) do
        if c ~= id and not seen[c] and redis.call('HEXISTS', treeKey(s), c) == 0 and redis.call('HEXISTS', NODES, c) == 1 then
          seen[c] = true
          local cc = claimsOf(c)[s]
          if not (cc and cc.p == id and restore(s, c, id, now, K)) then
            table.insert(claim.c, c)
            claimed = true
          end
        end
      end
      if claimed then
        mine[s] = claim
        anyClaim = true
      end
    end
  end
  if anyClaim then redis.call('HSET', CLAIMS, id, cjson.encode(mine)) else redis.call('HDEL', CLAIMS, id) end
  for _, s in ipairs(redis.call('SMEMBERS', nodeStreamsKey(id))) do
    if not reported[s] then
      local e = getEntry(s, id)
      if e and e.since < now - PRUNE_GRACE and e.children == 0 and not isNull(e.parent) then removeEntry(s, id) end
    end
  end
  refresh(id)
  return 'OK'

elseif cmd == 'removeNode' then
  local id = ARGV[2]
  local orphans, streams = {}, redis.call('SMEMBERS', nodeStreamsKey(id))
  for _, s in ipairs(streams) do
    for _, raw in ipairs(redis.call('HVALS', treeKey(s))) do
      local e = cjson.decode(raw)
      if e.parent == id then table.insert(orphans, { streamId = s, childId = e.nodeId }) end
    end
    removeEntry(s, id)
  end
  redis.call('HDEL', NODES, id)
  nodeCache[id] = nil
  redis.call('ZREM', EXPIRY, id)
  redis.call('HDEL', STATUS, id)
  redis.call('HDEL', VIEWERS, id)
  redis.call('HDEL', OVERSINCE, id)
  redis.call('HDEL', STATS, id)
  redis.call('HDEL', CLAIMS, id)
  redis.call('DEL', nodeStreamsKey(id))
  redis.call('ZREM', RELAYS, id)
  return cjson.encode({ orphans = orphans, streams = streams })

elseif cmd == 'putStream' then
  local stream = cjson.decode(ARGV[2])
  redis.call('HSET', STREAMS, stream.id, ARGV[2])
  ensureRoot(stream.id, stream, stream.updatedAt)
  return 'OK'

elseif cmd == 'deleteStream' then
  local s = ARGV[2]
  local members = redis.call('HKEYS', treeKey(s))
  for _, id in ipairs(members) do redis.call('SREM', nodeStreamsKey(id), s) end
  redis.call('DEL', treeKey(s), serveKey(s), parentsKey(s))
  redis.call('HDEL', STREAMS, s)
  -- Their child totals dropped: other streams' indexes may still mark them full.
  for _, id in ipairs(members) do refresh(id) end
  return 'OK'

elseif cmd == 'place' then
  local s, K, now, exclude = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), excludeSet(ARGV[5])
  local raw = redis.call('HGET', STREAMS, s)
  if not raw then return cjson.encode({ err = 'CASCADE_ERR_STREAM_NOT_FOUND' }) end
  local stream = cjson.decode(raw)
  if stream.state == 'ended' then return cjson.encode({ err = 'CASCADE_ERR_STREAM_ENDED' }) end
  ensureRoot(s, stream, now)
  local function result(id, attached)
    return cjson.encode({ nodeId = id, stream = stream, attached = attached })
  end
  local root = stream.originNodeId
  if usable(root, now, exclude) and hasViewerRoom(root) then
    addViewer(s, root)
    return result(root)
  end
  local served = scan(serveKey(s), function(id)
    if usable(id, now, exclude) and hasViewerRoom(id) then return id end
    return nil
  end)
  if served then
    addViewer(s, served)
    return result(served)
  end
  -- The relay first: when the tree is saturated that scan ends at once (see MemoryTopologyStore).
  local relay = scan(RELAYS, function(id)
    if redis.call('HEXISTS', treeKey(s), id) == 1 then return nil end
    if usable(id, now, exclude) and hasViewerRoom(id) then return id end
    return nil
  end)
  local parent = relay and pickParent(s, K, now, exclude, nil)
  if relay and parent then
    local depth = attach(s, relay, parent, now)
    addViewer(s, relay)
    return result(relay, { nodeId = relay, parentId = parent, depth = depth, childIp = getNode(relay).mediaIp })
  end
  return cjson.encode({ err = 'CASCADE_ERR_NODE_CAPACITY' })

elseif cmd == 'release' then
  local s, id = ARGV[2], ARGV[3]
  local e = getEntry(s, id)
  if e and e.viewers == 0 then return 'OK' end
  if e then
    e.viewers = e.viewers - 1
    putEntry(s, e)
  end
  if redis.call('HEXISTS', VIEWERS, id) == 1 then
    if viewersOf(id) > 0 then redis.call('HINCRBY', VIEWERS, id, -1) end
  end
  refresh(id)
  return 'OK'

elseif cmd == 'reparent' then
  local s, child, K, now, exclude = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), excludeSet(ARGV[6])
  local e = getEntry(s, child)
  if not e then return cjson.encode({}) end
  -- The root feeds the tree; it never gets a parent.
  local raw = redis.call('HGET', STREAMS, s)
  if raw and cjson.decode(raw).originNodeId == child then return cjson.encode({}) end
  local parent = pickParent(s, K, now, exclude, child)
  if not parent then return cjson.encode({}) end
  local old = e.parent
  if old ~= parent then
    if not isNull(old) then addChildCount(s, old, -1) end
    addChildCount(s, parent, 1)
  end
  e = getEntry(s, child)
  e.parent = parent
  e.since = now
  putEntry(s, e)
  local depth = getEntry(s, parent).depth + 1
  setDepth(s, child, depth)
  return cjson.encode({ parentId = parent, depth = depth })

elseif cmd == 'detach' then
  local s, id = ARGV[2], ARGV[3]
  local e = getEntry(s, id)
  if not e then return 1 end
  if e.children > 0 then return 0 end
  removeEntry(s, id)
  return 1

elseif cmd == 'ticketKey' then
  -- Atomic, so a key is never left half written (a crash between two commands would leave it so for good).
  local got = redis.call('HMGET', TICKETKEY, 'private', 'public')
  if got[1] and got[2] then return got end
  redis.call('HSET', TICKETKEY, 'private', ARGV[2], 'public', ARGV[3])
  return { ARGV[2], ARGV[3] }
end
return redis.error_reply('unknown command ' .. tostring(cmd))
`;

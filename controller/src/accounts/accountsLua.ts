import { luaKeyFunctions, luaLocals, redisKey } from '../store/lua.js';

/**
 * The Redis account store's writes that must be atomic, as one Lua script. Mirrors
 * MemoryAccountStore; the account store contract tests run the same scenarios against both.
 *
 * Keys (all under `cascade:`):
 *   cascade:accounts                    hash   accountId => AccountRecord JSON
 *   cascade:accounts:names              hash   folded name => accountId (unique names)
 *   cascade:accounts:order              zset   accountId => createdAt (listing in creation order)
 *   cascade:session:<sessionId>         string SessionRecord JSON, expiring with the session
 *   cascade:account:<accountId>:tokens  list   AccountTokenRecord JSON, newest first (MAX_ACCOUNT_TOKENS kept)
 *   cascade:revoked                     hash   tokenId => revokedAt (ms); permanent
 *   cascade:revocations                 channel tokenId, published once per new revocation
 *   cascade:ratelimit:<key>:<window>    string hits in that fixed window, expiring with it
 */
export const ACCOUNT_KEYS = {
  accounts: 'cascade:accounts',
  names: 'cascade:accounts:names',
  order: 'cascade:accounts:order',
  session: redisKey('cascade:session:{}'),
  tokens: redisKey('cascade:account:{}:tokens'),
  revoked: 'cascade:revoked',
  revocations: 'cascade:revocations',
  rateLimit: redisKey('cascade:ratelimit:{}:{}'),
} as const;

const K = ACCOUNT_KEYS;
const PRELUDE = [
  luaLocals({ ACCOUNTS: K.accounts, NAMES: K.names, ORDER: K.order, REVOKED: K.revoked, REVOCATIONS: K.revocations }),
  luaKeyFunctions({ tokensKey: K.tokens, rateLimitKey: K.rateLimit }),
].join('\n');

export const ACCOUNTS_LUA = PRELUDE + String.raw`
local op = ARGV[1]
if op == 'create' then
  -- ARGV: id, key, record JSON, createdAt
  if redis.call('HSETNX', NAMES, ARGV[3], ARGV[2]) == 0 then return 'TAKEN' end
  redis.call('HSET', ACCOUNTS, ARGV[2], ARGV[4])
  redis.call('ZADD', ORDER, tonumber(ARGV[5]), ARGV[2])
  return 'OK'
elseif op == 'addToken' then
  -- ARGV: accountId, token JSON, max kept
  local k = tokensKey(ARGV[2])
  redis.call('LPUSH', k, ARGV[3])
  redis.call('LTRIM', k, 0, tonumber(ARGV[4]) - 1)
  return 'OK'
elseif op == 'revoke' then
  -- ARGV: tokenId, revokedAt
  if redis.call('HSETNX', REVOKED, ARGV[2], ARGV[3]) == 0 then return 0 end
  redis.call('PUBLISH', REVOCATIONS, ARGV[2])
  return 1
elseif op == 'hit' then
  -- ARGV: key, windowMs, now
  local windowMs, now = tonumber(ARGV[3]), tonumber(ARGV[4])
  local window = math.floor(now / windowMs)
  local k = rateLimitKey(ARGV[2], window)
  local n = redis.call('INCR', k)
  -- Relative to the caller's clock (not Redis's): the window ends (window + 1) * windowMs.
  if n == 1 then redis.call('PEXPIRE', k, math.max(1, (window + 1) * windowMs - now)) end
  return n
end
return redis.error_reply('unknown op ' .. tostring(op))
`;

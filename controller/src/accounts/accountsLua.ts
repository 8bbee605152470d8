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
  session: (id: string) => `cascade:session:${id}`,
  tokens: (accountId: string) => `cascade:account:${accountId}:tokens`,
  revoked: 'cascade:revoked',
  revocations: 'cascade:revocations',
} as const;

export const ACCOUNTS_LUA = String.raw`
local op = ARGV[1]
if op == 'create' then
  -- ARGV: id, key, record JSON, createdAt
  if redis.call('HSETNX', 'cascade:accounts:names', ARGV[3], ARGV[2]) == 0 then return 'TAKEN' end
  redis.call('HSET', 'cascade:accounts', ARGV[2], ARGV[4])
  redis.call('ZADD', 'cascade:accounts:order', tonumber(ARGV[5]), ARGV[2])
  return 'OK'
elseif op == 'addToken' then
  -- ARGV: accountId, token JSON, max kept
  local k = 'cascade:account:' .. ARGV[2] .. ':tokens'
  redis.call('LPUSH', k, ARGV[3])
  redis.call('LTRIM', k, 0, tonumber(ARGV[4]) - 1)
  return 'OK'
elseif op == 'revoke' then
  -- ARGV: tokenId, revokedAt
  if redis.call('HSETNX', 'cascade:revoked', ARGV[2], ARGV[3]) == 0 then return 0 end
  redis.call('PUBLISH', 'cascade:revocations', ARGV[2])
  return 1
elseif op == 'hit' then
  -- ARGV: key, windowMs, now
  local windowMs, now = tonumber(ARGV[3]), tonumber(ARGV[4])
  local window = math.floor(now / windowMs)
  local k = 'cascade:ratelimit:' .. ARGV[2] .. ':' .. window
  local n = redis.call('INCR', k)
  -- Relative to the caller's clock (not Redis's): the window ends (window + 1) * windowMs.
  if n == 1 then redis.call('PEXPIRE', k, math.max(1, (window + 1) * windowMs - now)) end
  return n
end
return redis.error_reply('unknown op ' .. tostring(op))
`;

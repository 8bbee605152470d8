import { describe, expect, it } from 'vitest';
import { luaKeyFunctions, luaLocals, luaString, redisKey } from '../src/store/lua.js';
import { ACCOUNTS_LUA } from '../src/accounts/accountsLua.js';
import { LEDGER_LUA } from '../src/credits/ledgerLua.js';
import { TOPOLOGY_LUA } from '../src/store/redisScript.js';
import { HEARTBEAT_PRUNE_GRACE_MS, RECONCILE_GRACE_MS } from '../src/store/scores.js';

describe('lua', () => {
  it('redisKey() fills its ids in order', () => {
    const k = redisKey('cascade:credit:bind:{}:{}:{}');
    expect(k('s', 'st', 'n')).toBe('cascade:credit:bind:s:st:n');
    expect(redisKey('cascade:stream:{}:tree')('x')).toBe('cascade:stream:x:tree');
  });

  it('luaKeyFunctions() writes the same key as the TypeScript function', () => {
    expect(luaKeyFunctions({ treeKey: redisKey('cascade:stream:{}:tree'), bindKey: redisKey('a:{}:{}') })).toBe(
      "local function treeKey(a1) return 'cascade:stream:' .. a1 .. ':tree' end\n" +
        "local function bindKey(a1, a2) return 'a:' .. a1 .. ':' .. a2 end",
    );
  });

  it('luaLocals() writes numbers and strings, and refuses what Lua cannot read back', () => {
    expect(luaLocals({ FULL: 1e13, NODES: 'cascade:nodes' })).toBe("local FULL = 10000000000000\nlocal NODES = 'cascade:nodes'");
    expect(() => luaLocals({ X: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    expect(() => luaString("it's")).toThrow(TypeError);
  });

  it('the scripts take their constants and key names from TypeScript', () => {
    expect(TOPOLOGY_LUA).toContain(`local PRUNE_GRACE = ${HEARTBEAT_PRUNE_GRACE_MS}`);
    expect(TOPOLOGY_LUA).toContain(`local RECONCILE_GRACE = ${RECONCILE_GRACE_MS}`);
    for (const script of [TOPOLOGY_LUA, LEDGER_LUA, ACCOUNTS_LUA]) {
      // Below the prelude (the generated lines at the top) no key name is spelled out by hand.
      const lines = script.split('\n');
      const prelude = lines.findIndex((l) => !/^local (function \w+\([\w, ]*\) return .* end|[A-Z_]+ = \S+)$/.test(l));
      expect(prelude).toBeGreaterThan(0);
      expect(lines.slice(prelude).join('\n')).not.toMatch(/'cascade:/);
    }
  });
});

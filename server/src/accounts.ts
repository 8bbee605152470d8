import type { Logger } from '@cascade/protocol';
import type { CascadeConfig } from '@cascade/config';
import {
  AccountService,
  Argon2Hasher,
  CreditService,
  MemoryAccountStore,
  MemoryLedgerStore,
  RedisAccountStore,
  RedisLedgerStore,
  RelayTokens,
  RevocationList,
  TokenService,
  type AccountStore,
  type LedgerStore,
  type TopologyStore,
} from '@cascade/controller';

/** Tokens, revocations, accounts and the ledger of one process, as the config asks. */
export interface Identity {
  tokens: TokenService;
  revocations: RevocationList;
  relayTokens: RelayTokens;
  accountStore: AccountStore;
  ledger: LedgerStore;
  /** Absent when accounts.enabled is false. */
  accounts: AccountService | undefined;
  close(): Promise<void>;
}

/**
 * Part of the composition root: the account and ledger stores (Redis when a URL is configured,
 * in process otherwise, like the topology store), the revocation list every token check asks,
 * and the services on top. Resolves once revocations are loaded, so no revoked token is taken
 * in the first moments after a start.
 */
export async function startIdentity(config: Readonly<CascadeConfig>, deps: { secret: string; logger: Logger }): Promise<Identity> {
  const url = config.redis.url;
  const accountStore: AccountStore = url ? await RedisAccountStore.connect({ url }, deps) : new MemoryAccountStore();
  const ledger: LedgerStore = url ? await RedisLedgerStore.connect({ url }, deps) : new MemoryLedgerStore();
  const revocations = new RevocationList(accountStore, deps);
  await revocations.start();
  const tokens = new TokenService(deps.secret, { issuer: config.auth.issuer, revocations });
  const relayTokens = new RelayTokens({ ttlSec: config.auth.relayTokenTtlSec }, { tokens, revocations, logger: deps.logger });
  const a = config.accounts;
  const accounts = a.enabled
    ? new AccountService(
        {
          sessionTtlSec: a.sessionTtlSec,
          signInPerMinute: a.signInPerMinute,
          signUpPerHour: a.signUpPerHour,
          signUpPerMinuteTotal: a.signUpPerMinuteTotal,
          relayTokenTtlSec: config.auth.relayTokenTtlSec,
          broadcastTokenTtlSec: a.broadcastTokenTtlSec,
          signupGrantMicro: Math.round(config.credits.signupGrant * 1e6),
        },
        { store: accountStore, ledger, tokens, revocations, hasher: new Argon2Hasher(a.passwordHashConcurrency), secret: deps.secret, logger: deps.logger },
      )
    : undefined;
  return {
    tokens,
    revocations,
    relayTokens,
    accountStore,
    ledger,
    accounts,
    async close() {
      relayTokens.close();
      revocations.close();
      await Promise.all([accountStore.close(), ledger.close()]);
    },
  };
}

/** The credit side: settlements run on every controller instance (each step is atomic in the store). */
export function startCredits(config: Readonly<CascadeConfig>, identity: Identity, deps: { topology: TopologyStore; logger: Logger }): CreditService {
  const credits = new CreditService(
    { ...config.credits },
    { ledger: identity.ledger, topology: deps.topology, accounts: identity.accountStore, logger: deps.logger },
  );
  if (config.roles.includes('controller')) credits.start();
  return credits;
}

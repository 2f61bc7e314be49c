import { startFakeStripe, type FakeStripe, type FakeStripeOptions } from '@gatehouse/stripe';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from './index';
import { startServerProcess, type ServerProcess } from './server-process';

// One started `gatehouse serve` on a fresh database and the fake Stripe API, for suites that share it.

export type GatehouseUnderTest = {
  server: ServerProcess;
  db: TestDatabase;
  fake: FakeStripe;
  env: Record<string, string | undefined>;
  /** Rows in the PostgreSQL ledger. */
  ledgerCount(): Promise<number>;
  close(): Promise<void>;
};

export async function startGatehouseUnderTest(
  env: Record<string, string | undefined>,
  prefix = 'gh_e2e',
  fakeOptions: FakeStripeOptions = {},
): Promise<GatehouseUnderTest> {
  const db = await createTestDatabase(prefix);
  const fake = await startFakeStripe(fakeOptions);
  const fullEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: db.url,
    STRIPE_API_BASE: fake.url,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  };
  const started = await startServerProcess(fullEnv);
  if (!started.ok) {
    await fake.close();
    await db.drop();
    throw new Error(`server did not start:\n${started.output}`);
  }
  const server = started.server;
  return {
    server,
    db,
    fake,
    env: fullEnv,
    async ledgerCount() {
      const c = new Client({ connectionString: db.url });
      await c.connect();
      try {
        const r = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM ledger_log');
        return Number(r.rows[0].n);
      } finally {
        await c.end();
      }
    },
    async close() {
      await server.stop('SIGINT');
      await fake.close();
      await db.drop();
    },
  };
}

/** Runs `tasks` with at most `limit` in flight, keeping their order in the result. */
export async function inPool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

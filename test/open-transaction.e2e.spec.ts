import { Client } from 'pg';
import { eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { adminToken, graphqlClient } from './support/webhook-client';

// The PostgreSQL ledger hands readers of every community only what no open transaction can still
// precede. A transaction left open on the database server (a session someone forgot in BEGIN)
// therefore holds the projector back: the server says so, naming the session, and catches up once
// it ends.

const jwtSecret = 'open-transaction-e2e-'.padEnd(40, 'x');

describe('a transaction left open on the database server', () => {
  let gh: GatehouseUnderTest;

  beforeAll(async () => {
    gh = await startGatehouseUnderTest({ GATEHOUSE_JWT_SECRET: jwtSecret }, 'gh_open_tx');
  }, 120_000);
  afterAll(() => gh?.close());

  it('holds the projections back; the server names it, and catches up when it ends', async () => {
    const gql = graphqlClient(gh.server.url, adminToken(jwtSecret));
    const blocker = new Client({ connectionString: gh.db.url });
    await blocker.connect();
    try {
      const pid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_current_xact_id()');
      const openedAt = (await blocker.query<{ at: Date }>("SELECT 'forgotten in a transaction', now() AS at"))
        .rows[0].at;
      // The change is recorded; it cannot be shown while the transaction is open.
      await expect(gql.createCommunity('Held back')).rejects.toThrow(/recorded but is not visible yet/);
      await gh.server.says('projections wait for a transaction left open on the database server', 15_000);
      const line = gh.server
        .output()
        .split('\n')
        .find((l) => l.includes('projections wait for a transaction left open'))!;
      const said = JSON.parse(line) as {
        level: number;
        waitingSeconds: number;
        transaction: { pid: number; state: string; query: string; startedAt: string };
      };
      expect(said.level).toBe(40);
      expect(said.waitingSeconds).toBeGreaterThanOrEqual(10);
      // The oldest transaction on the database server: this one, unless a suite beside this one
      // (the server is shared) has one open that is older still.
      if (said.transaction.pid === pid)
        expect(said.transaction).toMatchObject({
          state: 'idle in transaction',
          query: "SELECT 'forgotten in a transaction', now() AS at",
        });
      else expect(Date.parse(said.transaction.startedAt)).toBeLessThanOrEqual(openedAt.getTime());
      // The projector shows as behind, not as caught up.
      const metrics = await (await fetch(`${gh.server.url}/metrics`)).text();
      expect(
        Number(/^gatehouse_projector_lag_events\{region="\w+"\} (\d+)$/m.exec(metrics)?.[1]),
      ).toBeGreaterThan(0);

      await blocker.query('COMMIT');
      // Projected once it ended; the next change is shown at once.
      await eventually(async () => {
        const { rows } = await blocker.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM catalog_communities WHERE name = 'Held back'",
        );
        return rows[0].n === 1 ? true : undefined;
      }, 10_000);
      expect(await gql.createCommunity('Not held back')).toEqual(expect.any(String));
    } finally {
      await blocker.end();
    }
  }, 60_000);
});

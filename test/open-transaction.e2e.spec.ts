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
      await blocker.query("SELECT 'forgotten in a transaction'");
      // The change is recorded; it cannot be shown while the transaction is open.
      await expect(gql.createCommunity('Held back')).rejects.toThrow(/recorded but is not visible yet/);
      await gh.server.says('projections wait for a transaction left open on the database server', 15_000);
      const line = gh.server
        .output()
        .split('\n')
        .find((l) => l.includes('projections wait for a transaction left open'))!;
      expect(JSON.parse(line)).toMatchObject({
        level: 40,
        transaction: { pid, state: 'idle in transaction', query: "SELECT 'forgotten in a transaction'" },
      });
      expect(JSON.parse(line).waitingSeconds).toBeGreaterThanOrEqual(10);

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

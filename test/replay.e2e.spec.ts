import net from 'node:net';
import { Client } from 'pg';
import { signToken } from '@gatehouse/api';
import { PostgresLedger } from '@gatehouse/ledger';
import { stripeEventToLedgerFact, stripeTestKit as kit } from '@gatehouse/stripe';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { graphqlAs } from './support/e2e-calls';
import { runGatehouse as gatehouse, startServerProcess, type ServerProcess } from './support/server-process';

// `gatehouse replay` as an operator runs it: against the running server, and with no server at all,
// where it rebuilds read models that were damaged by hand from the ledger alone.

const secret = 'replay-e2e-secret-'.padEnd(40, 'x');

/** A port nothing listens on, so the default server URL does not answer. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('gatehouse replay', () => {
  let db: TestDatabase;
  let server: ServerProcess | undefined;
  const env = () => ({
    DATABASE_URL: db.url,
    GATEHOUSE_JWT_SECRET: secret,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
  });
  const admin = signToken(secret, { sub: 'ops', roles: ['platform-admin'] });
  const gql = graphqlAs(() => server!.url, admin);

  async function start(): Promise<void> {
    const started = await startServerProcess({ PATH: process.env.PATH, ...env(), PORT: '0' });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;
  }

  async function stop(): Promise<void> {
    await server?.stop('SIGTERM');
    server = undefined;
  }

  beforeAll(async () => {
    db = await createTestDatabase('gh_replay');
  });
  afterAll(async () => {
    await stop();
    await db.drop();
  });

  it('rebuilds on the running server and on the stores alone, restoring read models from the ledger', async () => {
    await start();
    const { createCommunity } = await gql(
      'mutation { createCommunity(input: { name: "Replayed", region: EU }) { id } }',
    );
    const communityId = createCommunity.id as string;
    const grant = await gql(
      `mutation($i: GrantAccessInput!) { grantComplimentaryAccess(input: $i) { allowed } }`,
      { i: { communityId, memberId: 'mem_replay', resource: { kind: 'COMMUNITY' }, reason: 'founder' } },
    );
    expect(grant.grantComplimentaryAccess.allowed).toBe(true);

    // On the running server: every projection reports the events it replayed.
    const online = await gatehouse(['replay', '--url', server!.url], env());
    expect(online.err).toContain(`on the server at ${server!.url}`);
    expect(online.code).toBe(0);
    // The ledger holds two facts: the community and the grant.
    for (const projection of ['ledger-archive', 'catalog', 'membership-access', 'commerce', 'tiers'])
      expect(online.out).toMatch(new RegExp(`^${projection}\\s+2 events replayed`, 'm'));
    const access = `query($c: ID!) { canAccess(communityId: $c, memberId: "mem_replay", resource: { kind: COMMUNITY }) { allowed }
      community(id: $c) { name } }`;
    expect(await gql(access, { c: communityId })).toEqual({
      canAccess: { allowed: true },
      community: { name: 'Replayed' },
    });
    await stop();

    // Read models damaged by hand while no server runs.
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      await pg.query('DELETE FROM catalog_communities');
      await pg.query('DELETE FROM access_grants');
    } finally {
      await pg.end();
    }

    const port = String(await freePort());
    const offline = await gatehouse(['replay'], { ...env(), PORT: port });
    expect(offline.err).toContain(
      `no server answers at http://localhost:${port}: replaying the ledger in this process`,
    );
    expect(offline.code).toBe(0);
    expect(offline.out).toMatch(/^catalog\s+\[us\]\s+2 events replayed/m);
    expect(offline.out).toMatch(/^membership-access\s+\[us\]\s+2 events replayed/m);

    await start();
    expect(await gql(access, { c: communityId })).toEqual({
      canAccess: { allowed: true },
      community: { name: 'Replayed' },
    });
  }, 180_000);

  it('refuses to replay in its own process while a server it does not reach projects the same read models', async () => {
    await stop();
    await start();
    const port = String(await freePort());
    const refused = await gatehouse(['replay'], { ...env(), PORT: port });
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain(
      'us: a server projects these read models (it holds the projector lease): replay on it with --url, or stop it first',
    );
    expect(refused.out).toBe('');
    await stop();
  }, 120_000);

  it('reports the progress of each projection on a long ledger', async () => {
    const long = await createTestDatabase('gh_replay_long');
    try {
      // 21,000 Stripe events of communities Gatehouse does not know: every projection reads them all.
      const ledger = new PostgresLedger({ connectionString: long.url });
      await ledger.init();
      const now = Math.floor(Date.now() / 1000);
      for (let b = 0; b < 21; b++) {
        await ledger.append(
          Array.from({ length: 1_000 }, (_, i) => {
            const e = kit.invoicePaid(
              { subscription: kit.stripeId('sub'), lines: [{ amount: 900, priceId: 'price_gold' }] },
              { apiVersion: '2025-03-31.basil', created: now },
            );
            return stripeEventToLedgerFact(e, `history-${(b * 1_000 + i) % 50}`);
          }),
        );
      }
      await ledger.close();
      const run = await gatehouse(['replay'], {
        ...env(),
        DATABASE_URL: long.url,
        PORT: String(await freePort()),
      });
      expect(run.code).toBe(0);
      for (const projection of ['ledger-archive', 'membership-access', 'tiers']) {
        expect(run.err).toContain(`us: ${projection}: 10000 events replayed`);
        expect(run.err).toContain(`us: ${projection}: 20000 events replayed`);
        expect(run.out).toMatch(new RegExp(`^${projection}\\s+\\[us\\]\\s+21000 events replayed`, 'm'));
      }
    } finally {
      await long.drop();
    }
  }, 240_000);

  it('says so when the server it is pointed at does not answer', async () => {
    const port = await freePort();
    const run = await gatehouse(['replay', '--url', `http://127.0.0.1:${port}`], env());
    expect(run.code).toBe(1);
    expect(run.err).toContain(`no server answers at http://127.0.0.1:${port}`);
  });
});

import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { createTestDatabase, eventually, type TestDatabase } from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';
import {
  adminToken,
  graphqlClient,
  ledgerRowsFor,
  postWebhook,
  unixNow,
  withDatabase,
} from './support/webhook-client';

// The connections of `gatehouse serve`: kept open while idle for longer than a load balancer keeps
// its own; and when the server is stopped (a rolling deploy, Ctrl-C) while Stripe delivers, what it
// has begun to answer is answered, for up to GATEHOUSE_SHUTDOWN_GRACE_SECONDS, and nothing it
// acknowledged is lost. A webhook is held inside its append by a lock on its community's ledger
// sequence, taken here as the ledger takes it, so that it is surely in flight when the signal arrives.

const jwtSecret = 'shutdown-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_shutdown_e2e';
const run = randomBytes(4).toString('hex');
const account = `acct_shutdown${run}`;

type Outcome = { status: number; body: Record<string, unknown> } | { error: string };

describe('gatehouse serve’s HTTP connections', () => {
  let db: TestDatabase;
  let communityId: string;
  let server: ServerProcess | undefined;
  let lock: Client | undefined;

  const start = async (extra: Record<string, string> = {}) => {
    const started = await startServerProcess({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      GATEHOUSE_JWT_SECRET: jwtSecret,
      STRIPE_WEBHOOK_SECRET: whsec,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...extra,
    });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;
    return started.server;
  };

  /** Holds every append to the community until `release`. */
  const holdAppends = async () => {
    lock = new Client({ connectionString: db.url });
    await lock.connect();
    await lock.query(`SELECT pg_advisory_lock(hashtextextended('ledger_log:' || $1, 0))`, [communityId]);
    const held = lock;
    return async () => {
      await held.query('SELECT pg_advisory_unlock_all()');
      await held.end();
      lock = undefined;
    };
  };

  const waitingAppends = () =>
    withDatabase(db.url, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
      );
      return rows[0].n;
    });

  const recorded = (id: string) => ledgerRowsFor(db.url, id);

  /** A signed event for the community, posted; resolves with the answer or the connection's failure. */
  const sendHeld = async (url: string) => {
    const event = kit.customerSubscriptionUpdated(
      { id: kit.stripeId('sub'), status: 'active', priceId: 'price_gold' },
      { apiVersion: '2025-03-31.basil', created: unixNow(), account },
    );
    const { rawBody, header } = kit.signPayload(event, whsec, unixNow());
    let settled = false;
    const outcome: Promise<Outcome> = postWebhook(url, rawBody, header).then(
      (r) => r,
      (err: Error & { cause?: { code?: string } }) => ({ error: err.cause?.code ?? err.message }),
    );
    void outcome.then(() => (settled = true));
    await eventually(async () => ((await waitingAppends()) > 0 ? true : undefined), 20_000, 25);
    return { event, outcome, settled: () => settled };
  };

  beforeAll(async () => {
    db = await createTestDatabase('shutdown_e2e');
    const first = await start();
    communityId = await graphqlClient(first.url, adminToken(jwtSecret)).createCommunity('Shutdown', account);
    expect(await first.stop('SIGTERM')).toBe(0);
  }, 180_000);

  afterEach(async () => {
    if (lock) await lock.end().catch(() => undefined);
    lock = undefined;
    await server?.stop('SIGKILL');
    server = undefined;
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  }, 60_000);

  it('keeps idle connections open 65 s (longer than an AWS load balancer keeps its own); GATEHOUSE_KEEP_ALIVE_SECONDS sets it', async () => {
    const keepAlive = async (s: ServerProcess) => (await fetch(`${s.url}/healthz`)).headers.get('keep-alive');
    expect(await keepAlive(await start())).toBe('timeout=65');
    expect(await server!.stop('SIGTERM')).toBe(0);
    expect(await keepAlive(await start({ GATEHOUSE_KEEP_ALIVE_SECONDS: '75' }))).toBe('timeout=75');
  }, 90_000);

  it('a webhook being recorded when the server is told to stop is answered 200 before it exits 0, refusing new connections meanwhile', async () => {
    const s = await start();
    const release = await holdAppends();
    const held = await sendHeld(s.url);

    const exited = s.stop('SIGTERM');
    await s.says('"msg":"answering open requests"');
    await expect(fetch(`${s.url}/healthz`)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
    await new Promise((r) => setTimeout(r, 500));
    expect(held.settled()).toBe(false);
    expect(s.child.exitCode).toBeNull();

    await release();
    expect(await held.outcome).toEqual({
      status: 200,
      body: { received: true, id: held.event.id, duplicate: false },
    });
    expect(await exited).toBe(0);
    expect(await recorded(held.event.id)).toBe(1);
  }, 90_000);

  it('a webhook still being recorded at the end of GATEHOUSE_SHUTDOWN_GRACE_SECONDS is cut, and recorded all the same', async () => {
    const s = await start({ GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '1' });
    const release = await holdAppends();
    const held = await sendHeld(s.url);

    const signalled = Date.now();
    const exited = s.stop('SIGTERM');
    const outcome = await held.outcome;
    const after = Date.now() - signalled;
    expect(outcome).toHaveProperty('error');
    expect(after).toBeGreaterThanOrEqual(900);
    expect(after).toBeLessThan(10_000);
    // The server's log reaches this process on its own time.
    await s.says('requests still open at the end of the shutdown grace period');

    // The append under way is let finish before the ledger closes: Stripe's retry finds it recorded.
    await release();
    expect(await exited).toBe(0);
    expect(await recorded(held.event.id)).toBe(1);
  }, 90_000);

  it('a second stop signal stops waiting for the webhook being recorded', async () => {
    const s = await start();
    const release = await holdAppends();
    const held = await sendHeld(s.url);

    const exited = s.stop('SIGTERM');
    await s.says('"msg":"answering open requests"');
    const signalled = Date.now();
    s.child.kill('SIGINT');
    const outcome = await held.outcome;
    expect(outcome).toHaveProperty('error');
    // Well inside the default grace period of 15 s.
    expect(Date.now() - signalled).toBeLessThan(5_000);
    await s.says('"msg":"stopping now"');

    await release();
    expect(await exited).toBe(0);
    expect(await recorded(held.event.id)).toBe(1);
  }, 90_000);
});

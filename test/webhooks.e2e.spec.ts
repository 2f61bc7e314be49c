import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startFakeStripe, stripeTestKit as kit, type FakeStripe, type StripeEvent } from '@gatehouse/stripe';
import {
  createTestDatabase,
  describeKafka,
  eventually,
  testDatabaseServerUrl,
  type TestDatabase,
} from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';
import {
  adminToken,
  graphqlClient,
  postWebhook,
  runCli,
  stripeV1,
  takeDatabaseDown,
  unixNow,
  withDatabase,
  type LedgerEventNode,
} from './support/webhook-client';

// Stripe webhooks through the started server (`gatehouse serve`), on the PostgreSQL ledger and on
// the Kafka ledger: verification over HTTP, durable-then-2xx, Connect routing, quarantine, outage
// and the reconciler run as a CLI child process.

const jwtSecret = 'webhooks-e2e-secret-'.padEnd(40, 'x');
const OLD_SECRET = 'whsec_webhooks_e2e_old';
const NEW_SECRET = 'whsec_webhooks_e2e_new';
const token = adminToken(jwtSecret);
const SHAPES = ['2024-06-20', '2025-03-31.basil', '2025-09-30.clover'] as const;

type Variant = {
  /** Extra environment for the server and the CLI (the Kafka ledger's brokers and topic). */
  env: Record<string, string>;
  /** Rows in the table that holds what the ledger accepted (the log, or the Kafka id index). */
  ledgerTable: string;
};

function signed(event: StripeEvent | string, secret = NEW_SECRET, timestamp = unixNow()) {
  return kit.signPayload(event, secret, timestamp);
}

function webhookSuite(variant: () => Variant): void {
  const run = randomBytes(4).toString('hex');
  const account = `acct_known${run}`;
  const platformCommunity = `platform_${run}`;
  let db: TestDatabase;
  let fake: FakeStripe;
  let server: ServerProcess;
  let gql: ReturnType<typeof graphqlClient>;
  let communityId: string;
  let env: Record<string, string | undefined>;

  const ledgerRows = () =>
    withDatabase(db.url, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${variant().ledgerTable}`,
      );
      return rows[0].n;
    });
  const rowsFor = (id: string) =>
    withDatabase(db.url, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${variant().ledgerTable} WHERE id = $1`,
        [id],
      );
      return rows[0].n;
    });
  const stripeEvents = async (community: string) =>
    (await gql.ledgerEvents(community)).filter((e) => e.source === 'stripe');
  const shows = (community: string, id: string, times = 1) =>
    eventually(async () => {
      const found = (await stripeEvents(community)).filter((e) => e.id === id);
      return found.length >= times ? found : undefined;
    }, 20_000);
  const subscriptionEvent = (extra: { account?: string | null; apiVersion?: (typeof SHAPES)[number] } = {}) =>
    kit.customerSubscriptionUpdated(
      { id: kit.stripeId('sub'), status: 'active', priceId: 'price_gold' },
      {
        apiVersion: extra.apiVersion ?? '2025-03-31.basil',
        created: unixNow(),
        ...(extra.account !== null && { account: extra.account ?? account }),
      },
    );

  beforeAll(async () => {
    db = await createTestDatabase('webhooks_e2e');
    fake = await startFakeStripe();
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      GATEHOUSE_JWT_SECRET: jwtSecret,
      STRIPE_SECRET_KEY: 'sk_test_webhooks_e2e',
      STRIPE_API_BASE: fake.url,
      STRIPE_PLATFORM_COMMUNITY_ID: platformCommunity,
      LOG_LEVEL: 'warn',
      ...variant().env,
    };
    const started = await startServerProcess({
      ...env,
      STRIPE_WEBHOOK_SECRET: `${OLD_SECRET},${NEW_SECRET}`,
      PORT: '0',
      HOST: '127.0.0.1',
    });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;
    gql = graphqlClient(server.url, token);
    communityId = await gql.createCommunity('Makers', account);
  }, 180_000);

  afterAll(async () => {
    await server?.stop('SIGINT');
    await fake?.close();
    await db?.drop();
  }, 60_000);

  it.each(SHAPES)(
    'records a signed %s event once, verbatim, and ledgerEvents shows it in its community',
    async (apiVersion) => {
      const event = subscriptionEvent({ apiVersion });
      const { rawBody, header } = signed(event);
      const before = await ledgerRows();

      const first = await postWebhook(server.url, rawBody, header);
      expect(first).toEqual({ status: 200, body: { received: true, id: event.id, duplicate: false } });
      expect(await ledgerRows()).toBe(before + 1);

      const [node] = await shows(communityId, event.id);
      expect(node).toMatchObject({
        id: event.id,
        type: 'customer.subscription.updated',
        communityId,
        subject: event.data.object.id,
        source: 'stripe',
        occurredAt: new Date(event.created * 1000).toISOString(),
      });
      expect(node.data).toEqual(JSON.parse(rawBody.toString('utf8')));
      expect(node.data.api_version).toBe(apiVersion);

      // A redelivery is acknowledged and not written again.
      const again = await postWebhook(server.url, rawBody, header);
      expect(again).toEqual({ status: 200, body: { received: true, id: event.id, duplicate: true } });
      expect(await rowsFor(event.id)).toBe(1);
    },
    60_000,
  );

  it('an event signed with `gatehouse stripe sign` and sent with curl lands once and shows in ledgerEvents', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gh-curl-'));
    try {
      const event = subscriptionEvent();
      const file = path.join(dir, 'event.json');
      writeFileSync(file, `${JSON.stringify(event, null, 2)}\n`);
      const cliEnv = { ...env, STRIPE_WEBHOOK_SECRET: NEW_SECRET };
      const sign = async (...args: string[]) => {
        const r = await runCli(['stripe', 'sign', ...args], cliEnv);
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
        return r.stdout.trim();
      };
      /** The HTTP status curl saw, and the body. */
      const curl = async (payload: string, header: string) => {
        const { stdout } = await promisify(execFile)('curl', [
          '-sS',
          '-X',
          'POST',
          `${server.url}/webhooks/stripe`,
          '-H',
          'content-type: application/json',
          '-H',
          `stripe-signature: ${header}`,
          '--data-binary',
          `@${payload}`,
          '-w',
          '\n%{http_code}',
        ]);
        const lines = stdout.trimEnd().split('\n');
        return { status: Number(lines.pop()), body: JSON.parse(lines.join('\n')) as unknown };
      };

      const header = await sign(file);
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(await curl(file, header)).toEqual({
        status: 200,
        body: { received: true, id: event.id, duplicate: false },
      });
      expect(await curl(file, header)).toEqual({
        status: 200,
        body: { received: true, id: event.id, duplicate: true },
      });
      const [node] = await shows(communityId, event.id);
      expect(node).toMatchObject({ id: event.id, type: 'customer.subscription.updated', communityId });
      expect(node.data).toEqual(event);
      expect(await rowsFor(event.id)).toBe(1);

      // The same header on a changed body, and a signature made 301 s ago, are refused.
      const other = subscriptionEvent();
      const tampered = path.join(dir, 'tampered.json');
      writeFileSync(tampered, readFileSync(file, 'utf8').replaceAll(event.id, other.id));
      expect((await curl(tampered, header)).status).toBe(400);
      const stale = await sign(path.join(dir, 'tampered.json'), '--timestamp', String(unixNow() - 301));
      expect((await curl(tampered, stale)).status).toBe(400);
      expect(await rowsFor(other.id)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  describe('signature matrix over HTTP', () => {
    const refused: string[] = [];
    const accepted: string[] = [];

    type Build = (event: StripeEvent) => { body: string | Buffer; header: string | undefined };
    const refusedCases: [string, Build][] = [
      ['no Stripe-Signature header', (e) => ({ body: signed(e).rawBody, header: undefined })],
      [
        'a header without t',
        (e) => {
          const s = signed(e);
          return { body: s.rawBody, header: s.header.replace(/^t=\d+,/, '') };
        },
      ],
      ['a header without v1', (e) => ({ body: signed(e).rawBody, header: `t=${unixNow()}` })],
      ['signed with a secret the server does not have', (e) => signedWith(e, 'whsec_somebody_else')],
      [
        'a body changed after signing',
        (e) => {
          const s = signed(e);
          return { body: s.rawBody.toString('utf8').replace('"active"', '"canceled"'), header: s.header };
        },
      ],
      [
        'the same JSON re-serialised (other bytes)',
        (e) => {
          const s = signed(e);
          return { body: JSON.stringify(JSON.parse(s.rawBody.toString('utf8'))), header: s.header };
        },
      ],
      ['a timestamp 301 s old', (e) => signedWith(e, NEW_SECRET, unixNow() - 301)],
      ['a timestamp far in the future (1 h)', (e) => signedWith(e, NEW_SECRET, unixNow() + 3600)],
      [
        'two v1, neither valid',
        (e) => {
          const ts = unixNow();
          const body = signed(e, NEW_SECRET, ts).rawBody;
          return { body, header: `t=${ts},v1=${stripeV1('whsec_x', ts, body)},v1=${'0'.repeat(64)}` };
        },
      ],
    ];
    const cases: [string, Build, 200 | 400][] = [
      ...refusedCases.map(([name, build]): [string, Build, 400] => [name, build, 400]),
      ['a timestamp 299 s old', (e) => signedWith(e, NEW_SECRET, unixNow() - 299), 200],
      [
        'two v1, one valid',
        (e) => {
          const ts = unixNow();
          const body = signed(e, NEW_SECRET, ts).rawBody;
          return { body, header: `t=${ts},v1=${'0'.repeat(64)},v1=${stripeV1(NEW_SECRET, ts, body)}` };
        },
        200,
      ],
      ['signed with the older of two configured secrets', (e) => signedWith(e, OLD_SECRET), 200],
      ['signed with the newer of two configured secrets', (e) => signedWith(e, NEW_SECRET), 200],
    ];

    function signedWith(e: StripeEvent, secret: string, ts = unixNow()) {
      const s = signed(e, secret, ts);
      return { body: s.rawBody, header: s.header };
    }

    const table = cases.map(([name, build, status]) => ({ name, build, status }));
    it.each(table)('$name → $status', async ({ build, status }) => {
      const event = subscriptionEvent();
      const before = await ledgerRows();
      const { body, header } = build(event);
      const res = await postWebhook(server.url, body, header);
      expect(res.status).toBe(status);
      if (status === 400) {
        refused.push(event.id);
        expect(res.body).toMatchObject({ error: { code: expect.any(String) } });
        expect(await ledgerRows()).toBe(before);
      } else {
        accepted.push(event.id);
        expect(await rowsFor(event.id)).toBe(1);
      }
    });

    it('nothing refused reaches ledgerEvents, everything accepted does', async () => {
      const sentinel = subscriptionEvent();
      expect((await postWebhook(server.url, signed(sentinel).rawBody, signed(sentinel).header)).status).toBe(
        200,
      );
      await shows(communityId, sentinel.id);
      const ids = new Set((await stripeEvents(communityId)).map((e) => e.id));
      expect(refused.filter((id) => ids.has(id))).toEqual([]);
      expect(accepted.filter((id) => !ids.has(id))).toEqual([]);
      expect(refused).toHaveLength(9);
    }, 30_000);
  });

  it.each([
    ['a JSON object that is not an event', '{"hello":"world"}'],
    [
      'an event without a type',
      JSON.stringify({ id: 'evt_notype', object: 'event', created: 1, data: { object: {} } }),
    ],
    ['text that is not JSON', 'this is not json'],
  ])('a correctly signed body that is %s → 400, nothing written', async (_name, text) => {
    const before = await ledgerRows();
    const { rawBody, header } = signed(text);
    const res = await postWebhook(server.url, rawBody, header);
    expect(res.status).toBe(400);
    expect(await ledgerRows()).toBe(before);
  });

  it('the same event delivered 10 times at once is recorded once', async () => {
    const event = subscriptionEvent();
    const { rawBody, header } = signed(event);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => postWebhook(server.url, rawBody, header)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(await rowsFor(event.id)).toBe(1);
    await shows(communityId, event.id);
    const later = (await stripeEvents(communityId)).filter((e) => e.id === event.id);
    expect(later).toHaveLength(1);
  }, 30_000);

  it("keeps both of Stripe's twin events (two ids, the same change)", async () => {
    const first = subscriptionEvent();
    const twin: StripeEvent = { ...structuredClone(first), id: kit.stripeId('evt') };
    for (const e of [first, twin]) {
      const { rawBody, header } = signed(e);
      expect((await postWebhook(server.url, rawBody, header)).status).toBe(200);
    }
    await shows(communityId, first.id);
    await shows(communityId, twin.id);
    const both = (await stripeEvents(communityId)).filter((e) => e.id === first.id || e.id === twin.id);
    expect(both.map((e) => e.data.data)).toEqual([first.data, first.data]);
  }, 30_000);

  it('holds an unknown connected account’s event (200) and releases it into the ledger when a community links the account', async () => {
    const lateAccount = `acct_late${run}`;
    const event = subscriptionEvent({ account: lateAccount });
    const { rawBody, header } = signed(event);
    const before = await ledgerRows();
    // What an operator sees: the Prometheus gauge, and the accounts the CLI lists.
    const gauge = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/^gatehouse_stripe_quarantined_events (\d+)$/m.exec(text)?.[1]);
    };
    const listed = async () => {
      const cli = await runCli(['stripe', 'quarantine', '--json'], env);
      expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: '' });
      return (JSON.parse(cli.stdout) as { accountId: string; events: number }[]).filter(
        (a) => a.accountId === lateAccount,
      );
    };
    const heldBefore = await gauge();
    expect(heldBefore).toBeGreaterThanOrEqual(0);
    expect(await listed()).toEqual([]);

    const res = await postWebhook(server.url, rawBody, header);
    expect(res).toEqual({ status: 200, body: { received: true, id: event.id, quarantined: true } });
    expect(await ledgerRows()).toBe(before);
    const held = () =>
      withDatabase(db.url, async (c) => {
        const { rows } = await c.query('SELECT event_id FROM stripe_quarantine WHERE account_id = $1', [
          lateAccount,
        ]);
        return rows.map((r: { event_id: string }) => r.event_id);
      });
    expect(await held()).toEqual([event.id]);
    // The gauge is read at most every few seconds (SCRAPE_CACHE_MS).
    await eventually(async () => ((await gauge()) === heldBefore + 1 ? true : undefined), 20_000);
    // And how long the event held longest has waited (this one, if nothing older is held).
    const age = async () =>
      Number(
        /^gatehouse_stripe_quarantine_oldest_held_seconds (\S+)$/m.exec(
          await (await fetch(`${server.url}/metrics`)).text(),
        )?.[1],
      );
    await eventually(async () => ((await age()) > 0 ? true : undefined), 20_000);
    expect(await listed()).toEqual([expect.objectContaining({ accountId: lateAccount, events: 1 })]);
    const text = await runCli(['stripe', 'quarantine'], env);
    expect(text.stdout).toMatch(new RegExp(`^${lateAccount}\\s+1\\s`, 'm'));

    const late = await gql.createCommunity('Latecomers', lateAccount);
    const [node] = await shows(late, event.id);
    expect(node.communityId).toBe(late);
    expect(await rowsFor(event.id)).toBe(1);
    expect(await held()).toEqual([]);
    await eventually(async () => ((await gauge()) === heldBefore ? true : undefined), 20_000);
    expect(await listed()).toEqual([]);
  }, 60_000);

  it('counts the Stripe events kept aside for want of a member in a gauge, and lets one go when its member is found', async () => {
    const parked = () =>
      withDatabase(db.url, async (c) => {
        const { rows } = await c.query<{ event_id: string }>(
          'SELECT event_id FROM stripe_unlinked WHERE community_id = $1',
          [communityId],
        );
        return rows.map((r) => r.event_id);
      });
    const everywhere = () =>
      withDatabase(db.url, async (c) => {
        const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM stripe_unlinked');
        return rows[0].n;
      });
    const gauge = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/^gatehouse_stripe_unlinked_events\{region="[^"]+"\} (\d+)$/m.exec(text)?.[1]);
    };
    const post = async (event: StripeEvent) => {
      const { rawBody, header } = signed(event);
      expect((await postWebhook(server.url, rawBody, header)).status).toBe(200);
    };

    // An invoice for a subscription nobody has named a member for: kept aside. (Its own customer:
    // the kit's default one is on the events parked before, which the link below would release too.)
    const subscription = kit.stripeId('sub');
    const customer = kit.stripeId('cus');
    const invoice = kit.invoicePaid(
      { subscription, customer, lines: [{ amount: 900, priceId: 'price_gold' }] },
      { apiVersion: '2025-03-31.basil', created: unixNow(), account },
    );
    await post(invoice);
    await eventually(async () => ((await parked()).includes(invoice.id) ? true : undefined), 20_000);
    const withInvoice = await everywhere();
    // The gauge is read at most every few seconds (SCRAPE_CACHE_MS).
    await eventually(async () => ((await gauge()) === withInvoice ? true : undefined), 20_000);

    // The subscription names its member: the invoice is applied and let go.
    await post(
      kit.customerSubscriptionUpdated(
        {
          id: subscription,
          customer,
          status: 'active',
          priceId: 'price_gold',
          metadata: { gatehouse_member_id: `mem_gauge_${run}` },
        },
        { apiVersion: '2025-03-31.basil', created: unixNow(), account },
      ),
    );
    await eventually(async () => (!(await parked()).includes(invoice.id) ? true : undefined), 20_000);
    expect(await everywhere()).toBe(withInvoice - 1);
    await eventually(async () => ((await gauge()) === withInvoice - 1 ? true : undefined), 20_000);
  }, 60_000);

  it('reconcile (the CLI, against the same database and the fake Events API) fills the gap a missed webhook left', async () => {
    const delivered = subscriptionEvent();
    const missed = kit.invoicePaid(
      { subscription: String(delivered.data.object.id), lines: [{ amount: 900, priceId: 'price_gold' }] },
      { apiVersion: '2025-03-31.basil', created: unixNow(), account },
    );
    fake.emit(delivered);
    fake.emit(missed, { deliverySuccess: false });
    expect((await postWebhook(server.url, signed(delivered).rawBody, signed(delivered).header)).status).toBe(
      200,
    );
    expect(await rowsFor(missed.id)).toBe(0);

    const cli = await runCli(['stripe', 'reconcile', '--since', '72h'], env);
    expect(cli.stderr).not.toMatch(/\n\s+at /);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`  + ${missed.id}`);
    expect(cli.stdout).toMatch(new RegExp(`${account}\\s+${communityId}\\s+2\\s+1\\s+1\\s+0`));

    const [node] = await shows(communityId, missed.id);
    expect(node).toMatchObject({ type: 'invoice.paid', source: 'stripe' });
    expect(await rowsFor(missed.id)).toBe(1);

    // Idempotent: a second run finds everything present.
    const again = await runCli(['stripe', 'reconcile', '--since', '72h', '--community', communityId], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/total: 2 listed, 0 appended, 2 already in the ledger/);
  }, 120_000);

  it('reconcile refuses a bad --since with a clear message', async () => {
    const cli = await runCli(['stripe', 'reconcile', '--since', 'last week'], env);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('--since must be a duration like 72h');
    expect(cli.stderr).not.toMatch(/\n\s+at /);
    const rate = await runCli(['stripe', 'reconcile', '--since', '72h', '--requests-per-second', '0'], env);
    expect(rate.code).toBe(1);
    expect(rate.stderr).toContain('--requests-per-second must be an integer from 1 to 100; got "0"');
  }, 60_000);

  // Last: it takes the database away from the running server.
  it('answers 5xx while the database is down, acknowledges nothing, and records the retry once it is back; canAccess answers meanwhile', async () => {
    const event = subscriptionEvent({ account: null }); // a platform event: no catalog lookup, only the ledger
    const { rawBody, header } = signed(event);
    const before = await ledgerRows();

    // A crash of the server shows here with its last words rather than as "fetch failed".
    const orServerOutput = async <T>(p: Promise<T>): Promise<T> => {
      try {
        return await p;
      } catch (err) {
        const out = server.output();
        const crash = out.search(/Unhandled|Error:|\berror:/);
        throw new Error(
          `${String(err)}\nserver output:\n${crash >= 0 ? out.slice(Math.max(0, crash - 200), crash + 1200) : out.slice(-2000)}`,
        );
      }
    };
    const down = await takeDatabaseDown(testDatabaseServerUrl(), db.name);
    let during: Awaited<ReturnType<typeof postWebhook>>;
    let accessDuring: unknown;
    let communityDuring: Promise<unknown>;
    try {
      during = await orServerOutput(postWebhook(server.url, rawBody, header));
      // canAccess answers from the server's memory; a query that reads the database fails.
      accessDuring = await gql.request(
        `query($c: ID!) { canAccess(communityId: $c, memberId: "mem_nobody", resource: { kind: COMMUNITY }) { allowed } }`,
        { c: communityId },
      );
      communityDuring = gql.request(`query($c: ID!) { community(id: $c) { name } }`, { c: communityId });
      await communityDuring.catch(() => undefined);
    } finally {
      await down.restore();
    }
    expect(accessDuring).toEqual({ canAccess: { allowed: false } });
    await expect(communityDuring).rejects.toThrow(/GraphQL/);
    expect(during.status).toBeGreaterThanOrEqual(500);
    expect(during.body).not.toHaveProperty('received');
    expect(await ledgerRows()).toBe(before);

    // Stripe retries (same bytes, a fresh signature as Stripe would send).
    const retry = await orServerOutput(
      eventually(
        async () => {
          const r = await postWebhook(server.url, rawBody, signed(event).header);
          return r.status === 200 ? r : undefined;
        },
        30_000,
        250,
      ),
    );
    expect(retry.body).toEqual({ received: true, id: event.id, duplicate: false });
    expect(await rowsFor(event.id)).toBe(1);
    const [node] = await eventually(async () => {
      const found = (await stripeEvents(platformCommunity)).filter((e: LedgerEventNode) => e.id === event.id);
      return found.length ? found : undefined;
    }, 30_000);
    expect(node.communityId).toBe(platformCommunity);
  }, 90_000);
}

describe('Stripe webhooks through gatehouse serve, PostgreSQL ledger', () => {
  webhookSuite(() => ({ env: {}, ledgerTable: 'ledger_log' }));
});

describeKafka('Stripe webhooks through gatehouse serve, Kafka ledger', (brokers) => {
  const topic = `gatehouse.webhooks.e2e.${randomBytes(4).toString('hex')}`;
  webhookSuite(() => ({
    env: { KAFKA_BROKERS: brokers.join(','), GATEHOUSE_KAFKA_TOPIC: topic },
    ledgerTable: 'ledger_kafka_ids',
  }));
});

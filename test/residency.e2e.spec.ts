import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { startFakeStripe, stripeTestKit as kit, type FakeStripe } from '@gatehouse/stripe';
import { createTestDatabase, describeKafka, eventually, type TestDatabase } from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';
import { runCli } from './support/webhook-client';

// Data residency: with GATEHOUSE_REGIONS, an Indian community's events and read models live only in
// the `in` stores. After a full scenario, the other region's database (and topic) hold nothing of it,
// and the CLI (reconcile, import, drift, export, verify, migrate) works on the region's own stores.

const secret = 'residency-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_residency_e2e';
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const DAY = 86_400;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

/** Rows of any table of `db` whose text mentions `needle`, by table. */
async function mentions(url: string, needle: string): Promise<Record<string, number>> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const tables = await c.query<{ t: string }>(
      `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
    );
    const found: Record<string, number> = {};
    for (const { t } of tables.rows) {
      const r = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${t} x WHERE x::text LIKE '%' || $1 || '%'`,
        [needle],
      );
      if (r.rows[0].n > 0) found[t] = r.rows[0].n;
    }
    return found;
  } finally {
    await c.end();
  }
}

async function topicMentions(brokers: string[], topic: string, needles: string[]): Promise<number> {
  const kafka = new Kafka({ clientId: 'residency-check', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  if (total === 0) return 0;
  const consumer = kafka.consumer({ groupId: `residency-${randomBytes(4).toString('hex')}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let hits = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen} of ${total} messages`)), 30_000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          const text = `${message.key?.toString() ?? ''} ${message.value?.toString() ?? ''}`;
          if (needles.some((n) => text.includes(n))) hits++;
          if (++seen >= total) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return hits;
}

function scenario(
  name: string,
  extraEnv: (tag: string) => Record<string, string>,
  after?: (ctx: {
    us: TestDatabase;
    india: TestDatabase;
    tag: string;
    inId: string;
    inAccount: string;
    usId: string;
  }) => Promise<void>,
) {
  describe(name, () => {
    let us: TestDatabase;
    let india: TestDatabase;
    let server: ServerProcess;
    let fake: FakeStripe;
    /** The server's environment, which the CLI shares (it has no webhook secret or port of its own). */
    let env: Record<string, string | undefined>;
    const tag = randomBytes(4).toString('hex');
    const inAccount = `acct_india${tag}`;
    const usAccount = `acct_usa${tag}`;
    let inId = '';
    let usId = '';

    async function gql(query: string, variables: Loose = {}): Promise<Loose> {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data?: Loose; errors?: unknown[] };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data!;
    }
    async function send(event: Loose) {
      const signed = kit.signPayload(event as never, whsec, Math.floor(Date.now() / 1000));
      const res = await fetch(`${server.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signed.header },
        body: signed.rawBody,
      });
      expect(res.status).toBe(200);
    }

    beforeAll(async () => {
      us = await createTestDatabase('gh_us');
      india = await createTestDatabase('gh_in');
      fake = await startFakeStripe();
      // createPrice checks the price with the community's Stripe account.
      for (const [region, account] of [
        ['IN', inAccount],
        ['US', usAccount],
      ])
        fake.seed(
          kit.buildPrice({
            priceId: `price_gold${region}${tag}`,
            productId: `prod_gold${region}${tag}`,
            unitAmount: 49900,
            currency: 'inr',
          }) as never,
          account,
        );
      env = {
        PATH: process.env.PATH,
        DATABASE_URL: us.url,
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_SECRET_KEY: 'sk_test_residency',
        STRIPE_API_BASE: fake.url,
        LOG_LEVEL: 'warn',
        ...extraEnv(tag),
        GATEHOUSE_REGIONS: JSON.stringify({
          in: { databaseUrl: india.url, ...(JSON.parse(extraEnv(tag).REGION_IN ?? '{}') as object) },
        }),
      };
      const started = await startServerProcess({
        ...env,
        STRIPE_WEBHOOK_SECRET: whsec,
        PORT: '0',
        HOST: '127.0.0.1',
      });
      if (!started.ok) throw new Error(`did not start:\n${started.output}`);
      server = started.server;
    }, 120_000);

    afterAll(async () => {
      await server?.stop('SIGTERM');
      await fake?.close();
      await us?.drop();
      await india?.drop();
    });

    it('keeps every trace of an Indian community in the Indian stores', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const [region, account] of [
        ['IN', inAccount],
        ['US', usAccount],
      ] as const) {
        const c = (
          await gql(
            `mutation { createCommunity(input: { name: "Guild ${region}", region: ${region}, stripeAccountId: "${account}" }) { id region } }`,
          )
        ).createCommunity;
        expect(c.region).toBe(region);
        if (region === 'IN') inId = c.id;
        else usId = c.id;
        const tier = (
          await gql(
            `mutation { createTier(input: { communityId: "${c.id}", name: "Gold", rank: 1, stripeProductId: "prod_gold${region}${tag}" }) { id } }`,
          )
        ).createTier.id;
        await gql(
          `mutation { createPrice(input: { communityId: "${c.id}", product: { kind: TIER, id: "${tier}" }, amount: 49900, currency: "inr", frequency: MONTHLY, stripePriceId: "price_gold${region}${tag}" }) { id } }`,
        );
        const sub = {
          id: `sub_${region}${tag}`,
          customer: `cus_${region}${tag}`,
          priceId: `price_gold${region}${tag}`,
          productId: `prod_gold${region}${tag}`,
          status: 'active' as const,
          periodStart: now - DAY,
          periodEnd: now + 29 * DAY,
          metadata: { gatehouse_member_id: `priya${region}` },
        };
        await send(kit.customerSubscriptionCreated(sub, { account, created: now }));
        await send(
          kit.invoicePaymentActionRequired(
            {
              subscription: sub.id,
              customer: sub.customer,
              billingReason: 'subscription_cycle',
              lines: [{ amount: 49900 }],
            } as never,
            { account, created: now + 1 },
          ),
        );
        await gql(
          `mutation { grantComplimentaryAccess(input: { communityId: "${c.id}", memberId: "guest${region}", resource: { kind: COMMUNITY }, reason: "speaker" }) { allowed } }`,
        );
      }
      expect(inId).toMatch(/^in_/);

      const m = await eventually(async () => {
        const r = (
          await gql(
            `query { membership(communityId: "${inId}", memberId: "priyaIN") { status paymentActionRequired } }`,
          )
        ).membership;
        return r.paymentActionRequired ? r : undefined;
      });
      // A renewal waiting for the member's authentication keeps access (India's e-mandate rules).
      expect(m.status).toBe('ACTIVE');
      expect(
        (
          await gql(
            `query { canAccess(communityId: "${inId}", memberId: "priyaIN", resource: { kind: COMMUNITY }) { allowed } }`,
          )
        ).canAccess.allowed,
      ).toBe(true);
      const events = (
        await gql(`query { ledgerEvents(communityId: "${inId}", first: 50) { edges { node { type } } } }`)
      ).ledgerEvents.edges;
      expect(events.length).toBeGreaterThanOrEqual(6);

      // The Indian stores hold the Indian community; the other region's hold nothing of it.
      for (const needle of [inId, inAccount, `sub_IN${tag}`]) {
        expect(await mentions(us.url, needle)).toEqual({});
        expect(Object.keys(await mentions(india.url, needle)).length).toBeGreaterThan(0);
      }
      expect(await mentions(india.url, usId)).toEqual({});
      expect(Object.keys(await mentions(us.url, usId)).length).toBeGreaterThan(0);
      await after?.({ us, india, tag, inId, inAccount, usId });
    }, 120_000);

    it('runs the CLI on the stores of the region that holds the community', async () => {
      expect(inId).toMatch(/^in_/);
      const now = Math.floor(Date.now() / 1000);
      const cli = async (args: string[], expectedCode = 0) => {
        const r = await runCli(args, env, 120_000);
        expect({ args, code: r.code, stderr: r.code === expectedCode ? '' : r.stderr }).toEqual({
          args,
          code: expectedCode,
          stderr: '',
        });
        return r;
      };
      const onlyInIndia = async (needle: string) => {
        expect(await mentions(us.url, needle)).toEqual({});
        expect(Object.keys(await mentions(india.url, needle)).length).toBeGreaterThan(0);
      };

      // A webhook Stripe could not deliver: reconcile finds it in the Events API and appends it to the
      // Indian ledger.
      const missed = kit.invoicePaid(
        {
          subscription: `sub_IN${tag}`,
          customer: `cus_IN${tag}`,
          lines: [{ amount: 49900, priceId: `price_goldIN${tag}` }],
        },
        { account: inAccount, created: now },
      );
      fake.emit(missed, { deliverySuccess: false });
      const reconciled = await cli(['stripe', 'reconcile', '--since', '72h']);
      expect(reconciled.stdout).toContain(`  + ${missed.id}`);
      expect(reconciled.stdout).toMatch(new RegExp(`${inAccount}\\s+${inId}\\s+1\\s+1\\s+0\\s+0`));
      await eventually(async () => {
        const edges = (
          await gql(`query { ledgerEvents(communityId: "${inId}", first: 50) { edges { node { id } } } }`)
        ).ledgerEvents.edges as { node: { id: string } }[];
        return edges.some((e) => e.node.id === missed.id) || undefined;
      });
      await onlyInIndia(missed.id);
      const again = await cli(['stripe', 'reconcile', '--since', '72h', '--community', inId]);
      expect(again.stdout).toMatch(/total: 1 listed, 0 appended, 1 already in the ledger/);
      // How far the account was listed, kept for the server's reconcile interval: in India too.
      expect(await mentions(us.url, inAccount)).toEqual({});
      expect(await mentions(india.url, inAccount)).toMatchObject({ 'public.stripe_reconcile_windows': 1 });

      // Existing Stripe subscribers of the Indian account, imported into the Indian stores.
      const imported = `sub_INimported${tag}`;
      fake.seed(
        kit.buildCustomer({ id: `cus_INimported${tag}`, email: `asha${tag}@example.in` }) as never,
        inAccount,
      );
      fake.seed(
        kit.buildSubscription({
          id: imported,
          customer: `cus_INimported${tag}`,
          priceId: `price_goldIN${tag}`,
          productId: `prod_goldIN${tag}`,
          status: 'active',
          periodStart: now - DAY,
          periodEnd: now + 29 * DAY,
        }) as never,
        inAccount,
      );
      const report = await cli([
        'stripe',
        'import',
        '--community',
        inId,
        '--price',
        `price_goldIN${tag}`,
        '--json',
      ]);
      expect(JSON.parse(report.stdout)).toMatchObject({ dryRun: false, invited: 1, problems: [] });
      await onlyInIndia(imported);

      // Drift reads the Indian read model: the fake knows the imported subscription, not the one that
      // came only as a webhook.
      const drift = await cli(['stripe', 'drift', '--community', inId, '--json'], 1);
      const differences = (JSON.parse(drift.stdout) as { differences: { subscriptionId: string }[] })
        .differences;
      expect(differences.map((d) => d.subscriptionId)).toContain(`sub_IN${tag}`);
      expect(differences.map((d) => d.subscriptionId)).not.toContain(`sub_US${tag}`);

      // Export and verify: one community's region, or every region.
      const exported = await cli(['ledger', 'export', '--community', inId]);
      const inEvents = exported.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; communityId: string });
      expect(inEvents.length).toBeGreaterThanOrEqual(7);
      expect(new Set(inEvents.map((e) => e.communityId))).toEqual(new Set([inId]));
      expect(inEvents.map((e) => e.id)).toContain(missed.id);
      const all = await cli(['ledger', 'export']);
      const communities = new Set(
        all.stdout
          .trimEnd()
          .split('\n')
          .map((l) => (JSON.parse(l) as { communityId: string }).communityId),
      );
      expect(communities).toEqual(new Set([usId, inId]));
      expect(all.stderr).toMatch(/done: \d+ events exported \(us \d+, in \d+\)/);

      const verified = await eventually(async () => {
        const r = await cli(['ledger', 'verify']);
        const archived = /in: ok: (\d+) archived events/.exec(r.stdout);
        return archived && Number(archived[1]) >= inEvents.length ? r : undefined;
      });
      expect(verified.stdout).toMatch(/^us: ok: [1-9]\d* archived events, every hash link holds$/m);
      const one = await cli(['ledger', 'verify', '--community', inId]);
      expect(one.stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^in: ok: [1-9]\d* archived events/),
      ]);
    }, 240_000);

    it("reports each region's projector lag at every scrape of /metrics", async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      for (const region of ['us', 'in'])
        expect(text).toMatch(
          new RegExp(`^gatehouse_projector_lag_events\\{region="${region}"\\} \\d+$`, 'm'),
        );
    }, 30_000);

    it('refuses a community in a region this deployment does not serve', async () => {
      await expect(
        gql('mutation { createCommunity(input: { name: "Elsewhere", region: EU }) { id } }'),
      ).rejects.toThrow(/EU is not configured/);
    }, 30_000);

    it('refuses a Stripe account that a community of either region has linked, also when asked twice at once', async () => {
      const create = (region: string, account: string) =>
        gql(
          `mutation { createCommunity(input: { name: "Again", region: ${region}, stripeAccountId: "${account}" }) { id stripeAccountId } }`,
        );
      for (const region of ['IN', 'US'])
        await expect(create(region, inAccount)).rejects.toThrow(
          new RegExp(`Stripe account ${inAccount} is already linked to another community.*"code":"CONFLICT"`),
        );
      const account = `acct_twice${tag}`;
      const both = await Promise.allSettled([create('US', account), create('US', account)]);
      const made = both.filter((r) => r.status === 'fulfilled');
      const refused = both.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(made).toHaveLength(1);
      expect(refused.map((r) => String(r.reason))).toEqual([expect.stringMatching(/"code":"CONFLICT"/)]);
      // In two regions at once: each region's catalog only knows its own communities.
      const across = `acct_across${tag}`;
      const regions = await Promise.allSettled([create('US', across), create('IN', across)]);
      expect(regions.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(regions.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []))).toEqual([
        expect.stringMatching(/already linked to another community.*"code":"CONFLICT"/),
      ]);
      let linked = 0;
      for (const db of [us, india]) {
        const c = new Client({ connectionString: db.url });
        await c.connect();
        try {
          const { rows } = await c.query<{ n: string }>(
            'SELECT count(*) AS n FROM catalog_communities WHERE stripe_account_id = $1',
            [across],
          );
          linked += Number(rows[0].n);
        } finally {
          await c.end();
        }
      }
      expect(linked).toBe(1);
    }, 60_000);
  });
}

scenario('data residency with PostgreSQL ledgers', () => ({}));

describeKafka('data residency with Kafka ledgers', (brokers) => {
  const topicBase = (tag: string) => `gatehouse.residency.${tag}`;
  scenario(
    'on two topics',
    (tag) => ({
      KAFKA_BROKERS: brokers.join(','),
      GATEHOUSE_KAFKA_TOPIC: topicBase(tag),
      REGION_IN: JSON.stringify({ kafkaBrokers: brokers.join(',') }),
    }),
    async ({ tag, inId, inAccount, usId }) => {
      expect(await topicMentions(brokers, topicBase(tag), [inId, inAccount])).toBe(0);
      expect(await topicMentions(brokers, `${topicBase(tag)}.in`, [inId])).toBeGreaterThan(0);
      expect(await topicMentions(brokers, `${topicBase(tag)}.in`, [usId])).toBe(0);
    },
  );
});

describe('gatehouse migrate with GATEHOUSE_REGIONS', () => {
  let us: TestDatabase;
  let india: TestDatabase;

  beforeAll(async () => {
    us = await createTestDatabase('gh_mig_us');
    india = await createTestDatabase('gh_mig_in');
  });
  afterAll(async () => {
    await us?.drop();
    await india?.drop();
  });

  it("prepares every region's database and ledger", async () => {
    const tables = async (url: string) => {
      const c = new Client({ connectionString: url });
      await c.connect();
      try {
        const { rows } = await c.query<{ t: string }>(
          `SELECT tablename AS t FROM pg_tables WHERE tablename IN ('ledger_log', 'catalog_communities', 'member_states') ORDER BY 1`,
        );
        return rows.map((r) => r.t);
      } finally {
        await c.end();
      }
    };
    expect(await tables(india.url)).toEqual([]);
    const r = await runCli(['migrate'], {
      PATH: process.env.PATH,
      DATABASE_URL: us.url,
      GATEHOUSE_REGIONS: JSON.stringify({ in: { databaseUrl: india.url } }),
      GATEHOUSE_JWT_SECRET: secret,
      LOG_LEVEL: 'warn',
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout.trim().split('\n')).toEqual([
      'us: migrations applied; ledger ready (postgres)',
      'in: migrations applied; ledger ready (postgres)',
    ]);
    for (const url of [us.url, india.url])
      expect(await tables(url)).toEqual(['catalog_communities', 'ledger_log', 'member_states']);
  }, 120_000);
});

import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { createTestDatabase, describeKafka, eventually, type TestDatabase } from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';

// Data residency: with GATEHOUSE_REGIONS, an Indian community's events and read models live only in
// the `in` stores. After a full scenario, the other region's database (and topic) hold nothing of it.

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
      const started = await startServerProcess({
        PATH: process.env.PATH,
        DATABASE_URL: us.url,
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_WEBHOOK_SECRET: whsec,
        LOG_LEVEL: 'warn',
        PORT: '0',
        HOST: '127.0.0.1',
        ...extraEnv(tag),
        GATEHOUSE_REGIONS: JSON.stringify({
          in: { databaseUrl: india.url, ...(JSON.parse(extraEnv(tag).REGION_IN ?? '{}') as object) },
        }),
      });
      if (!started.ok) throw new Error(`did not start:\n${started.output}`);
      server = started.server;
    }, 120_000);

    afterAll(async () => {
      await server?.stop('SIGTERM');
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

    it('refuses a community in a region this deployment does not serve', async () => {
      await expect(
        gql('mutation { createCommunity(input: { name: "Elsewhere", region: EU }) { id } }'),
      ).rejects.toThrow(/EU is not configured/);
    }, 30_000);
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

import { randomBytes } from 'node:crypto';
import { stripeTestKit as kit, type StripeEvent } from '@gatehouse/stripe';
import { createTestDatabase, eventually, type TestDatabase } from '@test/support';
import { describeOwnKafka, startOwnKafka, type OwnKafka } from './support/own-kafka';
import { startServerProcess, type ServerProcess } from './support/server-process';
import {
  adminToken,
  graphqlClient,
  postWebhook,
  unixNow,
  withDatabase,
  type LedgerEventNode,
} from './support/webhook-client';

// The Kafka ledger's broker goes away (stopped, as in a restart or a lost node) while the server
// runs, and comes back: webhooks are answered 5xx meanwhile, so Stripe retries, and once it is back
// the retry is recorded once and the projector, whose consumers lost the broker too, takes up its work.

const jwtSecret = 'kafka-outage-e2e-'.padEnd(40, 'x');
const whsec = 'whsec_kafka_outage';
const account = `acct_outage${randomBytes(4).toString('hex')}`;

describeOwnKafka('a server whose Kafka broker goes away and comes back', () => {
  let kafka: OwnKafka;
  let db: TestDatabase;
  let server: ServerProcess;
  let gql: ReturnType<typeof graphqlClient>;
  let communityId: string;

  beforeAll(async () => {
    kafka = await startOwnKafka();
    db = await createTestDatabase('kafka_outage');
    const started = await startServerProcess({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      KAFKA_BROKERS: kafka.brokers.join(','),
      GATEHOUSE_KAFKA_TOPIC: `gatehouse.outage.${randomBytes(4).toString('hex')}`,
      GATEHOUSE_JWT_SECRET: jwtSecret,
      STRIPE_WEBHOOK_SECRET: whsec,
      GATEHOUSE_WEBHOOK_TIMEOUT_SECONDS: '3',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;
    gql = graphqlClient(server.url, adminToken(jwtSecret));
    communityId = await gql.createCommunity('kafka_outage', account);
  }, 300_000);

  afterAll(async () => {
    await server?.stop('SIGTERM');
    await kafka?.remove();
    await db?.drop();
  }, 120_000);

  const event = () =>
    kit.customerSubscriptionUpdated(
      { id: kit.stripeId('sub'), status: 'active', priceId: 'price_gold' },
      { apiVersion: '2025-03-31.basil', created: unixNow(), account },
    );
  const deliver = (e: StripeEvent) => {
    const { rawBody, header } = kit.signPayload(e, whsec, unixNow());
    return postWebhook(server.url, rawBody, header);
  };
  /** Times the ledger holds the event (its id index, in the database). */
  const recorded = (id: string) =>
    withDatabase(db.url, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM ledger_kafka_ids WHERE id = $1',
        [id],
      );
      return rows[0].n;
    });
  const shown = (ids: string[]) =>
    eventually(async () => {
      const seen = new Set((await gql.ledgerEvents(communityId)).map((e: LedgerEventNode) => e.id));
      return ids.every((id) => seen.has(id)) ? true : undefined;
    }, 60_000);

  it('answers webhooks 5xx while it is gone, then records Stripe’s retry once and projects again', async () => {
    const before = event();
    expect((await deliver(before)).status).toBe(200);
    await shown([before.id]);

    await kafka.stop();
    const during = event();
    const answered = await deliver(during);
    expect(answered.status).toBeGreaterThanOrEqual(500);
    expect(answered.body).not.toHaveProperty('received');
    // Reads come from the read models, in PostgreSQL: answered meanwhile.
    expect((await gql.ledgerEvents(communityId)).map((e: LedgerEventNode) => e.id)).toContain(before.id);

    await kafka.start();
    // Stripe retries the event it was answered 5xx for, until one attempt is answered 200.
    const retried = await eventually(
      async () => {
        const r = await deliver(during);
        return r.status === 200 ? r : undefined;
      },
      90_000,
      1_000,
    );
    expect(retried.body).toMatchObject({ received: true, id: during.id });
    expect(await recorded(during.id)).toBe(1);
    const after = event();
    expect(await deliver(after)).toEqual({
      status: 200,
      body: { received: true, id: after.id, duplicate: false },
    });
    // The projector's consumers found the broker again: both are shown, once each.
    await shown([during.id, after.id]);
    const ids = (await gql.ledgerEvents(communityId)).map((e: LedgerEventNode) => e.id);
    expect(ids.filter((id) => id === during.id)).toHaveLength(1);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  }, 240_000);
});

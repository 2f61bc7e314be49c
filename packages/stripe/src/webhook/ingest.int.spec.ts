import { PostgresLedger, type RecordedEvent } from '@gatehouse/ledger';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { PostgresQuarantineStore } from '../quarantine/adapters/postgres-quarantine';
import { releaseQuarantine } from '../quarantine/release-quarantine';
import { signPayload } from '../testing/sign';
import { customerSubscriptionUpdated, invoicePaid } from '../testing/stripe-events';
import { FIXED_NOW } from '../testing/stripe-ids';
import { createWebhookIngestor } from './ingest.handler';

const SECRET = 'whsec_int';
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('webhook ingestion into the PostgreSQL ledger', () => {
  let db: TestDatabase;
  let ledger: PostgresLedger;
  let quarantine: PostgresQuarantineStore;
  const known = new Map<string, string>();

  const ingestor = () =>
    createWebhookIngestor({
      ledger,
      secrets: [SECRET],
      quarantine,
      logger: silent,
      clock: () => new Date(FIXED_NOW * 1000),
      directory: {
        communityForStripeAccount: async (a) => known.get(a) ?? null,
        platformCommunity: async () => 'platform',
      },
    });

  beforeAll(async () => {
    db = await createTestDatabase('stripe_ingest');
    ledger = new PostgresLedger({ connectionString: db.url });
    await ledger.init();
    quarantine = new PostgresQuarantineStore({ connectionString: db.url });
    await quarantine.init();
  });
  afterAll(async () => {
    await ledger.close();
    await quarantine.close();
    await db.drop();
  });

  async function all(communityId: string): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    for await (const e of ledger.read({ communityId })) out.push(e);
    return out;
  }

  it('records one fact for an event delivered 10 times in parallel to separate processes', async () => {
    const event = customerSubscriptionUpdated({}, { apiVersion: '2025-03-31.basil' });
    const { rawBody, header } = signPayload(event, SECRET);
    const results = await Promise.all(Array.from({ length: 10 }, () => ingestor()(rawBody, header)));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    const recorded = (await all('platform')).filter((e) => e.id === event.id);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({
      type: 'customer.subscription.updated',
      source: 'stripe',
      data: event,
    });
  });

  it('holds an unknown account in quarantine, then releases it into the ledger once linked', async () => {
    const event = invoicePaid({}, { account: 'acct_late' });
    const { rawBody, header } = signPayload(event, SECRET);
    expect((await ingestor()(rawBody, header)).body).toMatchObject({ quarantined: true });
    expect(await all('late-community')).toEqual([]);
    known.set('acct_late', 'late-community');
    expect(await releaseQuarantine({ ledger, quarantine }, 'acct_late', 'late-community')).toMatchObject({
      appended: 1,
    });
    expect((await ingestor()(rawBody, header)).body).toMatchObject({ duplicate: true });
    expect((await all('late-community')).map((e) => e.id)).toEqual([event.id]);
  });
});

import type { RecordedEvent } from '@gatehouse/ledger';
import { createTestDatabase, type TestDatabase } from '@test/support';
import pino from 'pino';
import type { DataSource, EntityManager } from 'typeorm';
import { AccessIndex } from '../access/access-index';
import { at, catalogFacts } from '../access/access-harness';
import { createDataSource, runMigrations } from '../data-source';
import { BATCH_SETTINGS } from '../runtime/projector';
import { InMemoryLedger } from '../testing/in-memory-ledger';
import { emptyMemberDoc, MembershipProjection } from './membership.projection';
import { stripeLedgerEvent, subscriptionEvent } from './stripe-events.builders';

// What a batch of the membership projection asks of PostgreSQL, whatever the planner's statistics.

const C = 'com_links';

let db: TestDatabase;
let ds: DataSource;

beforeAll(async () => {
  db = await createTestDatabase('membership_sql');
  await runMigrations(db.url);
  ds = createDataSource({ url: db.url, poolSize: 2 });
  await ds.initialize();
}, 60_000);

afterAll(async () => {
  await ds?.destroy();
  await db?.drop();
});

/** Tables a batch reads by key: each holds many rows of earlier members. */
const LOOKED_UP = ['stripe_links', 'member_states', 'access_grants'];

it('reads what a batch needs by key, never the whole of a table of earlier members', async () => {
  // Members of other communities, in tables that grew since they were last analysed.
  await ds.query(
    `INSERT INTO stripe_links (community_id, stripe_key, member_id)
     SELECT 'com_elsewhere_' || (i % 100), 'sub_earlier_' || i, 'mem_earlier_' || i
       FROM generate_series(1, 30000) AS i`,
  );
  await ds.query(
    `INSERT INTO member_states (community_id, member_id, email, doc, history_count)
     SELECT 'com_elsewhere_' || (i % 100), 'mem_earlier_' || i, NULL, $1::json, 1
       FROM generate_series(1, 30000) AS i`,
    [JSON.stringify(emptyMemberDoc())],
  );
  await ds.query(
    `INSERT INTO access_grants (id, community_id, member_id, resource_kind, resource_id, source, valid_from,
       valid_until, suspended, caused_by, recorded_at, superseded_at)
     SELECT 'grant_earlier_' || i, 'com_elsewhere_' || (i % 100), 'mem_earlier_' || i, 'COMMUNITY', NULL,
       'stripe', now(), NULL, false, 'evt_earlier_' || i, now(), NULL FROM generate_series(1, 30000) AS i`,
  );
  const ledger = new InMemoryLedger();
  const projection = new MembershipProjection({
    index: new AccessIndex(),
    logger: pino({ level: 'silent' }),
  });
  /** Applies the events in a transaction of its own; returns what it did to the looked-up tables. */
  const applyBatch = async (
    events: Parameters<InMemoryLedger['append']>[0],
    check: (manager: EntityManager) => Promise<void>,
  ) => {
    const from = await ledger.head();
    await ledger.append(events);
    const batch: RecordedEvent[] = [];
    for await (const e of ledger.read(from ? { after: from } : {})) batch.push(e);
    expect(batch).toHaveLength(events.length);
    return ds.transaction(async (manager) => {
      // As the projector runs a batch.
      await manager.query(`SELECT ${BATCH_SETTINGS}`);
      await projection.apply(
        { manager, query: (sql, params) => manager.query(sql, params as unknown[]) },
        batch,
      );
      await check(manager);
      // This transaction's own counters: what the batch did to those tables.
      return (await manager.query(
        `SELECT relname, seq_scan::int AS seq_scan FROM pg_stat_xact_user_tables WHERE relname = ANY($1)
          ORDER BY relname`,
        [LOOKED_UP],
      )) as { relname: string; seq_scan: number }[];
    });
  };
  const noScans = [...LOOKED_UP].sort().map((relname) => ({ relname, seq_scan: 0 }));
  const subscriptions = (type: 'customer.subscription.updated' | 'customer.subscription.deleted') =>
    Array.from({ length: 300 }, (_, i) =>
      stripeLedgerEvent(
        C,
        subscriptionEvent(type, at(type === 'customer.subscription.deleted' ? 2 : 0), {
          id: `sub_batch_${i}`,
          customer: `cus_batch_${i}`,
          status: type === 'customer.subscription.deleted' ? 'canceled' : 'active',
          price: 'price_gold_m',
          product: 'prod_gold',
          periodStart: at(0),
          periodEnd: at(30),
          ...(type === 'customer.subscription.deleted' && { endedAt: at(2) }),
          memberId: `mem_batch_${i}`,
        }),
      ),
    );
  const count = async (manager: EntityManager, sql: string) =>
    ((await manager.query(sql, [C])) as { n: number }[])[0].n;

  // The community's tiers and prices, then new subscribers: each subscription and customer is
  // linked to its member, who gets access.
  await applyBatch(catalogFacts(C), async () => undefined);
  const joined = await applyBatch(subscriptions('customer.subscription.updated'), async (manager) => {
    expect(
      await count(
        manager,
        `SELECT count(*)::int AS n FROM stripe_links WHERE community_id = $1 AND member_id LIKE 'mem_batch_%'`,
      ),
    ).toBe(600);
    expect(
      await count(
        manager,
        `SELECT count(DISTINCT member_id)::int AS n FROM access_grants
          WHERE community_id = $1 AND member_id LIKE 'mem_batch_%' AND superseded_at IS NULL`,
      ),
    ).toBe(300);
  });
  expect(joined).toEqual(noScans);

  // Then they cancel: their grants are superseded (an update joined to the batch's grant ids).
  const left = await applyBatch(subscriptions('customer.subscription.deleted'), async (manager) => {
    expect(
      await count(
        manager,
        `SELECT count(DISTINCT member_id)::int AS n FROM access_grants
          WHERE community_id = $1 AND member_id LIKE 'mem_batch_%' AND superseded_at IS NOT NULL`,
      ),
    ).toBe(300);
  });
  expect(left).toEqual(noScans);
});

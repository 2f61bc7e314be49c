import type { RecordedEvent } from '@gatehouse/ledger';
import { createTestDatabase, type TestDatabase } from '@test/support';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { AccessIndex } from '../access/access-index';
import { at } from '../access/access-harness';
import { createDataSource, runMigrations } from '../data-source';
import { InMemoryLedger } from '../testing/in-memory-ledger';
import { MembershipProjection } from './membership.projection';
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
  // Earlier members, in tables that grew since they were last analysed.
  await ds.query(
    `INSERT INTO stripe_links (community_id, stripe_key, member_id)
     SELECT $1, 'sub_earlier_' || i, 'mem_earlier_' || i FROM generate_series(1, 30000) AS i`,
    [C],
  );
  await ds.query(
    `INSERT INTO member_states (community_id, member_id, email, doc, history_count)
     SELECT $1, 'mem_earlier_' || i, NULL, '{}'::json, 1 FROM generate_series(1, 30000) AS i`,
    [C],
  );
  await ds.query(
    `INSERT INTO access_grants (id, community_id, member_id, resource_kind, resource_id, source, valid_from,
       valid_until, suspended, caused_by, recorded_at, superseded_at)
     SELECT 'grant_earlier_' || i, $1, 'mem_earlier_' || i, 'COMMUNITY', NULL, 'stripe', now(), NULL, false,
       'evt_earlier_' || i, now(), NULL FROM generate_series(1, 30000) AS i`,
    [C],
  );
  const ledger = new InMemoryLedger();
  await ledger.append(
    Array.from({ length: 300 }, (_, i) =>
      stripeLedgerEvent(
        C,
        subscriptionEvent('customer.subscription.updated', at(0), {
          id: `sub_batch_${i}`,
          customer: `cus_batch_${i}`,
          status: 'active',
          price: 'price_gold_m',
          product: 'prod_gold',
          periodStart: at(0),
          periodEnd: at(30),
          memberId: `mem_batch_${i}`,
        }),
      ),
    ),
  );
  const batch: RecordedEvent[] = [];
  for await (const e of ledger.read()) batch.push(e);
  const projection = new MembershipProjection({
    index: new AccessIndex(),
    logger: pino({ level: 'silent' }),
  });

  await ds.transaction(async (manager) => {
    await projection.apply(
      { manager, query: (sql, params) => manager.query(sql, params as unknown[]) },
      batch,
    );
    // This transaction's own counters: what the batch did to those tables.
    const scans = (await manager.query(
      `SELECT relname, seq_scan::int AS seq_scan FROM pg_stat_xact_user_tables WHERE relname = ANY($1)
        ORDER BY relname`,
      [LOOKED_UP],
    )) as { relname: string; seq_scan: number }[];
    expect(scans).toEqual([...LOOKED_UP].sort().map((relname) => ({ relname, seq_scan: 0 })));
    // The batch did its work: each subscription and customer is now linked to its member.
    const [{ n }] = (await manager.query(
      `SELECT count(*)::int AS n FROM stripe_links WHERE community_id = $1 AND member_id LIKE 'mem_batch_%'`,
      [C],
    )) as { n: number }[];
    expect(n).toBe(600);
  });
});

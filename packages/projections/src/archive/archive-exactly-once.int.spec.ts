import { randomBytes } from 'node:crypto';
import { KafkaLedger, PostgresLedger, type AppendResult, type Ledger } from '@gatehouse/ledger';
import { createTestDatabase, describeKafka, eventually, type TestDatabase } from '@test/support';
import pino from 'pino';
import { createDataSource } from '../data-source';
import type { Projection } from '../runtime/projection';
import { Projector } from '../runtime/projector';
import { aNewEvent } from '../testing/event-builder';
import { freshReadModels } from '../testing/projection-store';
import { archiveProjection } from './archive.projection';
import { LedgerEventsQuery } from './ledger-events.query';

jest.setTimeout(180_000);

const silent = pino({ level: 'silent' });
const run = randomBytes(4).toString('hex');
const COMMUNITIES = 5;

async function appendThousand(ledger: Ledger): Promise<AppendResult[]> {
  const appended: AppendResult[] = [];
  for (let chunk = 0; chunk < 10; chunk++) {
    const events = Array.from({ length: 100 }, (_, i) =>
      aNewEvent({ communityId: `com_${run}_${(chunk * 100 + i) % COMMUNITIES}` }),
    );
    appended.push(...(await ledger.append(events)));
  }
  return appended;
}

/**
 * Appends 1,000 events, runs the archive until its connection is killed inside a batch and then
 * stops it after a few more batches, starts a new projector on a new connection pool, and checks
 * the archive holds each event exactly once with unbroken chains.
 */
async function crashAndResume(ledger: Ledger, url: string): Promise<void> {
  const appended = await appendThousand(ledger);
  expect(appended.every((a) => a.appended)).toBe(true);
  const again = await ledger.append([{ ...aNewEvent({ communityId: `com_${run}_0` }), id: appended[3].id }]);
  expect(again[0]).toMatchObject({ appended: false, position: appended[3].position });

  const store = await freshReadModels(url, 'eo');
  const archive = archiveProjection();
  let calls = 0;
  const crashing: Projection = {
    ...archive,
    async apply(tx, events) {
      await archive.apply(tx, events);
      calls++;
      // The rows are written, the checkpoint not yet: lose the connection right here.
      if (calls === 4) await tx.query('SELECT pg_terminate_backend(pg_backend_pid())');
    },
  };
  const consumerPrefix = `eo-${run}-${ledger.kind}:`;
  const first = new Projector({
    dataSource: store.ds,
    ledger,
    projections: [crashing],
    logger: silent,
    maxBatch: 64,
    consumerPrefix,
    backoff: { initialMs: 20, maxMs: 100 },
  });
  first.start();
  await eventually(async () => (first.status()[0].batches >= 6 ? true : undefined), 60_000);
  await first.stop();
  expect(calls).toBeGreaterThan(first.status()[0].batches);
  const [{ n: partial }]: { n: number }[] = await store.ds.query(
    `SELECT count(*)::int AS n FROM ledger_events`,
  );
  expect(partial).toBeGreaterThan(0);
  expect(partial).toBeLessThan(1000);
  await store.close();

  const ds = createDataSource({ url, schema: store.schema });
  await ds.initialize();
  try {
    const second = new Projector({
      dataSource: ds,
      ledger,
      projections: [archiveProjection()],
      logger: silent,
      maxBatch: 64,
      consumerPrefix,
    });
    second.start();
    // Wait for the archive to hold every event (waitFor by id only knows events this projector
    // delivers, and the first one may already have archived a community's last event).
    try {
      await eventually(
        async () => {
          const [{ n }]: { n: number }[] = await ds.query(`SELECT count(*)::int AS n FROM ledger_events`);
          return n >= 1000 ? n : undefined;
        },
        60_000,
        100,
      );
    } finally {
      await second.stop();
    }

    const rows: { id: string; community_id: string; sequence: string }[] = await ds.query(
      `SELECT id, community_id, sequence FROM ledger_events ORDER BY community_id, sequence`,
    );
    expect(rows).toHaveLength(1000);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(appended.map((a) => a.id)));
    for (let c = 0; c < COMMUNITIES; c++) {
      const seqs = rows.filter((r) => r.community_id === `com_${run}_${c}`).map((r) => Number(r.sequence));
      expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    }
    // Within each community the archive keeps the ledger's order.
    const ledgerOrder = new Map(appended.map((a, i) => [a.id, i]));
    for (let c = 0; c < COMMUNITIES; c++) {
      const order = rows
        .filter((r) => r.community_id === `com_${run}_${c}`)
        .map((r) => ledgerOrder.get(r.id)!);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
    expect(await new LedgerEventsQuery(ds).verifyArchive()).toBeNull();
    expect(await ds.query(`SELECT count(*)::int AS n FROM projection_anomalies`)).toEqual([{ n: 0 }]);
  } finally {
    await ds.destroy();
  }
}

describe('archive exactly once across a crash, PostgreSQL ledger', () => {
  let db: TestDatabase;
  let ledger: PostgresLedger;
  beforeAll(async () => {
    db = await createTestDatabase('proj_eo');
    ledger = new PostgresLedger({ connectionString: db.url, prefix: `l_${run}`, pollIntervalMs: 50 });
    await ledger.init();
  });
  afterAll(async () => {
    await ledger.close();
    await db.drop();
  });

  it('archives each of 1,000 events exactly once with a valid chain after a crash mid-batch and a restart', async () => {
    await crashAndResume(ledger, db.url);
  });
});

describeKafka('archive exactly once across a crash, Kafka ledger', (brokers) => {
  let db: TestDatabase;
  let ledger: KafkaLedger;
  beforeAll(async () => {
    db = await createTestDatabase('proj_eok');
    ledger = new KafkaLedger({
      brokers,
      databaseUrl: db.url,
      topic: `gatehouse.projections.test.${run}`,
      prefix: `k_${run}`,
      partitions: 3,
    });
    await ledger.init();
  });
  afterAll(async () => {
    await ledger?.close();
    await db.drop();
  });

  it('archives each of 1,000 events exactly once with a valid chain after a crash mid-batch and a restart', async () => {
    await crashAndResume(ledger, db.url);
  });
});

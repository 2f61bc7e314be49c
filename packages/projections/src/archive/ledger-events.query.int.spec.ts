import { BadUserInputError } from '@gatehouse/domain';
import { createTestDatabase, type TestDatabase } from '@test/support';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { Projector } from '../runtime/projector';
import { aNewEvent } from '../testing/event-builder';
import { InMemoryLedger } from '../testing/in-memory-ledger';
import { freshReadModels } from '../testing/projection-store';
import { archiveProjection } from './archive.projection';
import { LedgerEventsQuery, type ArchivedEvent } from './ledger-events.query';

jest.setTimeout(60_000);

describe('LedgerEventsQuery', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let close: () => Promise<void>;
  let query: LedgerEventsQuery;
  const ids: Record<string, string[]> = { com_q1: [], com_q2: [] };

  beforeAll(async () => {
    db = await createTestDatabase('proj_q');
    const store = await freshReadModels(db.url);
    ds = store.ds;
    close = store.close;
    let clock = Date.UTC(2026, 2, 1);
    const ledger = new InMemoryLedger({ clock: () => new Date((clock += 60_000)) });
    const projector = new Projector({
      dataSource: ds,
      ledger,
      projections: [archiveProjection()],
      logger: pino({ level: 'silent' }),
      maxBatch: 4,
    });
    for (let i = 0; i < 12; i++) {
      const communityId = i % 3 === 2 ? 'com_q2' : 'com_q1';
      const [a] = await ledger.append([
        aNewEvent({ communityId, type: i % 4 === 0 ? 'TierDefined' : 'MemberJoined' }),
      ]);
      ids[communityId].push(a.id);
    }
    projector.start();
    await projector.waitFor({ eventIds: [...ids.com_q1, ...ids.com_q2] }, 10_000);
    await projector.stop();
    query = new LedgerEventsQuery(ds);
  });

  afterAll(async () => {
    await close();
    await db.drop();
  });

  it('pages one community in log order with opaque cursors until hasNextPage is false', async () => {
    const seen: ArchivedEvent[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await query.page({ communityId: 'com_q1', first: 3, after });
      seen.push(...page.edges.map((e) => e.node));
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen.map((e) => e.id)).toEqual(ids.com_q1);
    expect(seen.map((e) => e.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(seen.every((e) => e.communityId === 'com_q1')).toBe(true);
  });

  it('filters by type and never shows another community', async () => {
    const page = await query.page({ communityId: 'com_q2', types: ['TierDefined'] });
    expect(page.edges.map((e) => e.node.type)).toEqual(['TierDefined']);
    expect(page.edges.map((e) => e.node.id)).toEqual([ids.com_q2[2]]);
    expect(page.pageInfo.hasNextPage).toBe(false);
    expect((await query.page({ communityId: 'com_nobody' })).edges).toEqual([]);
  });

  it('returns events with the envelope the ledger recorded', async () => {
    const { edges } = await query.page({ communityId: 'com_q1', first: 1 });
    expect(edges[0].node).toMatchObject({
      id: ids.com_q1[0],
      source: 'admin',
      actor: 'usr_admin',
      schemaVersion: 1,
      recordedAt: '2026-03-01T00:01:00.000Z',
      data: { note: 'hello', nested: { b: 2, a: [1, 'x', null] } },
    });
  });

  it('refuses a page size outside 1..500 and a cursor it did not issue', async () => {
    await expect(query.page({ communityId: 'com_q1', first: 0 })).rejects.toThrow(BadUserInputError);
    await expect(query.page({ communityId: 'com_q1', first: 501 })).rejects.toThrow(BadUserInputError);
    await expect(query.page({ communityId: 'com_q1', after: 'not-a-cursor' })).rejects.toThrow(
      BadUserInputError,
    );
    expect((await query.page({ communityId: 'com_q1', first: 500 })).edges).toHaveLength(8);
  });

  it('streams the archive in log order per community, filtered by time window and type', async () => {
    const all: ArchivedEvent[] = [];
    for await (const e of query.streamArchive({ pageSize: 5 })) all.push(e);
    expect(all.map((e) => e.id)).toEqual([...ids.com_q1, ...ids.com_q2]);

    const windowed: string[] = [];
    for await (const e of query.streamArchive({
      communityId: 'com_q1',
      since: '2026-03-01T00:03:00Z',
      until: '2026-03-01T00:07:00Z',
      pageSize: 2,
    })) {
      windowed.push(e.recordedAt);
    }
    expect(windowed).toEqual(['2026-03-01T00:04:00.000Z', '2026-03-01T00:05:00.000Z']);

    const typed: string[] = [];
    for await (const e of query.streamArchive({ types: ['TierDefined'] })) typed.push(e.type);
    expect(typed).toEqual(['TierDefined', 'TierDefined', 'TierDefined']);
  });

  it('verifyArchive finds no broken link in an untouched archive and reports the first tampered row', async () => {
    expect(await query.verifyArchive()).toBeNull();
    await ds.query(
      `UPDATE ledger_events SET data = jsonb_set(data::jsonb, '{note}', '"tampered"')::json WHERE community_id = 'com_q1' AND sequence = 5`,
    );
    try {
      const broken = await query.verifyArchive();
      expect(broken).toMatchObject({
        communityId: 'com_q1',
        sequence: 5,
        eventId: ids.com_q1[4],
        reason: 'hash',
      });
      expect(broken!.expected).not.toBe(broken!.actual);
      expect(await query.verifyArchive('com_q2')).toBeNull();
    } finally {
      await ds.query(
        `UPDATE ledger_events SET data = jsonb_set(data::jsonb, '{note}', '"hello"')::json WHERE community_id = 'com_q1' AND sequence = 5`,
      );
    }
    expect(await query.verifyArchive()).toBeNull();
  });

  it('verifyArchive reports a deleted row as a gap in the sequence', async () => {
    const [{ saved }]: { saved: unknown }[] = await ds.query(
      `SELECT to_jsonb(t) AS saved FROM ledger_events t WHERE community_id = 'com_q2' AND sequence = 2`,
    );
    await ds.query(`DELETE FROM ledger_events WHERE community_id = 'com_q2' AND sequence = 2`);
    try {
      expect(await query.verifyArchive('com_q2')).toMatchObject({
        sequence: 3,
        expected: '2',
        actual: '3',
        reason: 'sequence',
      });
    } finally {
      await ds.query(
        `INSERT INTO ledger_events SELECT * FROM jsonb_populate_record(NULL::ledger_events, $1)`,
        [saved],
      );
    }
    expect(await query.verifyArchive()).toBeNull();
  });

  it('keeps every payload and every link through the upgrade of an archive written as jsonb', async () => {
    const payloads = async () =>
      new Map(
        (await ds.query<{ id: string; data: unknown }[]>(`SELECT id, data FROM ledger_events`)).map((r) => [
          r.id,
          r.data,
        ]),
      );
    const written = await payloads();
    // The archive as earlier versions left it: payloads in jsonb, the conversion not applied yet.
    await ds.query(`ALTER TABLE ledger_events ALTER COLUMN data TYPE jsonb USING data::jsonb`);
    await ds.query(`DELETE FROM read_model_migrations WHERE name = 'LedgerEventsJson1764230401100'`);

    const applied = await ds.runMigrations({ transaction: 'each' });
    expect(applied.map((m) => m.name)).toEqual(['LedgerEventsJson1764230401100']);
    const [{ type }] = await ds.query<{ type: string }[]>(
      `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = 'ledger_events'::regclass AND attname = 'data'`,
    );
    expect(type).toBe('json');
    expect(await payloads()).toEqual(written);
    expect(written.size).toBe(12);
    expect(await query.verifyArchive()).toBeNull();
  });
});

describe('the archive', () => {
  it('keeps payloads of any JSON shape exactly, and their chain verifies', async () => {
    const db = await createTestDatabase('proj_shapes');
    const store = await freshReadModels(db.url, 'shapes');
    const ledger = new InMemoryLedger();
    const projector = new Projector({
      dataSource: store.ds,
      ledger,
      projections: [archiveProjection()],
      logger: pino({ level: 'silent' }),
    });
    try {
      const payloads: unknown[] = [
        null,
        ['a', 1, null, { k: [] }],
        'say "hi" \\ to {all} of [you] \u00e9\u{1F600}\n',
        { big: 2 ** 60, small: 1e-7, neg: -0.5, empty: {}, quote: '"{}[]' },
      ];
      const appended = await ledger.append(
        payloads.map((data) => aNewEvent({ communityId: 'com_shapes', data })),
      );
      projector.start();
      expect(await projector.waitFor({ eventIds: appended.map((a) => a.id) }, 10_000)).toBe(true);
      const query = new LedgerEventsQuery(store.ds);
      const { edges } = await query.page({ communityId: 'com_shapes', first: 10 });
      expect(edges.map((e) => e.node.data)).toEqual(payloads);
      expect(await query.verifyArchive('com_shapes')).toBeNull();
    } finally {
      await projector.stop();
      await store.close();
      await db.drop();
    }
  });
});

import { clientWithAnswerDeadline, setAnswerDeadline, type RecordedEvent } from '@gatehouse/ledger';
import { createTestDatabase, eventually, type TestDatabase } from '@test/support';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { archiveProjection, ARCHIVE_PROJECTION } from '../archive/archive.projection';
import { LedgerEventsQuery } from '../archive/ledger-events.query';
import { aNewEvent, manyEvents } from '../testing/event-builder';
import { InMemoryLedger } from '../testing/in-memory-ledger';
import { freshReadModels, tableText } from '../testing/projection-store';
import type { DataSourceConfig } from '../data-source';
import type { Projection, ProjectionTx } from './projection';
import { Projector } from './projector';
import { ProjectionAnomalyError } from './projector.errors';

jest.setTimeout(60_000);

const silent = pino({ level: 'silent' });

describe('Projector', () => {
  let db: TestDatabase;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('proj_rt');
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await db.drop();
  });

  async function setup(projections: Projection[], maxBatch = 50, client?: DataSourceConfig['client']) {
    const store = await freshReadModels(db.url, 't', { client });
    const ledger = new InMemoryLedger();
    const projector = new Projector({
      dataSource: store.ds,
      ledger,
      projections,
      logger: silent,
      maxBatch,
      backoff: { initialMs: 10, maxMs: 50 },
    });
    cleanups.push(() => store.close());
    cleanups.push(() => projector.stop());
    return { ds: store.ds, ledger, projector };
  }

  async function checkpointOf(ds: DataSource, name: string): Promise<string | null> {
    const rows: { position: string | null }[] = await ds.query(
      `SELECT position FROM projection_checkpoints WHERE name = $1`,
      [name],
    );
    return rows[0]?.position ?? null;
  }

  /** Records the ids it sees; rejects `Poison` facts and writes a NULL (a constraint violation) for `Broken` ones. */
  function idsProjection(name = 'ids'): Projection {
    return {
      name,
      tables: ['projected_ids'],
      async apply(tx: ProjectionTx, events: readonly RecordedEvent[]) {
        for (const e of events) {
          if (e.type === 'Poison') throw new ProjectionAnomalyError(`cannot fold ${e.id}`);
          await tx.query(`INSERT INTO projected_ids (id, community_id) VALUES ($1, $2)`, [
            e.id,
            e.type === 'Broken' ? null : e.communityId,
          ]);
        }
      },
    };
  }

  async function createIdsTable(ds: DataSource) {
    await ds.query(`CREATE TABLE projected_ids (id text PRIMARY KEY, community_id text NOT NULL)`);
  }

  it('archives every event once, in log order, numbered and chained per community', async () => {
    const { ds, ledger, projector } = await setup([archiveProjection()], 40);
    const appended = await ledger.append(manyEvents(250, 3));
    projector.start();
    const last = appended[appended.length - 1];
    expect(await projector.waitFor({ eventIds: [last.id] }, 10_000)).toBe(true);

    const rows: { id: string; community_id: string; sequence: string; position: string }[] = await ds.query(
      `SELECT id, community_id, sequence, position FROM ledger_events ORDER BY position`,
    );
    expect(rows.map((r) => r.id)).toEqual(appended.map((a) => a.id));
    for (const c of ['com_0', 'com_1', 'com_2']) {
      const seqs = rows.filter((r) => r.community_id === c).map((r) => Number(r.sequence));
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
    expect(await new LedgerEventsQuery(ds).verifyArchive()).toBeNull();
    expect(await checkpointOf(ds, ARCHIVE_PROJECTION)).toBe(last.position);
    expect(projector.status()[0]).toMatchObject({ applied: 250, batches: 7, anomalies: 0 });
  });

  it('ignores a duplicate id delivered again: the first copy wins', async () => {
    const { ds, ledger, projector } = await setup([archiveProjection()]);
    const first = await ledger.append([aNewEvent({ id: 'evt_dup', data: { copy: 1 } }), aNewEvent()]);
    projector.start();
    expect(await projector.waitFor({ eventIds: first.map((a) => a.id) }, 5000)).toBe(true);

    const [original] = await collect(ledger.read());
    ledger.appendRecorded([{ ...original, data: { copy: 2 } }]);
    const dupPosition = (await ledger.head())!;
    expect(await projector.waitFor({ communityId: original.communityId, position: dupPosition }, 5000)).toBe(
      true,
    );

    const rows: { data: unknown; sequence: string }[] = await ds.query(
      `SELECT data, sequence FROM ledger_events WHERE id = 'evt_dup'`,
    );
    expect(rows).toEqual([{ data: { copy: 1 }, sequence: '1' }]);
    expect(await ds.query(`SELECT count(*)::int AS n FROM ledger_events`)).toEqual([{ n: 2 }]);
    expect(await checkpointOf(ds, ARCHIVE_PROJECTION)).toBe(dupPosition);
  });

  it('records an anomaly and skips the event when a projection rejects one fact, applying the rest of the batch', async () => {
    const { ds, ledger, projector } = await setup([idsProjection()], 100);
    await createIdsTable(ds);
    const events = [
      aNewEvent(),
      aNewEvent({ type: 'Poison' }),
      aNewEvent(),
      aNewEvent({ type: 'Broken' }),
      aNewEvent(),
    ];
    const appended = await ledger.append(events);
    projector.start();
    expect(await projector.waitFor({ eventIds: appended.map((a) => a.id) }, 5000)).toBe(true);

    const ids: { id: string }[] = await ds.query(`SELECT id FROM projected_ids ORDER BY id`);
    expect(ids.map((r) => r.id).sort()).toEqual([appended[0].id, appended[2].id, appended[4].id].sort());
    const anomalies: { projection: string; event_id: string; position: string; reason: string }[] =
      await ds.query(
        `SELECT projection, event_id, position, reason FROM projection_anomalies ORDER BY position`,
      );
    expect(anomalies).toEqual([
      {
        projection: 'ids',
        event_id: appended[1].id,
        position: appended[1].position,
        reason: expect.stringContaining('cannot fold'),
      },
      {
        projection: 'ids',
        event_id: appended[3].id,
        position: appended[3].position,
        reason: expect.stringContaining('null value'),
      },
    ]);
    expect(await checkpointOf(ds, 'ids')).toBe(appended[4].position);
    expect(projector.status()[0]).toMatchObject({ applied: 3, anomalies: 2 });
  });

  it('stops and retries a batch after an infrastructure error, applying it exactly once', async () => {
    let calls = 0;
    const inner = idsProjection('flaky');
    const flaky: Projection = {
      ...inner,
      async apply(tx, events) {
        calls++;
        await inner.apply(tx, events);
        if (calls <= 2) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      },
    };
    const { ds, ledger, projector } = await setup([flaky]);
    await createIdsTable(ds);
    const appended = await ledger.append(manyEvents(10));
    projector.start();
    expect(await projector.waitFor({ eventIds: appended.map((a) => a.id) }, 5000)).toBe(true);

    expect(calls).toBe(3);
    expect(await ds.query(`SELECT count(*)::int AS n FROM projected_ids`)).toEqual([{ n: 10 }]);
    expect(await ds.query(`SELECT count(*)::int AS n FROM projection_anomalies`)).toEqual([{ n: 0 }]);
  });

  it('commits batches without waiting for the WAL flush, and only inside its own transactions', async () => {
    const settings: string[] = [];
    const probe: Projection = {
      name: 'probe',
      tables: [],
      async apply(tx, events) {
        const [row] = await tx.query<{ s: string }>(`SELECT current_setting('synchronous_commit') AS s`);
        for (const _e of events) settings.push(row.s);
      },
    };
    const { ds, ledger, projector } = await setup([probe]);
    const appended = await ledger.append([aNewEvent(), aNewEvent()]);
    projector.start();
    expect(await projector.waitFor({ eventIds: appended.map((a) => a.id) }, 5000)).toBe(true);
    expect(settings).toEqual(['off', 'off']);
    // SET LOCAL: the pooled connection goes back with the server's setting.
    const after = await Promise.all(
      Array.from({ length: 3 }, () => ds.query(`SELECT current_setting('synchronous_commit') AS s`)),
    );
    expect(after.map((r: { s: string }[]) => r[0].s)).toEqual(['on', 'on', 'on']);
    // A rebuild's batches (no checkpoint to lock) too.
    settings.length = 0;
    await projector.rebuild('probe');
    expect(settings).toEqual(['off', 'off']);
  });

  it('only hands a projection the types it asks for, while its checkpoint moves past the others', async () => {
    const seen: string[] = [];
    const typed: Projection = {
      name: 'typed',
      types: ['Wanted'],
      tables: [],
      async apply(_tx, events) {
        seen.push(...events.map((e) => e.type));
      },
    };
    const { ds, ledger, projector } = await setup([typed]);
    const appended = await ledger.append([
      aNewEvent({ type: 'Wanted' }),
      aNewEvent({ type: 'Other' }),
      aNewEvent({ type: 'Wanted' }),
      aNewEvent({ type: 'Other' }),
    ]);
    projector.start();
    expect(await projector.waitFor({ eventIds: appended.map((a) => a.id) }, 5000)).toBe(true);
    expect(seen).toEqual(['Wanted', 'Wanted']);
    expect(await checkpointOf(ds, 'typed')).toBe(appended[3].position);
  });

  it('waitFor resolves once every projection has passed the position, and false after the timeout', async () => {
    const { ds, ledger, projector } = await setup([archiveProjection(), idsProjection()]);
    await createIdsTable(ds);
    const [a] = await ledger.append([aNewEvent({ communityId: 'com_w' })]);

    const started = Date.now();
    expect(await projector.waitFor({ communityId: 'com_w', position: a.position }, 150)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);

    const waiting = projector.waitFor({ communityId: 'com_w', position: a.position }, 5000);
    projector.start();
    expect(await waiting).toBe(true);
    expect(await ds.query(`SELECT count(*)::int AS n FROM ledger_events`)).toEqual([{ n: 1 }]);
    expect(await ds.query(`SELECT count(*)::int AS n FROM projected_ids`)).toEqual([{ n: 1 }]);
  });

  it('reports lag as the number of events after each checkpoint', async () => {
    const { ledger, projector } = await setup([archiveProjection()]);
    const appended = await ledger.append(manyEvents(30));
    // Counted by the ledger without reading the events: /readyz asks for it while the projector is
    // behind, when reading thousands of payloads would slow both.
    const read = jest.spyOn(ledger, 'read');
    expect(await projector.lag()).toEqual([
      { projection: ARCHIVE_PROJECTION, behind: 30, capped: false, checkpoint: null },
    ]);
    expect((await projector.lag(10))[0]).toMatchObject({ behind: 10, capped: true });
    expect(read).not.toHaveBeenCalled();
    read.mockRestore();

    projector.start();
    await projector.waitFor({ eventIds: [appended[29].id] }, 5000);
    expect((await projector.lag())[0]).toMatchObject({
      behind: 0,
      capped: false,
      checkpoint: appended[29].position,
    });
  });

  it('rebuilds from position zero into a shadow schema and swaps in rows byte-identical to the live ones', async () => {
    const { ds, ledger, projector } = await setup([archiveProjection()], 7);
    projector.start();
    // Live rows are built incrementally, in uneven rounds, with a duplicate delivery in between.
    for (const n of [5, 23, 1, 40]) {
      const appended = await ledger.append(manyEvents(n, 4));
      await projector.waitFor({ eventIds: appended.map((a) => a.id) }, 5000);
    }
    const [someEvent] = await collect(ledger.read());
    ledger.appendRecorded([someEvent]);
    await projector.waitFor({ communityId: someEvent.communityId, position: (await ledger.head())! }, 5000);
    const live = await tableText(ds, 'ledger_events', 'id');
    const liveCheckpoint = await checkpointOf(ds, ARCHIVE_PROJECTION);
    expect(live).toHaveLength(69);

    const [report] = await projector.rebuild(ARCHIVE_PROJECTION);
    expect(report).toEqual({ projection: ARCHIVE_PROJECTION, events: 70, seconds: expect.any(Number) });
    expect(await tableText(ds, 'ledger_events', 'id')).toEqual(live);
    expect(await checkpointOf(ds, ARCHIVE_PROJECTION)).toBe(liveCheckpoint);
    const leftovers: unknown[] = await ds.query(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild_%'`,
    );
    expect(leftovers).toEqual([]);

    // The live projection resumes after the swap, continuing each community's sequence and chain.
    const more = await ledger.append(manyEvents(8, 4));
    expect(await projector.waitFor({ eventIds: more.map((a) => a.id) }, 5000)).toBe(true);
    expect(await ds.query(`SELECT count(*)::int AS n FROM ledger_events`)).toEqual([{ n: 77 }]);
    expect(await new LedgerEventsQuery(ds).verifyArchive()).toBeNull();
  });

  it('swaps a rebuilt projection in however long its readers keep the database silent, beyond GATEHOUSE_DATABASE_TIMEOUT_SECONDS', async () => {
    const limitMs = 300;
    const { ds, ledger, projector } = await setup(
      [archiveProjection()],
      16,
      clientWithAnswerDeadline(limitMs),
    );
    await ledger.append(manyEvents(20, 2));
    // A reader holds the live table for three times the limit: the swap's lock waits for it, in silence.
    const reader = ds.createQueryRunner();
    await reader.connect();
    setAnswerDeadline(await reader.connect(), 0);
    await reader.startTransaction();
    await reader.query('SELECT count(*) FROM ledger_events');
    const released = new Promise((r) => setTimeout(r, 3 * limitMs)).then(async () => {
      await reader.commitTransaction();
      await reader.release();
    });
    const [report] = await projector.rebuild(ARCHIVE_PROJECTION);
    await released;
    expect(report.events).toBe(20);
    expect(await ds.query(`SELECT count(*)::int AS n FROM ledger_events`)).toEqual([{ n: 20 }]);
    // Other queries keep the limit: one that works in silence longer fails.
    await expect(ds.query(`SELECT pg_sleep(${(3 * limitMs) / 1000})`)).rejects.toMatchObject({
      code: 'GH_PG_NO_ANSWER',
    });
  });

  it('a rebuild alone brings a stopped projection up to the ledger head, and waitFor sees it', async () => {
    const { ds, ledger, projector } = await setup([archiveProjection()], 16);
    const appended = await ledger.append(manyEvents(50, 2));
    const [report] = await projector.rebuild();
    expect(report.events).toBe(50);
    expect(projector.status()[0].running).toBe(false);
    expect(await projector.waitFor({ eventIds: [] }, 10)).toBe(true);
    const last = appended[49];
    expect(await projector.waitFor({ communityId: 'com_1', position: last.position }, 100)).toBe(true);
    expect(await ds.query(`SELECT count(*)::int AS n FROM ledger_events`)).toEqual([{ n: 50 }]);
    expect(await checkpointOf(ds, ARCHIVE_PROJECTION)).toBe(last.position);
    expect((await projector.lag())[0]).toMatchObject({ behind: 0 });
  });

  it('two projectors racing on the same checkpoint still apply each event once', async () => {
    const { ds, ledger, projector } = await setup([archiveProjection()], 10);
    const other = new Projector({
      dataSource: ds,
      ledger,
      projections: [archiveProjection()],
      logger: silent,
      maxBatch: 10,
      backoff: { initialMs: 5, maxMs: 20 },
    });
    cleanups.push(() => other.stop());
    const appended = await ledger.append(manyEvents(300, 3));
    projector.start();
    other.start();
    const last = appended[299];
    await eventually(
      async () => ((await checkpointOf(ds, ARCHIVE_PROJECTION)) === last.position ? true : undefined),
      20_000,
    );

    const [{ n, distinct }]: { n: number; distinct: number }[] = await ds.query(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct FROM ledger_events`,
    );
    expect({ n, distinct }).toEqual({ n: 300, distinct: 300 });
    expect(await new LedgerEventsQuery(ds).verifyArchive()).toBeNull();
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

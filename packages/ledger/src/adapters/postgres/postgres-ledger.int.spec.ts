import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';
import {
  createTestDatabase,
  eventually,
  startOwnPostgres,
  startStallProxy,
  type OwnPostgres,
  type TestDatabase,
} from '@test/support';
import { ledgerContract } from '../../ledger.contract';
import { LedgerUnavailableError, UnknownCommunityError } from '../../ledger.errors';
import type { Ledger, RecordedEvent } from '../../ledger.port';
import { clientWithAnswerDeadline } from './answer-deadline';
import { PostgresLedger, type HeldBackReport } from './postgres-ledger';
import { tableNames } from './postgres-ledger.sql';

jest.setTimeout(60_000);

let db: TestDatabase;
const open: Ledger[] = [];

beforeAll(async () => {
  db = await createTestDatabase('ledger');
});

afterAll(async () => {
  await Promise.all(open.map((l) => l.close()));
  await db.drop();
});

async function openLedger(
  prefix: string,
  extra: Partial<ConstructorParameters<typeof PostgresLedger>[0]> = {},
) {
  const ledger = new PostgresLedger({ connectionString: db.url, prefix, pollIntervalMs: 100, ...extra });
  open.push(ledger);
  await ledger.init();
  return ledger;
}

function freshPrefix(): string {
  return `l_${randomBytes(4).toString('hex')}`;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** One statement on a connection of its own. */
async function sql<T extends object>(text: string): Promise<T[]> {
  const c = new Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/**
 * A direct call of the log's append function, as the adapter makes it: the envelopes without their
 * payloads, the payloads, and the batch's ids and communities.
 */
function appendCall(
  client: Client,
  prefix: string,
  envelopes: { id: string; communityId: string; data: unknown }[],
  described: { ids?: string[]; communities?: string[]; payloads?: unknown[] } = {},
) {
  return client.query<{ out_id: string; out_appended: boolean }>(
    `SELECT * FROM ${prefix}_append($1::json, $2::json, $3::text[], $4::text[])`,
    [
      JSON.stringify(envelopes.map(({ data: _data, ...meta }) => meta)),
      JSON.stringify(described.payloads ?? envelopes.map((e) => e.data)),
      described.ids ?? envelopes.map((e) => e.id),
      described.communities ?? [...new Set(envelopes.map((e) => e.communityId))],
    ],
  );
}

ledgerContract('postgres', async () => {
  const prefix = freshPrefix();
  const ledger = await openLedger(prefix);
  const reopened: Ledger[] = [];
  return {
    ledger,
    reopen: async () => {
      const l = await openLedger(prefix);
      reopened.push(l);
      return l;
    },
    dispose: async () => {
      await Promise.all([ledger, ...reopened].map((l) => l.close()));
    },
  };
});

describe('PostgresLedger', () => {
  const event = (communityId: string, n: number) => ({
    type: 'TierDefined',
    communityId,
    source: 'admin' as const,
    occurredAt: '2026-01-01T00:00:00.000Z',
    data: { n },
  });

  it('creates its tables idempotently, also when two instances init at once', async () => {
    const prefix = freshPrefix();
    await Promise.all([openLedger(prefix), openLedger(prefix)]);
    const again = await openLedger(prefix);
    await again.append([event('c1', 1)]);
    expect(again.tableName).toBe(`${prefix}_log`);
  });

  it('keeps regions apart: each prefix is its own ledger', async () => {
    const eu = await openLedger(freshPrefix());
    const us = await openLedger(freshPrefix());
    await eu.append([event('c1', 1)]);
    expect(await us.head()).toBeNull();
    expect(await eu.head('c1')).not.toBeNull();
  });

  const envelope = (communityId: string, id: string) => ({
    ...event(communityId, 1),
    id,
    recordedAt: '2026-01-01T00:00:00.000Z',
    schemaVersion: 1,
    subject: null,
    actor: null,
    causationId: null,
    correlationId: null,
  });

  it("keeps each event's data as the text it was given, not re-encoded", async () => {
    const prefix = freshPrefix();
    const ledger = await openLedger(prefix);
    // Keys out of order, a nested array, a number with a fraction: jsonb would sort the keys by
    // length and put spaces after every colon and comma.
    const data = { zeta: 1, a: [1.5, { y: 'x', b: null }], mid: 'é\u2028' };
    await ledger.append([{ ...event('c1', 1), id: 'text-kept', data }]);
    const rows = await sql<{ type: string; text: string }>(
      `SELECT pg_typeof(data)::text AS type, data::text AS text FROM ${prefix}_log WHERE id = 'text-kept'`,
    );
    expect(rows[0]).toEqual({ type: 'json', text: JSON.stringify(data) });
    const [read] = await collect(ledger.read({ communityId: 'c1' }));
    expect(read.data).toEqual(data);
    expect(Object.keys(read.data as object)).toEqual(['zeta', 'a', 'mid']);
  });

  it('refuses a batch that the payloads, ids and communities given with it do not describe, writing nothing', async () => {
    const prefix = freshPrefix();
    await openLedger(prefix);
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      const batch = [envelope('c1', 'told-1'), envelope('c2', 'told-2')];
      const call = (ids: string[], communities: string[], events = batch, payloads?: unknown[]) =>
        appendCall(c, prefix, events, { ids, communities, payloads });
      // c2 is not locked, so its order could not be kept; an id missing; ids out of order
      for (const [ids, communities] of [
        [['told-1', 'told-2'], ['c1']],
        [['told-1'], ['c1', 'c2']],
        [
          ['told-2', 'told-1'],
          ['c1', 'c2'],
        ],
      ]) {
        await expect(call(ids, communities)).rejects.toMatchObject({ code: '22023' });
      }
      // a payload missing, one too many
      for (const payloads of [[{ n: 1 }], [{ n: 1 }, { n: 2 }, { n: 3 }]]) {
        await expect(call(['told-1', 'told-2'], ['c1', 'c2'], batch, payloads)).rejects.toMatchObject({
          code: '22023',
        });
      }
      // The single-event path checks as much: the other community, the other id, one event for two,
      // two payloads for one event.
      for (const [ids, communities, events, payloads] of [
        [['told-1'], ['c2'], batch.slice(0, 1), undefined],
        [['told-2'], ['c1'], batch.slice(0, 1), undefined],
        [['told-1'], ['c1'], batch, undefined],
        [['told-1'], ['c1'], batch.slice(0, 1), [{ n: 1 }, { n: 2 }]],
      ] as const) {
        await expect(
          call([...ids], [...communities], [...events], payloads && [...payloads]),
        ).rejects.toMatchObject({ code: '22023' });
      }
      const { rows } = await c.query(`SELECT count(*)::int AS n FROM ${prefix}_log`);
      expect(rows[0].n).toBe(0);
      await call(['told-1', 'told-2'], ['c2', 'c1']);
      const after = await c.query<{ id: string; data: unknown }>(
        `SELECT id, data FROM ${prefix}_log ORDER BY id`,
      );
      expect(after.rows).toEqual([
        { id: 'told-1', data: { n: 1 } },
        { id: 'told-2', data: { n: 1 } },
      ]);
    } finally {
      await c.end();
    }
  });

  it('goes on appending to a log created with a jsonb data column, and to one converted to json', async () => {
    const prefix = freshPrefix();
    const first = await openLedger(prefix);
    await first.append([{ ...event('c1', 1), id: 'before' }]);
    await first.close();
    // A log as earlier versions created it.
    await sql(`DROP FUNCTION ${prefix}_append(json, json, text[], text[])`);
    await sql(`ALTER TABLE ${prefix}_log ALTER COLUMN data TYPE jsonb USING data::jsonb`);

    const legacy = await openLedger(prefix);
    // and an instance that never ran init: it finds the column's type on its first append
    const uninitialised = new PostgresLedger({ connectionString: db.url, prefix });
    open.push(uninitialised);
    const appended = await legacy.append([
      { ...event('c1', 2), id: 'on-jsonb' },
      { ...event('c2', 3), id: 'before' },
    ]);
    expect(appended.map((r) => r.appended)).toEqual([true, false]);
    expect((await uninitialised.append([{ ...event('c1', 4), id: 'lazy' }]))[0].appended).toBe(true);
    expect((await collect(legacy.read({ communityId: 'c1' }))).map((e) => [e.id, e.data])).toEqual([
      ['before', { n: 1 }],
      ['on-jsonb', { n: 2 }],
      ['lazy', { n: 4 }],
    ]);

    // Its owner converts it; the next start appends through the json function.
    await legacy.close();
    await sql(`ALTER TABLE ${prefix}_log ALTER COLUMN data TYPE json USING data::json`);
    const converted = await openLedger(prefix);
    await converted.append([{ ...event('c1', 5), id: 'on-json' }]);
    expect((await collect(converted.read({ communityId: 'c1' }))).map((e) => e.id)).toEqual([
      'before',
      'on-jsonb',
      'lazy',
      'on-json',
    ]);
  });

  it('never lets a reader pass an event whose transaction commits late', async () => {
    const prefix = freshPrefix();
    const ledger = await openLedger(prefix);
    const a = new Client({ connectionString: db.url });
    const b = new Client({ connectionString: db.url });
    await a.connect();
    await b.connect();
    const delivered: RecordedEvent[] = [];
    let checkpoint: string | undefined;
    const sub = ledger.subscribe('late', { maxBatch: 10 }, async (batch) => {
      for (const e of batch) {
        delivered.push(e);
        checkpoint = ledger.advance(checkpoint, e);
      }
    });
    try {
      // tx A takes position n first, tx B takes n+1 and commits first
      await a.query('BEGIN');
      await appendCall(a, prefix, [envelope('late-a', 'tx-a')]);
      await b.query('BEGIN');
      await appendCall(b, prefix, [envelope('late-b', 'tx-b')]);
      const positions = await b.query(`SELECT id, position FROM ${prefix}_log ORDER BY position`);
      await b.query('COMMIT');
      expect(positions.rows.map((r) => r.id)).toEqual(['tx-b']);

      // B is committed and visible to a plain query, yet no reader of every community may pass A
      const visible = await ledger.read({ communityId: 'late-b' });
      const ids: string[] = [];
      for await (const e of visible) ids.push(e.id);
      expect(ids).toEqual(['tx-b']);
      await new Promise((r) => setTimeout(r, 600));
      expect(delivered.map((e) => e.id)).toEqual([]);

      await a.query('COMMIT');
      const deadline = Date.now() + 10_000;
      while (delivered.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(delivered.map((e) => e.id)).toEqual(['tx-a', 'tx-b']);
      const { rows } = await a.query(`SELECT id, position FROM ${prefix}_log ORDER BY position`);
      expect(rows.map((r) => r.id)).toEqual(['tx-a', 'tx-b']);
    } finally {
      await sub.stop();
      await a.end();
      await b.end();
    }
  });

  it('says when readers of every community are held back by an open transaction, and names it', async () => {
    const reports: HeldBackReport[] = [];
    const ledger = await openLedger(freshPrefix(), {
      heldBackReportMs: 300,
      onHeldBack: (r) => reports.push(r),
    });
    const blocker = new Client({ connectionString: db.url });
    await blocker.connect();
    const delivered: string[] = [];
    const sub = ledger.subscribe('held', {}, async (batch) => {
      delivered.push(...batch.map((e) => e.id));
    });
    try {
      const pid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // A transaction that wrote (it holds an id), then left open: say, a session someone forgot.
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_current_xact_id()');
      const openedAt = (await blocker.query<{ at: Date }>("SELECT 'left open on purpose', now() AS at"))
        .rows[0].at;
      const before = await ledger.countAfter(undefined, 1_000_000);
      await ledger.append([{ ...event('held-c', 1), id: 'held-1' }]);
      await eventually(async () => (reports.length > 0 ? true : undefined), 10_000);
      expect(delivered).toEqual([]);
      // Not delivered, yet counted as still to read: a projector held back shows as behind.
      expect(await ledger.countAfter(undefined, 1_000_000)).toBe(before + 1);
      expect(reports[0].forMs).toBeGreaterThanOrEqual(300);
      // The oldest transaction on the server: this one, unless a suite beside this one (the server is
      // shared) has one open that is older still.
      const named = reports[0].transaction!;
      if (named.pid === pid)
        expect(named).toMatchObject({
          database: db.name,
          state: 'idle in transaction',
          query: "SELECT 'left open on purpose', now() AS at",
        });
      else expect(named.startedAt!.getTime()).toBeLessThanOrEqual(openedAt.getTime());
      expect(named.startedAt).toBeInstanceOf(Date);

      await blocker.query('COMMIT');
      await eventually(async () => (delivered.length > 0 ? true : undefined), 10_000);
      expect(delivered).toEqual(['held-1']);
      // Told once: within a minute, an episode is not reported again.
      expect(reports).toHaveLength(1);
    } finally {
      await sub.stop();
      await blocker.end();
    }
  });

  it('reports a head of the whole log that no append still in flight can fall behind', async () => {
    const prefix = freshPrefix();
    const ledger = await openLedger(prefix);
    const a = new Client({ connectionString: db.url });
    await a.connect();
    try {
      const [first] = await ledger.append([{ ...event('head-c', 1), id: 'head-1' }]);
      // An append that took its transaction id before the next one, and commits after it.
      await a.query('BEGIN');
      await appendCall(a, prefix, [envelope('head-c2', 'head-2')]);
      await ledger.append([{ ...event('head-c3', 3), id: 'head-3' }]);
      const head = await ledger.head();
      expect(head).toBe(first.position);
      await a.query('COMMIT');
      const after: string[] = [];
      for await (const e of ledger.read({ after: head! })) after.push(e.id);
      expect(after).toEqual(['head-2', 'head-3']);
      expect(await ledger.head()).not.toBe(first.position);
    } finally {
      await a.end();
    }
  });

  it('delivers an event whose transaction commits late even when a younger position was already delivered', async () => {
    const prefix = freshPrefix();
    const ledger = await openLedger(prefix);
    const a = new Client({ connectionString: db.url });
    const b = new Client({ connectionString: db.url });
    await a.connect();
    await b.connect();
    const delivered: string[] = [];
    const sub = ledger.subscribe('late', {}, async (batch) => {
      delivered.push(...batch.map((e) => e.id));
    });
    try {
      // B holds the older transaction id but takes the later sequence number
      await b.query('BEGIN');
      await b.query('SELECT pg_current_xact_id()');
      await a.query('BEGIN');
      await appendCall(a, prefix, [envelope('late-a', 'tx-a')]);
      await appendCall(b, prefix, [envelope('late-b', 'tx-b')]);
      await b.query('COMMIT');
      const deadline = Date.now() + 10_000;
      while (delivered.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(delivered).toEqual(['tx-b']);
      await a.query('COMMIT');
      while (delivered.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(delivered).toEqual(['tx-b', 'tx-a']);
      const { rows } = await a.query(`SELECT id FROM ${prefix}_log ORDER BY position`);
      expect(rows.map((r) => r.id)).toEqual(['tx-a', 'tx-b']);
    } finally {
      await sub.stop();
      await a.end();
      await b.end();
    }
  });

  it('stores payloads with lz4 where the server has it', async () => {
    const prefix = freshPrefix();
    await openLedger(prefix);
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      let lz4 = true;
      await c.query('CREATE TEMP TABLE lz4_probe (x text COMPRESSION lz4)').catch(() => (lz4 = false));
      const { rows } = await c.query<{ compression: string }>(
        `SELECT attcompression::text AS compression FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'data'`,
        [`${prefix}_log`],
      );
      expect(rows[0].compression).toBe(lz4 ? 'l' : '');
    } finally {
      await c.end();
    }
  });
  it('appends a batch by probing the id index, never by scanning the log, also on plans cached while it was small', async () => {
    const prefix = freshPrefix();
    const ledger = await openLedger(prefix);
    const payload = { note: 'x'.repeat(200) };
    const event = (id: string, community: string) => ({
      id,
      type: 'test.scan',
      communityId: community,
      occurredAt: '2026-01-01T00:00:00Z',
      source: 'system' as const,
      data: payload,
    });
    const c = new Client({ connectionString: db.url });
    await c.connect();
    const append = (events: ReturnType<typeof event>[]) =>
      appendCall(
        c,
        prefix,
        events.map((e) => ({ ...e, recordedAt: e.occurredAt, schemaVersion: 1, subject: null })),
      );
    try {
      // This session plans (and caches) the function's statements while the log is nearly empty.
      for (let b = 0; b < 8; b++)
        await append(Array.from({ length: 10 }, (_, i) => event(`early-${b}-${i}`, `c${i % 3}`)));
      // Then the log grows large enough that a join against the batch's set-returning input
      // (guessed at 100 rows) would be planned as a scan of the whole log.
      for (let b = 0; b < 10; b++)
        await ledger.append(Array.from({ length: 500 }, (_, i) => event(`scan-${b}-${i}`, `c${i % 7}`)));
      await c.query('BEGIN');
      const { rows } = await append([
        ...Array.from({ length: 9 }, (_, i) => event(`scan-new-${i}`, `c${i % 3}`)),
        event('scan-3-3', 'c3'), // already recorded: reported with its original position
      ]);
      expect(rows.map((r) => r.out_appended)).toEqual([...Array(9).fill(true), false]);
      // This transaction's own counters: what the append just did to the log table.
      const scans = await c.query<{ seq_scan: string }>(
        'SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = $1::regclass',
        [`${prefix}_log`],
      );
      expect(Number(scans.rows[0].seq_scan)).toBe(0);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('lets subscriptions of one process share the pages they read, each still getting every event', async () => {
    const pool = new Pool({ connectionString: db.url, max: 5 });
    let pageReads = 0;
    const query = pool.query.bind(pool) as (...a: unknown[]) => unknown;
    (pool as unknown as { query: (...a: unknown[]) => unknown }).query = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('ORDER BY l.tx, l.position LIMIT $1')) pageReads++;
      return query(...args);
    };
    const ledger = await openLedger(freshPrefix(), { pool, busyLingerMs: 0 });
    try {
      for (let i = 0; i < 40; i++) await ledger.append([{ ...event(`c${i % 3}`, i), id: `shared-${i}` }]);
      const seen: string[][] = [[], [], []];
      let calls = 0;
      const subs = seen.map((ids, n) =>
        ledger.subscribe(`share-${n}`, { maxBatch: 10 }, async (batch) => {
          calls++;
          ids.push(...batch.map((e) => e.id));
        }),
      );
      const all = Array.from({ length: 40 }, (_, i) => `shared-${i}`);
      const started = Date.now();
      while (seen.some((ids) => ids.length < 40) && Date.now() - started < 10_000)
        await new Promise((r) => setTimeout(r, 20));
      await Promise.all(subs.map((s) => s.stop()));
      for (const ids of seen) expect(ids).toEqual(all);
      // Three consumers, four pages each: read once and shared, not once per consumer.
      expect(calls).toBe(12);
      expect(pageReads).toBeLessThan(calls);
    } finally {
      await ledger.close();
      await pool.end();
    }
  });

  it('wakes subscribers through NOTIFY well before the polling fallback', async () => {
    const ledger = await openLedger(freshPrefix(), { pollIntervalMs: 60_000 });
    const delivered: string[] = [];
    const sub = ledger.subscribe('notify', {}, async (batch) => {
      delivered.push(...batch.map((e) => e.id));
    });
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await ledger.append([{ ...event('c', 1), id: 'notified' }]);
    while (delivered.length === 0 && Date.now() - started < 5_000)
      await new Promise((r) => setTimeout(r, 10));
    await sub.stop();
    expect(delivered).toEqual(['notified']);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('listens again when its listening connection goes silent (a failover), and reads what it missed', async () => {
    const target = new URL(db.url);
    const proxy = await startStallProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const prefix = freshPrefix();
    // Without notifications it would not read again for a minute.
    const ledger = new PostgresLedger({
      connectionString: viaProxy.toString(),
      prefix,
      pollIntervalMs: 60_000,
      listenerCheckMs: 100,
      poolConfig: { Client: clientWithAnswerDeadline(300) },
    });
    open.push(ledger);
    await ledger.init();
    const direct = await openLedger(prefix);
    const delivered: string[] = [];
    const sub = ledger.subscribe('failover', {}, async (batch) => {
      delivered.push(...batch.map((e) => e.id));
    });
    try {
      await direct.append([{ ...event('c', 1), id: 'before' }]);
      await eventually(async () => (delivered.includes('before') ? true : undefined), 5_000);
      // The subscription is now waiting for a notification, no query under way.
      await new Promise((r) => setTimeout(r, 500));

      proxy.failover();
      await direct.append([{ ...event('c', 2), id: 'after' }]);
      const started = Date.now();
      await eventually(async () => (delivered.includes('after') ? true : undefined), 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(delivered).toEqual(['before', 'after']);
    } finally {
      await sub.stop();
      await proxy.close();
    }
  });

  it('listens only on a session that takes writes: one opened while the server is read-only is given up, and it listens again once it is not', async () => {
    // A LISTEN left on a primary fenced after a failover hears none of the new primary's appends.
    const prefix = freshPrefix();
    const ledger = await openLedger(prefix, {
      pollIntervalMs: 60_000,
      poolConfig: { Client: clientWithAnswerDeadline(0) },
    });
    const direct = await openLedger(prefix);
    const channel = tableNames(prefix).channel;
    const delivered: string[] = [];
    const sub = ledger.subscribe('fenced', {}, async (batch) => {
      delivered.push(...batch.map((e) => e.id));
    });
    // Opened before the fence, this session stays writable.
    const admin = new Client({ connectionString: db.url });
    await admin.connect();
    const listening = async () =>
      (
        await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = $1`,
          [`LISTEN ${channel}`],
        )
      ).rows[0].n;
    try {
      await direct.append([{ ...event('c', 1), id: 'before' }]);
      await eventually(async () => (delivered.includes('before') ? true : undefined), 5_000);
      expect(await listening()).toBe(1);

      await admin.query(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = $1`,
        [`LISTEN ${channel}`],
      );
      // Two of its attempts to listen again, each on a new, read-only session.
      await new Promise((r) => setTimeout(r, 2_500));
      expect(await listening()).toBe(0);

      await admin.query(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);
      await eventually(async () => ((await listening()) === 1 ? true : undefined), 5_000);
      const started = Date.now();
      await direct.append([{ ...event('c', 2), id: 'after' }]);
      await eventually(async () => (delivered.includes('after') ? true : undefined), 5_000);
      // Woken by the notification, not by a read a minute later.
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await admin.query(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);
      await admin.end();
      await sub.stop();
    }
  });

  it('refuses events of a community the guard does not know, writing nothing', async () => {
    const ledger = await openLedger(freshPrefix(), { communityExists: async (id) => id === 'known' });
    await expect(ledger.append([event('known', 1), event('unknown', 2)])).rejects.toThrow(
      UnknownCommunityError,
    );
    expect(await ledger.head()).toBeNull();
    await expect(ledger.append([event('known', 1)])).resolves.toHaveLength(1);
  });

  it('reports an unreachable database as LedgerUnavailableError, never as success', async () => {
    const ledger = new PostgresLedger({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      poolConfig: { connectionTimeoutMillis: 1_000 },
    });
    try {
      await expect(ledger.append([event('c', 1)])).rejects.toThrow(LedgerUnavailableError);
      await expect(ledger.ping()).rejects.toThrow(LedgerUnavailableError);
    } finally {
      await ledger.close();
    }
  });
});

describe('PostgresLedger on a primary fenced by reloading its configuration', () => {
  // `ALTER SYSTEM` and a reload reach every open session of the server: a server of its own. Its
  // pooled connections become read-only, as those left on a primary fenced after a failover; the
  // sessions opened afterwards take writes, as those reaching the new primary would.
  let own: OwnPostgres;
  let admin: Client;
  const event = (n: number, id: string) => ({
    id,
    type: 'TierDefined',
    communityId: 'c',
    source: 'admin' as const,
    occurredAt: '2026-01-01T00:00:00.000Z',
    data: { n },
  });

  beforeAll(async () => {
    own = await startOwnPostgres();
    // Writable whatever the server's configuration says.
    admin = new Client({ connectionString: own.url, options: '-c default_transaction_read_only=off' });
    await admin.connect();
  }, 90_000);

  afterAll(async () => {
    await admin?.end();
    await own?.remove();
  }, 30_000);

  const reload = async (setting: 'on' | 'off') => {
    const { rows } = await admin.query<{ t: Date }>('SELECT pg_conf_load_time() AS t');
    await admin.query(`ALTER SYSTEM SET default_transaction_read_only = ${setting}`);
    await admin.query('SELECT pg_reload_conf()');
    // The server has read it again once this session has: it signals every session, each of which
    // reads it before its next command (what it says about it comes with that command's answer).
    await eventually(async () => {
      const { rows: now } = await admin.query<{ later: boolean }>(
        'SELECT pg_conf_load_time() > $1 AS later',
        [rows[0].t],
      );
      return now[0].later ? true : undefined;
    }, 5_000);
    // A signal reaches a busy machine's other sessions a moment later.
    await new Promise((r) => setTimeout(r, 1_000));
  };

  const sessions = async () =>
    (
      await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = 'postgres' AND pid <> pg_backend_pid()
            AND backend_type = 'client backend' AND application_name = ''`,
      )
    ).rows.map((r) => r.pid);

  it('appends on a new connection when those it had refuse the write, and is unavailable while every one does', async () => {
    const prefix = freshPrefix();
    const ledger = new PostgresLedger({
      connectionString: own.url,
      prefix,
      poolConfig: { Client: clientWithAnswerDeadline(0), max: 3 },
    });
    try {
      await ledger.init();
      // Three pooled connections, opened while the server takes writes.
      await Promise.all([1, 2, 3].map((n) => ledger.append([event(n, `warm_${n}`)])));
      const pooled = await sessions();
      expect(pooled).toHaveLength(3);

      // Sessions opened from now on take writes; the open ones stop taking them.
      await admin.query('ALTER DATABASE postgres SET default_transaction_read_only = off');
      await reload('on');
      const [appended] = await ledger.append([event(4, 'after_fence')]);
      expect(appended).toMatchObject({ id: 'after_fence', appended: true });
      // Each one refused it, and was closed (its server process ends a moment later): the last
      // attempt was on a new connection.
      await eventually(
        async () => ((await sessions()).some((pid) => pooled.includes(pid)) ? undefined : true),
        5_000,
      );

      // Read-only for every session (the database's own setting gone, new ones too).
      await admin.query('ALTER DATABASE postgres RESET default_transaction_read_only');
      await ledger.close();
      const fenced = new PostgresLedger({
        connectionString: own.url,
        prefix,
        poolConfig: { Client: clientWithAnswerDeadline(0), max: 3 },
      });
      try {
        await expect(fenced.append([event(5, 'fenced')])).rejects.toBeInstanceOf(LedgerUnavailableError);
      } finally {
        await fenced.close();
      }
    } finally {
      await ledger.close().catch(() => undefined);
      await admin.query('ALTER DATABASE postgres RESET default_transaction_read_only');
      await reload('off');
    }
  }, 60_000);
});

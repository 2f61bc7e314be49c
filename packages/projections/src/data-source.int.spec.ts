import { createTestDatabase, type TestDatabase } from '@test/support';
import { Client, type ClientConfig } from 'pg';
import type { DataSource } from 'typeorm';
import { clientWithAnswerDeadline } from '@gatehouse/ledger';
import { createDataSource, pendingMigrations, pendingMigrationsOf, runMigrations } from './data-source';
import { migrations } from './migrations';

const ALL = migrations.map((m) => m.name);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('proj_mig');
});
afterAll(async () => {
  await db.drop();
});

describe('read-model migrations', () => {
  it('are reported pending through an open data source and its pool, as /readyz asks', async () => {
    const fresh = await createTestDatabase('proj_mig_of');
    const ds = createDataSource({ url: fresh.url, poolSize: 1 });
    await ds.initialize();
    try {
      expect(await pendingMigrationsOf(ds)).toEqual(ALL);
      await runMigrations(fresh.url);
      expect(await pendingMigrationsOf(ds)).toEqual([]);
      // The pool answers every call: no session is opened per check.
      const sessions = async () => {
        await ds.query('SELECT pg_stat_clear_snapshot()');
        const [row] = await ds.query<{ n: string }[]>(
          'SELECT sessions::text AS n FROM pg_stat_database WHERE datname = current_database()',
        );
        return Number(row.n);
      };
      const before = await sessions();
      for (let i = 0; i < 5; i++) await pendingMigrationsOf(ds);
      await new Promise((r) => setTimeout(r, 300));
      expect((await sessions()) - before).toBe(0);
    } finally {
      await ds.destroy();
      await fresh.drop();
    }
  });

  it('apply to an empty database, then apply nothing the second time', async () => {
    expect(ALL.slice(0, 2)).toEqual(['ProjectorRuntime1764230400000', 'LedgerEvents1764230400001']);
    expect(await pendingMigrations(db.url)).toEqual(ALL);

    expect(await runMigrations(db.url)).toEqual(ALL);
    expect(await runMigrations(db.url)).toEqual([]);
    expect(await pendingMigrations(db.url)).toEqual([]);

    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      const { rows } = await c.query(
        `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
      );
      expect(rows.map((r) => r.tablename)).toEqual(
        expect.arrayContaining([
          'ledger_events',
          'projection_anomalies',
          'projection_checkpoints',
          'read_model_migrations',
        ]),
      );
    } finally {
      await c.end();
    }
  });

  it('stores archived payloads with lz4 where the server has it', async () => {
    await runMigrations(db.url);
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      const { rows: lz4 } = await c.query<{ has: boolean }>(
        `SELECT 'lz4' = ANY(enumvals) AS has FROM pg_settings WHERE name = 'default_toast_compression'`,
      );
      const { rows } = await c.query<{ compression: string }>(
        `SELECT attcompression::text AS compression FROM pg_attribute
          WHERE attrelid = 'ledger_events'::regclass AND attname = 'data'`,
      );
      expect(rows[0].compression).toBe(lz4[0].has ? 'l' : '');
    } finally {
      await c.end();
    }
  });

  it('serialises concurrent runs so each migration is applied once', async () => {
    const schema = 'concurrent_a';
    const results = await Promise.all([
      runMigrations(db.url, { schema }),
      runMigrations(db.url, { schema }),
      runMigrations(db.url, { schema }),
    ]);
    expect(results.flat().sort()).toEqual([...ALL].sort());
    expect(await pendingMigrations(db.url, { schema })).toEqual([]);
  });
});

describe('createDataSource', () => {
  // Reads only: the database the migration tests use serves it too.
  it('makes its connections with the client class given, and bounds the wait for one with connectTimeoutMs', async () => {
    const made: string[] = [];
    class Counted extends Client {
      constructor(config?: string | ClientConfig) {
        super(config);
        made.push('client');
      }
    }
    const ds = createDataSource({ url: db.url, poolSize: 1, client: Counted, connectTimeoutMs: 300 });
    await ds.initialize();
    const holder = ds.createQueryRunner();
    try {
      expect(await ds.query('SELECT 1 AS n')).toEqual([{ n: 1 }]);
      expect(made).toEqual(['client']);
      // The only connection is held: a query waits for it 300 ms, then fails.
      await holder.connect();
      const started = Date.now();
      await expect(ds.query('SELECT 2')).rejects.toThrow(/timeout exceeded when trying to connect/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await holder.release();
      await ds.destroy();
    }
  });

  it('with the stores’ client class, writes on a new connection once its pooled one was read-only: opened so, or refusing a write', async () => {
    // Opened while the database defaults to read-only, a connection keeps refusing writes after it
    // is writable again, as one left on a primary fenced read-only in a failover.
    const fenced = await createTestDatabase('proj_ro');
    const admin = new Client({ connectionString: fenced.url });
    await admin.connect();
    const ds = createDataSource({ url: fenced.url, poolSize: 1, client: clientWithAnswerDeadline(0) });
    const pid = async (m: { query: DataSource['query'] } = ds) =>
      (await m.query<{ pid: number }[]>('SELECT pg_backend_pid() AS pid'))[0].pid;
    try {
      await admin.query('CREATE TABLE notes (n int)');
      await admin.query(`ALTER DATABASE "${fenced.name}" SET default_transaction_read_only = on`);
      await ds.initialize();
      const opened = await pid();
      await admin.query(`ALTER DATABASE "${fenced.name}" RESET default_transaction_read_only`);

      // Only read on, it was still closed when given back (TypeORM gives clients back through the
      // pool's release, which the class hooks): the write goes on a new one.
      const next = await pid();
      expect(next).not.toBe(opened);
      await ds.query('INSERT INTO notes VALUES (1)');
      expect(await pid()).toBe(next);

      // A write refused in a transaction (read-only without the server reporting it, as before
      // PostgreSQL 14), which rolls back on the refusing connection first.
      let refusing = 0;
      await expect(
        ds.transaction(async (m) => {
          refusing = await pid(m);
          await m.query('SET TRANSACTION READ ONLY');
          await m.query('INSERT INTO notes VALUES (2)');
        }),
      ).rejects.toMatchObject({ driverError: { code: '25006' } });
      expect(refusing).toBe(next);
      expect(await pid()).not.toBe(refusing);
      await ds.transaction((m) => m.query('INSERT INTO notes VALUES (3)'));
      expect(await ds.query('SELECT n FROM notes ORDER BY n')).toEqual([{ n: 1 }, { n: 3 }]);
    } finally {
      if (ds.isInitialized) await ds.destroy();
      await admin.end();
      await fenced.drop();
    }
  });
});

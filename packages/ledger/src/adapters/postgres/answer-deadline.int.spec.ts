import { Client, Pool, type PoolClient } from 'pg';
import { createTestDatabase, startStallProxy, type StallProxy, type TestDatabase } from '@test/support';
import {
  clientWithAnswerDeadline,
  PostgresNoAnswerError,
  readOnlySession,
  setAnswerDeadline,
  whenReadOnly,
} from './answer-deadline';
import { isPostgresUnavailable } from './postgres-errors';

jest.setTimeout(60_000);

// Real PostgreSQL behind a proxy that can stop passing bytes (connections left open) or fail over
// (connections open then never answered again, new ones served).

const LIMIT_MS = 500;

describe('clientWithAnswerDeadline', () => {
  let db: TestDatabase;
  let proxy: StallProxy;
  const pools: Pool[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('answer_deadline');
    const target = new URL(db.url);
    proxy = await startStallProxy({ host: target.hostname, port: Number(target.port || 5432) });
  });

  afterEach(async () => {
    proxy.heal();
    await Promise.all(pools.splice(0).map((p) => p.end().catch(() => undefined)));
  });

  afterAll(async () => {
    await proxy?.close();
    await db?.drop();
  });

  const pool = (max = 2) => {
    const url = new URL(db.url);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    const p = new Pool({
      connectionString: url.toString(),
      max,
      connectionTimeoutMillis: 5_000,
      Client: clientWithAnswerDeadline(LIMIT_MS),
    });
    p.on('error', () => undefined);
    pools.push(p);
    return p;
  };

  const timed = async (p: Promise<unknown>): Promise<{ error: unknown; ms: number }> => {
    const started = Date.now();
    const error = await p.then(
      () => null,
      (err: unknown) => err,
    );
    return { error, ms: Date.now() - started };
  };

  it('answers as pg does while the server answers, results that stream longer than the limit included', async () => {
    const p = pool();
    expect((await p.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    // Under the limit of silence: waits.
    expect((await p.query('SELECT pg_sleep(0.2)')).rowCount).toBe(1);
    // Rows that keep coming for longer than the limit (one every 0.1 s for 1.2 s, each larger than
    // the server's 8 KiB send buffer, so each is sent as it is made) are not cut.
    const started = Date.now();
    const { rows } = await p.query<{ i: number }>(
      `SELECT i, repeat('x', 10000) AS filler, pg_sleep(0.1) FROM generate_series(1, 12) AS i`,
    );
    expect(rows).toHaveLength(12);
    expect(Date.now() - started).toBeGreaterThan(1_100);
    await expect(p.query('SELECT nonsense FROM nowhere')).rejects.toMatchObject({ code: '42P01' });
  });

  it('fails a query on a silent connection after the limit, closes it, and the pool serves from a new one', async () => {
    const p = pool();
    await p.query('SELECT 1');
    proxy.stall();
    const stalled = await timed(p.query('SELECT 1'));
    expect(stalled.error).toBeInstanceOf(PostgresNoAnswerError);
    expect(isPostgresUnavailable(stalled.error)).toBe(true);
    expect(stalled.ms).toBeGreaterThanOrEqual(LIMIT_MS - 10);
    expect(stalled.ms).toBeLessThan(LIMIT_MS + 1_500);

    proxy.failover();
    expect((await p.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
  });

  it('bounds checked-out clients too, in promise and callback form; a closed one refuses at once', async () => {
    const p = pool();
    const [one, two]: PoolClient[] = await Promise.all([p.connect(), p.connect()]);
    await Promise.all([one.query('SELECT 1'), two.query('SELECT 1')]);
    proxy.stall();
    const viaPromise = timed(one.query('SELECT 1'));
    const viaCallback = timed(
      new Promise((resolve, reject) => two.query('SELECT 2', (err) => (err ? reject(err) : resolve(null)))),
    );
    for (const outcome of [await viaPromise, await viaCallback]) {
      expect(outcome.error).toBeInstanceOf(PostgresNoAnswerError);
      expect(outcome.ms).toBeLessThan(LIMIT_MS + 1_500);
    }
    const again = await timed(one.query('SELECT 3'));
    expect(again.error).toBeInstanceOf(PostgresNoAnswerError);
    expect(again.ms).toBeLessThan(100);
    one.release();
    two.release();

    proxy.failover();
    expect((await p.query<{ n: number }>('SELECT 4 AS n')).rows).toEqual([{ n: 4 }]);
  });

  it('closes the idle connections of the class, in any pool, once one is found silent: they fail at once rather than each after the limit', async () => {
    const Deadline = clientWithAnswerDeadline(LIMIT_MS);
    const make = () => {
      const url = new URL(db.url);
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
      const p = new Pool({ connectionString: url.toString(), max: 3, Client: Deadline });
      p.on('error', () => undefined);
      pools.push(p);
      return p;
    };
    const [a, b] = [make(), make()];
    // Three idle connections in one pool, one in the other.
    const held = await Promise.all([a.connect(), a.connect(), a.connect()]);
    for (const c of held) await c.query('SELECT 1');
    held.forEach((c) => c.release());
    await b.query('SELECT 1');
    expect([a.idleCount, b.idleCount]).toEqual([3, 1]);

    proxy.stall();
    expect((await timed(a.query('SELECT 1'))).error).toBeInstanceOf(PostgresNoAnswerError);
    proxy.failover();
    // The pools hold none of the connections opened before: the next queries are answered at once.
    await new Promise((r) => setTimeout(r, 50));
    expect([a.totalCount, b.totalCount]).toEqual([0, 0]);
    const next = await timed(Promise.all([a.query('SELECT 1'), a.query('SELECT 1'), b.query('SELECT 1')]));
    expect(next.error).toBeNull();
    expect(next.ms).toBeLessThan(LIMIT_MS);
  });

  it('lets a statement known to work in silence run longer, with the limit set to 0 on its client', async () => {
    const p = pool(1);
    const client = await p.connect();
    expect(setAnswerDeadline(client, 0)).toBe(LIMIT_MS);
    expect((await client.query('SELECT pg_sleep(1)')).rowCount).toBe(1);
    expect(setAnswerDeadline(client, LIMIT_MS)).toBe(0);
    expect((await timed(client.query('SELECT pg_sleep(1)'))).error).toBeInstanceOf(PostgresNoAnswerError);
    client.release();
    // A client of another class is left alone.
    expect(setAnswerDeadline({}, 0)).toBeUndefined();
  });
});

describe('clientWithAnswerDeadline on a server that refuses writes as read-only', () => {
  // Connections opened while the database defaults to read-only keep refusing writes after it is
  // writable again, as those left on a primary fenced read-only in a failover; new ones write.
  let db: TestDatabase;
  let admin: Client;
  const pools: Pool[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('read_only');
    admin = new Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('CREATE TABLE notes (n int)');
  });

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.end().catch(() => undefined)));
    await admin.query(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);
  });

  afterAll(async () => {
    await admin?.end();
    await db?.drop();
  });

  const poolOf = (limitMs: number) => {
    const p = new Pool({ connectionString: db.url, max: 1, Client: clientWithAnswerDeadline(limitMs) });
    p.on('error', () => undefined);
    pools.push(p);
    return p;
  };

  const backendPid = async (c: PoolClient) =>
    (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;

  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err: { code?: string; message: string }) => err.code ?? err.message,
    );

  it.each([LIMIT_MS, 0])(
    'has its pool close a connection opened read-only once given back, though only read on, and write on a new one (limit %i ms)',
    async (limitMs) => {
      const p = poolOf(limitMs);
      await admin.query(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
      let client = await p.connect();
      const fenced = await backendPid(client);
      client.release();
      await admin.query(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);

      client = await p.connect();
      const opened = await backendPid(client);
      expect(opened).not.toBe(fenced);
      expect(await codeOf(client.query('INSERT INTO notes VALUES (1)'))).toBe('ok');
      client.release();
      // A writable connection is kept.
      client = await p.connect();
      expect(await backendPid(client)).toBe(opened);
      client.release();
    },
  );

  it('tells whether a session is read-only, and calls back when a writable one becomes so', async () => {
    const p = poolOf(LIMIT_MS);
    const writable = await p.connect();
    const changed: string[] = [];
    whenReadOnly(writable, () => changed.push('writable'));
    expect(readOnlySession(writable)).toBe(false);
    await writable.query('SET default_transaction_read_only = on');
    expect(readOnlySession(writable)).toBe(true);
    expect(changed).toEqual(['writable']);
    writable.release();

    await admin.query(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
    const opened = await p.connect();
    whenReadOnly(opened, () => changed.push('opened'));
    expect(readOnlySession(opened)).toBe(true);
    await opened.query('SET default_transaction_read_only = on');
    // Read-only from the start: not a change.
    expect(changed).toEqual(['writable']);
    opened.release();

    const plain = new Client({ connectionString: db.url });
    await plain.connect();
    expect(readOnlySession(plain)).toBe(false);
    await plain.end();
  });

  it('has its pool close a connection once the server says it became read-only', async () => {
    const p = poolOf(LIMIT_MS);
    let client = await p.connect();
    const pid = await backendPid(client);
    await client.query('SET default_transaction_read_only = on');
    client.release();

    client = await p.connect();
    expect(await backendPid(client)).not.toBe(pid);
    client.release();
  });

  it.each([LIMIT_MS, 0])(
    'has its pool close a connection whose write was refused, and keep one whose read-only transactions were not (limit %i ms)',
    async (limitMs) => {
      // A transaction declared read-only refuses writes without the server reporting anything, as
      // servers before PostgreSQL 14 refuse them on a fenced primary.
      const p = poolOf(limitMs);
      let client = await p.connect();
      const pid = await backendPid(client);
      await client.query('BEGIN READ ONLY');
      expect(await codeOf(client.query('SELECT count(*) FROM notes'))).toBe('ok');
      await client.query('COMMIT');
      client.release();

      client = await p.connect();
      expect(await backendPid(client)).toBe(pid);
      await client.query('BEGIN READ ONLY');
      expect(await codeOf(client.query('INSERT INTO notes VALUES (2)'))).toBe('25006');
      // Still open for the rollback: the caller sees the refusal, not a closed connection.
      expect(await codeOf(client.query('ROLLBACK'))).toBe('ok');
      client.release();

      client = await p.connect();
      expect(await backendPid(client)).not.toBe(pid);
      expect(await codeOf(client.query('INSERT INTO notes VALUES (3)'))).toBe('ok');
      client.release();
    },
  );
});

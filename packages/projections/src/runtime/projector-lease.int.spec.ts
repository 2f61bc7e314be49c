import { Client, type PoolClient } from 'pg';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import type { ResourceRef } from '@gatehouse/domain';
import { createTestDatabase, startStallProxy, type StallProxy, type TestDatabase } from '@test/support';
import { PostgresLedger } from '../../../ledger/src/adapters/postgres/postgres-ledger';
import { clientWithAnswerDeadline } from '../../../ledger/src/adapters/postgres/answer-deadline';
import { AccessIndex } from '../access/access-index';
import { at, catalogFacts } from '../access/access-harness';
import { createDataSource, runMigrations } from '../data-source';
import { stripeLedgerEvent, subscriptionEvent } from '../membership/stripe-events.builders';
import { MembershipProjection } from '../membership/membership.projection';
import { archiveProjection } from '../archive/archive.projection';
import { Projector } from './projector';
import type { Projection } from './projection';
import { ProjectorLease, projectorLeaseHolder } from './projector-lease';
import { peerFollower } from './peer-follower';

// Two servers' projectors on one set of read models: one projects, the other follows its commits.

const C = 'com_lease';
const COMMUNITY: ResourceRef = { kind: 'COMMUNITY' };
const log = pino({ level: process.env.LEASE_LOG ?? 'silent' });

type Server = {
  ds: DataSource;
  ledger: PostgresLedger;
  index: AccessIndex;
  projector: Projector;
  lease: ProjectorLease;
  leads: number;
  resyncs: number;
  /** What `close` is waiting for, while it runs. */
  closing: string | null;
  close(): Promise<void>;
};

async function startServer(
  url: string,
  retryMs = 100,
  lead = true,
  leaseLog: pino.Logger = log,
  more: {
    staleMs?: number;
    abandonedBatchMs?: number;
    projections?: Projection[];
    /** The pg client class of the server's pool (the stores give every pool `clientWithAnswerDeadline`'s). */
    client?: typeof Client;
  } = {},
): Promise<Server> {
  const ds = createDataSource({ url, poolSize: 4, client: more.client });
  await ds.initialize();
  const ledger = new PostgresLedger({ connectionString: url, pollIntervalMs: 20, readSettleMs: 20 });
  await ledger.init();
  const index = new AccessIndex();
  await index.load(ds);
  const lease = new ProjectorLease(ds, { log: leaseLog, retryMs, lead, staleMs: more.staleMs });
  const projector = new Projector({
    dataSource: ds,
    ledger,
    logger: log,
    lease,
    abandonedBatchMs: more.abandonedBatchMs,
    projections: [
      new MembershipProjection({ index, logger: log }),
      archiveProjection(),
      ...(more.projections ?? []),
    ],
  });
  const server: Server = {
    ds,
    ledger,
    index,
    projector,
    lease,
    leads: 0,
    resyncs: 0,
    closing: null,
    async close() {
      const steps: [string, () => Promise<void>][] = [
        ['the lease', () => lease.stop()],
        ['the projector', () => projector.stop()],
        ['the ledger', () => ledger.close()],
        ['the data source', () => ds.destroy()],
      ];
      for (const [name, step] of steps) {
        server.closing = name;
        await step();
      }
      server.closing = null;
    },
  };
  const follower = peerFollower({ dataSource: ds, index, projector });
  await lease.start({
    async lead() {
      server.leads++;
      projector.start();
    },
    lose: () => projector.stop(),
    ...follower,
    async resync() {
      server.resyncs++;
      await follower.resync();
    },
  });
  return server;
}

const subscribed = (member: string) =>
  stripeLedgerEvent(
    C,
    subscriptionEvent('customer.subscription.created', at(0), {
      id: `sub_${member}`,
      customer: `cus_${member}`,
      status: 'active',
      price: 'price_gold_m',
      product: 'prod_gold',
      periodStart: at(0),
      periodEnd: at(30),
      memberId: member,
    }),
  );

/**
 * Appends through one server and waits, on it and on each server named, until every projection has
 * applied the events: a server answers from its own index, which the projecting one updates when its
 * commit returns and a follower when the message telling it arrives, in either order.
 */
async function appendOn(
  server: Server,
  events: Parameters<PostgresLedger['append']>[0],
  readers: Server[] = [],
) {
  const results = await server.ledger.append(events);
  for (const s of new Set([server, ...readers]))
    expect(await s.projector.waitForAppended(C, results, 15_000)).toBe(true);
}

/** A log kept in memory (`said`, its lines parsed); `saying` counts those whose message matches. */
function leaseLogger() {
  const said: { level: number; msg: string; idleSeconds?: number }[] = [];
  const leaseLog = pino({ level: 'info' }, { write: (line: string) => void said.push(JSON.parse(line)) });
  return { leaseLog, said, saying: (pattern: RegExp) => said.filter((l) => pattern.test(l.msg)).length };
}

async function until(check: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('ProjectorLease', () => {
  let db: TestDatabase;
  let first: Server;
  let second: Server;

  beforeAll(async () => {
    db = await createTestDatabase('lease');
    await runMigrations(db.url);
    first = await startServer(db.url);
    second = await startServer(db.url);
  }, 60_000);

  afterAll(async () => {
    await second?.close();
    await first?.close();
    await db?.drop();
  });

  it('lets one server project; the other answers from what it tells', async () => {
    expect([first.lease.role(), second.lease.role()]).toEqual(['leading', 'following']);
    expect(second.projector.status().every((s) => !s.running)).toBe(true);
    // Written through the follower, projected by the leader, read on both.
    await appendOn(second, catalogFacts(C));
    await appendOn(second, [subscribed('mem_ann')], [first]);
    for (const s of [first, second])
      expect(s.index.decide(C, 'mem_ann', COMMUNITY, at(1)).allowed).toBe(true);
    await expect(second.projector.rebuild()).rejects.toThrow(/another Gatehouse server projects/);
  }, 30_000);

  it('tells the followers what a rebuild read that no live batch did', async () => {
    await first.projector.stop();
    const appended = await second.ledger.append([subscribed('mem_dee')]);
    await first.projector.rebuild();
    first.projector.start();
    expect(await second.projector.waitForAppended(C, appended, 15_000)).toBe(true);
    expect(second.index.decide(C, 'mem_dee', COMMUNITY, at(1)).allowed).toBe(true);
  }, 30_000);

  it('releases a follower’s waiter whose progress was told while its connection was down', async () => {
    const leaseSessions = async () =>
      (
        await first.ds.query<{ pid: number }[]>(
          // The last statement of a lease session: its LISTEN, asking for the lock, or looking for
          // a projecting server that stopped answering.
          `SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND (query LIKE 'LISTEN %' OR query LIKE 'SELECT pg_try_advisory_lock(%'
                   OR query LIKE 'SELECT a.pid, extract(epoch FROM now() - a.state_change)%')`,
        )
      ).map((r) => r.pid);
    const before = new Set(await leaseSessions());
    // Asks again only every 5 s: the leader projects long before it is back.
    const third = await startServer(db.url, 5_000);
    try {
      expect(third.lease.role()).toBe('following');
      const started = (await leaseSessions()).filter((p) => !before.has(p));
      expect(started).toHaveLength(1);
      const [pid] = started;
      await first.ds.query('SELECT pg_terminate_backend($1)', [pid]);
      await until(() => third.lease.role() === 'disconnected');
      const appended = await third.ledger.append([subscribed('mem_eve')]);
      // Projected by the leader (and told) while the third server does not listen.
      expect(await first.projector.waitForAppended(C, appended, 15_000)).toBe(true);
      expect(third.lease.role()).toBe('disconnected');
      expect(await third.projector.waitForAppended(C, appended, 15_000)).toBe(true);
      expect(third.resyncs).toBe(1);
      expect(third.index.decide(C, 'mem_eve', COMMUNITY, at(1)).allowed).toBe(true);
    } finally {
      await third.close();
    }
  }, 30_000);

  it('hands the projecting over when the leader loses its connection, and the old leader follows', async () => {
    // Nothing before this test moved the lease.
    expect([first.lease.role(), second.lease.role()]).toEqual(['leading', 'following']);
    const pid = await projectorLeaseHolder(second.ds);
    expect(pid).not.toBeNull();
    await first.ds.query('SELECT pg_terminate_backend($1)', [pid]);
    await until(() => second.lease.role() === 'leading');
    await until(() => first.lease.role() === 'following');
    expect(first.projector.status().every((s) => !s.running)).toBe(true);
    expect(first.resyncs).toBe(1);
    await appendOn(first, [subscribed('mem_bob')], [second]);
    for (const s of [first, second])
      expect(s.index.decide(C, 'mem_bob', COMMUNITY, at(1)).allowed).toBe(true);
  }, 30_000);

  it('hands the projecting over when the leader stops', async () => {
    await second.lease.stop();
    await second.projector.stop();
    await until(() => first.lease.role() === 'leading');
    expect(first.leads).toBe(2);
    await appendOn(first, [subscribed('mem_cy')]);
    expect(first.index.decide(C, 'mem_cy', COMMUNITY, at(1)).allowed).toBe(true);
  }, 30_000);
});

describe('ProjectorLease that may not lead', () => {
  let db: TestDatabase;
  let keptOff: Server | undefined;
  let leader: Server | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('lease_off');
    await runMigrations(db.url);
  }, 60_000);

  afterAll(async () => {
    await leader?.close();
    await keptOff?.close();
    await db?.drop();
  });

  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('never takes the lease, even with nobody projecting, and follows the server that does', async () => {
    const { leaseLog, said, saying } = leaseLogger();
    const warnings = () => said.filter((l) => l.level === 40 && /no server projects/.test(l.msg)).length;
    const recoveries = () => saying(/projects these read models again/);
    keptOff = await startServer(db.url, 20, false, leaseLog);
    // Twenty times its interval to ask, with the lease free all along: it says so, once.
    await pause(400);
    expect(keptOff.lease.role()).toBe('following');
    expect(warnings()).toBe(1);
    expect(await projectorLeaseHolder(keptOff.ds)).toBeNull();
    expect(keptOff.projector.status().every((s) => !s.running)).toBe(true);

    leader = await startServer(db.url);
    expect(leader.lease.role()).toBe('leading');
    // Written through the server kept off projecting, projected by the other, read on both.
    await appendOn(keptOff, catalogFacts(C));
    await appendOn(keptOff, [subscribed('mem_kim')], [leader]);
    for (const s of [keptOff, leader])
      expect(s.index.decide(C, 'mem_kim', COMMUNITY, at(1)).allowed).toBe(true);
    await until(() => recoveries() === 1);

    await leader.close();
    leader = undefined;
    await pause(400);
    expect(keptOff.lease.role()).toBe('following');
    expect(warnings()).toBe(2);
    expect(recoveries()).toBe(1);
    expect(await projectorLeaseHolder(keptOff.ds)).toBeNull();
    expect(keptOff.projector.status().every((s) => !s.running)).toBe(true);
  }, 30_000);
});

describe('ProjectorLease after the projecting server’s connection breaks', () => {
  let db: TestDatabase;
  const servers: Server[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('lease_back');
    await runMigrations(db.url);
  }, 60_000);

  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  }, 30_000);

  afterAll(async () => {
    await db?.drop();
  });

  const endLeaseSession = async (s: Server) => {
    const pid = await projectorLeaseHolder(s.ds);
    expect(pid).not.toBeNull();
    await s.ds.query('SELECT pg_terminate_backend($1)', [pid]);
  };

  it('leaves the lease to a server that asks less often than it reconnects', async () => {
    // The first reconnects 100 ms after its session breaks; the other asks every 400 ms, so the
    // first, asking again at once, would take the lease back three times in four.
    for (let round = 1; round <= 3; round++) {
      const fast = leaseLogger();
      const first = await startServer(db.url, 100, true, fast.leaseLog);
      servers.push(first);
      const second = await startServer(db.url, 400);
      servers.push(second);
      expect([first.lease.role(), second.lease.role()]).toEqual(['leading', 'following']);
      await endLeaseSession(first);
      await until(() => second.lease.role() === 'leading');
      await until(() => first.lease.role() === 'following');
      expect(fast.saying(/another server asks for it/)).toBe(1);
      expect([first.leads, second.leads]).toEqual([1, 1]);
      await appendOn(first, [subscribed(`mem_round${round}`)], [second]);
      for (const s of servers.splice(0)) await s.close();
    }
  }, 30_000);

  it('takes the lease back at once when no other server may take it', async () => {
    const alone = leaseLogger();
    const only = await startServer(db.url, 100, true, alone.leaseLog);
    servers.push(only);
    // A server kept off projecting listens too, but does not ask for the lease.
    servers.push(await startServer(db.url, 100, false));
    expect(only.lease.role()).toBe('leading');
    await endLeaseSession(only);
    await until(() => only.leads === 2);
    expect(alone.saying(/another server asks for it/)).toBe(0);
    expect(only.lease.role()).toBe('leading');
  }, 30_000);
});

describe('ProjectorLease on a database server that is read-only', () => {
  // A primary fenced read-only after a failover answers on, reads and advisory locks included, while
  // the new primary is elsewhere: a lock taken there is no lease, and a LISTEN there hears nothing.
  let db: TestDatabase;
  const servers: Server[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('lease_fenced');
    await runMigrations(db.url);
  }, 60_000);

  /** Runs `sql` on a session of its own, writable whatever the database's default. */
  const asAdmin = async (sql: string) => {
    const admin = new Client({ connectionString: db.url, options: '-c default_transaction_read_only=off' });
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  };
  const fence = () => asAdmin(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
  const unfence = () => asAdmin(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);

  afterEach(async () => {
    await unfence();
    for (const s of servers.splice(0)) await s.close();
  }, 30_000);

  afterAll(async () => {
    await db?.drop();
  });

  const start = async () => {
    const { leaseLog, saying } = leaseLogger();
    const server = await startServer(db.url, 100, true, leaseLog, { client: clientWithAnswerDeadline(0) });
    servers.push(server);
    return { server, saying };
  };

  it('takes no lease on a session opened read-only, and leads again on the first that is not', async () => {
    const { server, saying } = await start();
    expect(server.lease.role()).toBe('leading');
    const before = await projectorLeaseHolder(server.ds);
    // Every connection of the server ends, and those it opens next are read-only.
    await fence();
    await asAdmin(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    await until(() => server.lease.role() === 'disconnected');
    // A pooled connection ended above may answer the first query with its termination: ask again.
    await until(async () => (await projectorLeaseHolder(server.ds).catch(() => before)) !== before);

    // Ten of its attempts (one every 100 ms), each on a new read-only session: none leads or holds.
    const roles = new Set<string>();
    const watching = Date.now();
    while (Date.now() - watching < 1_000) {
      roles.add(server.lease.role());
      expect(await projectorLeaseHolder(server.ds)).toBeNull();
      await new Promise((r) => setTimeout(r, 25));
    }
    expect([...roles]).toEqual(['disconnected']);
    expect(server.leads).toBe(1);
    expect(saying(/the database is read-only here/)).toBe(1);

    await unfence();
    await until(() => server.leads === 2);
    expect(server.lease.role()).toBe('leading');
    expect(await projectorLeaseHolder(server.ds)).not.toBe(before);
    expect(saying(/the database takes writes again/)).toBe(1);
  }, 30_000);

  it('gives the lease up when its server says the session became read-only, and takes it on a new one', async () => {
    const { server } = await start();
    expect(server.lease.role()).toBe('leading');
    const before = await projectorLeaseHolder(server.ds);
    // What a configuration reloaded with `default_transaction_read_only` tells every open session,
    // said here on the lease's own session only.
    const session = (server.lease as unknown as { client: PoolClient }).client;
    await session.query('SET default_transaction_read_only = on');
    await until(() => server.leads === 2);
    expect(server.lease.role()).toBe('leading');
    const after = await projectorLeaseHolder(server.ds);
    expect(after).not.toBeNull();
    expect(after).not.toBe(before);
  }, 30_000);
});

describe('ProjectorLease when the projecting server’s database stops answering', () => {
  // The projecting server reaches the database through a proxy that can stall: its connections stay
  // open but carry nothing, as when its host froze or the network to it dropped every packet.
  // PostgreSQL sees no closed connection, so it would hold the lock for as long as TCP takes to give up.
  let db: TestDatabase;
  let proxy: StallProxy;
  let cut: Server | undefined;
  let other: Server | undefined;
  const STALE_MS = 1_000;

  beforeAll(async () => {
    db = await createTestDatabase('lease_stall');
    await runMigrations(db.url);
    const target = new URL(db.url);
    proxy = await startStallProxy({ host: target.hostname, port: Number(target.port || 5432) });
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await db?.drop();
  });

  const viaProxy = () => {
    const u = new URL(db.url);
    u.hostname = '127.0.0.1';
    u.port = String(proxy.port);
    return u.toString();
  };

  // Closing a server that went through a stall waits for what it had under way to fail or finish
  // (tens of milliseconds here; once over the 5 s default with two suites running side by side, and
  // once over 30 s in CI): one that takes 30 s says what it waits for.
  afterEach(async () => {
    proxy.heal();
    for (const [name, server] of [
      ['the other server', other],
      ['the server behind the proxy', cut],
    ] as const) {
      if (!server) continue;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`closing ${name}: ${server.closing} still closing after 30 s`)),
          30_000,
        );
      });
      await Promise.race([server.close(), late]).finally(() => clearTimeout(timer));
    }
    other = cut = undefined;
  }, 35_000);

  it('a server whose lease session answers keeps projecting, however long the others watch', async () => {
    cut = await startServer(viaProxy(), 100, true, log, { staleMs: STALE_MS });
    other = await startServer(db.url, 100, true, log, { staleMs: STALE_MS });
    expect([cut.lease.role(), other.lease.role()]).toEqual(['leading', 'following']);
    await new Promise((r) => setTimeout(r, 5 * STALE_MS));
    expect([cut.lease.role(), other.lease.role()]).toEqual(['leading', 'following']);
    expect(cut.leads).toBe(1);
  }, 30_000);

  it('stops projecting there, and another server takes over once that session has been idle too long', async () => {
    const { leaseLog: otherLog, said } = leaseLogger();
    cut = await startServer(viaProxy(), 100, true, log, { staleMs: STALE_MS });
    other = await startServer(db.url, 100, true, otherLog, { staleMs: STALE_MS });
    expect([cut.lease.role(), other.lease.role()]).toEqual(['leading', 'following']);
    await appendOn(other, catalogFacts(C), [cut]);

    proxy.stall();
    const stalled = Date.now();
    // Its own heartbeat finds no answer within half the stale time: it stops projecting.
    await until(() => cut!.lease.role() === 'disconnected', 10_000);
    await until(() => other!.lease.role() === 'leading', 15_000);
    expect(Date.now() - stalled).toBeGreaterThanOrEqual(STALE_MS);
    const ended = said.filter((l) => /the projecting server stopped answering/.test(l.msg));
    expect(ended).toHaveLength(1);
    expect(ended[0].level).toBe(40);

    // The new projecting server projects what is appended meanwhile.
    await appendOn(other, [subscribed('mem_fay')]);
    expect(other.index.decide(C, 'mem_fay', COMMUNITY, at(1)).allowed).toBe(true);

    // Once its database answers again, the first server follows (its old session was ended).
    proxy.heal();
    await until(() => cut!.lease.role() === 'following', 15_000);
    await appendOn(other, [subscribed('mem_gus')], [cut!]);
    expect(cut!.index.decide(C, 'mem_gus', COMMUNITY, at(1)).allowed).toBe(true);
    expect(other.lease.role()).toBe('leading');
  }, 60_000);

  it('a following server whose connection goes silent notices, and follows again once it answers', async () => {
    other = await startServer(db.url, 100, true, log, { staleMs: STALE_MS });
    cut = await startServer(viaProxy(), 100, true, log, { staleMs: STALE_MS });
    expect([other.lease.role(), cut.lease.role()]).toEqual(['leading', 'following']);
    await appendOn(other, catalogFacts(C), [cut]);

    proxy.stall();
    await until(() => cut!.lease.role() === 'disconnected', 5_000);
    // It does not take the lease meanwhile: the projecting server answers.
    expect(other.lease.role()).toBe('leading');

    proxy.heal();
    await until(() => cut!.lease.role() === 'following', 15_000);
    await appendOn(other, [subscribed('mem_hal')], [cut]);
    expect(cut.index.decide(C, 'mem_hal', COMMUNITY, at(1)).allowed).toBe(true);
    expect(cut.resyncs).toBe(1);
  }, 60_000);

  it('a batch the stalled server left open does not hold up the server that projects next', async () => {
    // A projection that, on the first server only, waits inside its batch until let go: its
    // transaction holds the projection's checkpoint row when the database stops answering.
    let letGo: () => void = () => undefined;
    let entered: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const gated = new Promise<void>((resolve) => (letGo = resolve));
    const marks = (wait: boolean): Projection => ({
      name: 'marks',
      types: ['test.mark'],
      tables: [],
      async apply(tx) {
        await tx.query('SELECT 1');
        if (wait) {
          entered();
          await gated;
        }
      },
    });
    const ABANDONED_MS = 1_000;
    cut = await startServer(viaProxy(), 100, true, log, {
      staleMs: STALE_MS,
      abandonedBatchMs: ABANDONED_MS,
      projections: [marks(true)],
    });
    other = await startServer(db.url, 100, true, log, {
      staleMs: STALE_MS,
      abandonedBatchMs: ABANDONED_MS,
      projections: [marks(false)],
    });
    expect([cut.lease.role(), other.lease.role()]).toEqual(['leading', 'following']);

    const mark = {
      type: 'test.mark',
      communityId: C,
      source: 'admin' as const,
      occurredAt: new Date().toISOString(),
      data: {},
    };
    const results = await other.ledger.append([{ ...mark, id: `evt_mark_${Date.now()}` }]);
    await inside;
    proxy.stall();
    letGo();

    await until(() => other!.lease.role() === 'leading', 15_000);
    // PostgreSQL ends the abandoned batch's session after ABANDONED_MS idle in its transaction; the
    // checkpoint row it locked is then free, and the new projecting server passes the event.
    const started = Date.now();
    expect(await other.projector.waitForAppended(C, results, 20_000)).toBe(true);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 60_000);
});

import pino from 'pino';
import type { DataSource } from 'typeorm';
import type { ResourceRef } from '@gatehouse/domain';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { PostgresLedger } from '../../../ledger/src/adapters/postgres/postgres-ledger';
import { AccessIndex } from '../access/access-index';
import { at, catalogFacts } from '../access/access-harness';
import { createDataSource, runMigrations } from '../data-source';
import { stripeLedgerEvent, subscriptionEvent } from '../membership/stripe-events.builders';
import { MembershipProjection } from '../membership/membership.projection';
import { archiveProjection } from '../archive/archive.projection';
import { Projector } from './projector';
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
  close(): Promise<void>;
};

async function startServer(
  url: string,
  retryMs = 100,
  lead = true,
  leaseLog: pino.Logger = log,
): Promise<Server> {
  const ds = createDataSource({ url, poolSize: 4 });
  await ds.initialize();
  const ledger = new PostgresLedger({ connectionString: url, pollIntervalMs: 20, readSettleMs: 20 });
  await ledger.init();
  const index = new AccessIndex();
  await index.load(ds);
  const lease = new ProjectorLease(ds, { log: leaseLog, retryMs, lead });
  const projector = new Projector({
    dataSource: ds,
    ledger,
    logger: log,
    lease,
    projections: [new MembershipProjection({ index, logger: log }), archiveProjection()],
  });
  const server: Server = {
    ds,
    ledger,
    index,
    projector,
    lease,
    leads: 0,
    resyncs: 0,
    async close() {
      await lease.stop();
      await projector.stop();
      await ledger.close();
      await ds.destroy();
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
          // The last statement of a lease session: its LISTEN, or asking for the lock.
          `SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND (query LIKE 'LISTEN %' OR query LIKE 'SELECT pg_try_advisory_lock(%')`,
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
    const said: { level: number; msg: string }[] = [];
    const leaseLog = pino({ level: 'info' }, { write: (line: string) => void said.push(JSON.parse(line)) });
    const warnings = () => said.filter((l) => l.level === 40 && /no server projects/.test(l.msg)).length;
    const recoveries = () => said.filter((l) => /projects these read models again/.test(l.msg)).length;
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

import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';
import { loadConfig, signToken, startGatehouse, type RunningGatehouse } from '@gatehouse/api';
import { PostgresLedger, type NewEvent } from '@gatehouse/ledger';
import { createDataSource, ProjectorLease, projectorLeaseHolder } from '@gatehouse/projections';
import pino from 'pino';
import { stripeEventToLedgerFact, stripeTestKit as kit, type StripeEvent } from '@gatehouse/stripe';
import { cpuPer, cpuSample, type CpuSample } from './cpu';
import { ingestGoalLines } from './ingest-goals';
import { median, p99 } from './http-load';
import { postAll } from './webhook-load';

// Stripe webhooks per second through the real HTTP server (`startGatehouse`, signature check, catalog
// lookup, durable append) on each ledger adapter, beside plain `pg` INSERTs of the same payloads at
// the same concurrency in the same process; the same with the server's projector stopped (what the
// webhook path costs apart from projecting); then the rate as the PostgreSQL ledger grows.

export type IngestBenchOptions = {
  /** Any database on the PostgreSQL server to use; each adapter gets a scratch database beside it. */
  databaseUrl: string;
  kafkaBrokers?: string[];
  log: (line: string) => void;
  /** Stop the growth measurement at 100k events (else 1M). */
  quick?: boolean;
  /** Requests per measured run. */
  requests?: number;
  /** Runs per figure (median reported); at least 3. */
  runs?: number;
  concurrency?: number;
  /** Growth checkpoints (ledger sizes), overriding the quick/full defaults. */
  growth?: number[];
};

export type IngestFigure = {
  adapter: 'postgres' | 'kafka';
  scenario: string;
  webhooksPerSecond: number;
  p99Ms: number;
  baselinePerSecond: number;
  baselineP99Ms: number;
  /** webhooks / baseline */
  ratio: number;
  /**
   * Webhooks per second from the first request until the projector had applied the last one (null
   * when measured with the projector stopped).
   */
  projectedPerSecond: number | null;
  /**
   * Median CPU per webhook, from the first request until projected (until answered when measured with
   * the projector stopped): this process (server, projector, load generator) and PostgreSQL.
   */
  cpuPerWebhook: CpuSample;
  cpuPerInsert: CpuSample;
  /** Median WAL the database server wrote per webhook until projected, and per INSERT (PostgreSQL 14+). */
  walPerWebhook: WalSample | null;
  walPerInsert: WalSample | null;
};

/**
 * Write-ahead log of the whole database server: bytes from its insert position (exact), full-page
 * images from `pg_stat_wal`, which backends report about once a second while busy and within 10 s
 * once idle (a lower bound for a short run).
 */
export type WalSample = { fullPageImages: number; bytes: number };

type RunResult = {
  perSecond: number;
  p99Ms: number;
  failures: number;
  cpu?: CpuSample;
  wal?: WalSample | null;
  projectedPerSecond?: number;
};

/** The server's WAL counters so far, or null where `pg_stat_wal` is missing (before PostgreSQL 14). */
async function walSample(pool: Pool): Promise<WalSample | null> {
  try {
    const { rows } = await pool.query<{ fpi: string; bytes: string }>(
      `SELECT wal_fpi::text AS fpi, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text AS bytes
         FROM pg_stat_wal`,
    );
    return {
      fullPageImages: Number(rows[0].fpi),
      bytes: Number(rows[0].bytes),
    };
  } catch {
    return null;
  }
}

function walPer(before: WalSample | null, after: WalSample | null, operations: number): WalSample | null {
  if (!before || !after) return null;
  return {
    fullPageImages: (after.fullPageImages - before.fullPageImages) / operations,
    bytes: (after.bytes - before.bytes) / operations,
  };
}

/** The projector counts as idle once no checkpoint has moved for this long. */
const QUIET_MS = 1_000;

/**
 * Waits until the server's projector is idle (no checkpoint moved for `QUIET_MS`) and returns when
 * its last batch committed (this machine's clock, ms). Webhooks are acknowledged before they are
 * projected, so a run ends with a backlog: measuring the next run on top of it would charge this
 * run's projection to the next one (a baseline run, say).
 */
async function projectorIdle(rig: Rig, timeoutMs = 10 * 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await rig.pool.query<{ last: number | null; now: number }>(
      `SELECT (extract(epoch FROM max(updated_at)) * 1000)::float8 AS last,
              (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now
         FROM projection_checkpoints`,
    );
    const { last, now } = rows[0];
    if (last === null || now - last >= QUIET_MS) return last ?? now;
    if (Date.now() > deadline) throw new Error('the projector did not go idle within 10 minutes');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `fn` while the bench holds the projector lease, so that the server under test projects nothing
 * (as a server that follows another one): its session holding the lease is ended, and the bench, asking
 * every 10 ms, takes the lease before the server asks again (every 2 s). Then it hands the lease back
 * and waits until the server has projected what arrived meanwhile.
 */
async function withoutProjector<T>(rig: Rig, fn: () => Promise<T>): Promise<T> {
  await projectorIdle(rig);
  const ds = createDataSource({ url: rig.url, poolSize: 2 });
  await ds.initialize();
  const idle = async () => undefined;
  const lease = new ProjectorLease(ds, { log: pino({ level: 'silent' }), retryMs: 10 });
  let result: T;
  let handedBack: Date;
  try {
    await lease.start({ lead: idle, lose: idle, message: idle, resync: idle });
    const deadline = Date.now() + 30_000;
    while (!lease.isLeader()) {
      const holder = await projectorLeaseHolder(ds);
      if (holder !== null) await ds.query('SELECT pg_terminate_backend($1)', [holder]);
      if (Date.now() > deadline) throw new Error('could not take the projector lease from the server');
      await new Promise((r) => setTimeout(r, 5));
    }
    result = await fn();
    [{ now: handedBack }] = await ds.query<{ now: Date }[]>('SELECT clock_timestamp() AS now');
  } finally {
    await lease.stop();
    await ds.destroy();
  }
  // The server takes the lease again within about 2 s, then projects the backlog.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { rows } = await rig.pool.query<{ moved: boolean }>(
      'SELECT max(updated_at) > $1 AS moved FROM projection_checkpoints',
      [handedBack],
    );
    if (rows[0].moved) break;
    if (Date.now() > deadline)
      throw new Error('the server did not project again after the lease was handed back');
    await new Promise((r) => setTimeout(r, 100));
  }
  await projectorIdle(rig);
  return result;
}

const WEBHOOK_SECRET = 'whsec_ingest_bench';
/** Connected accounts (one community each) the spread scenarios send for. */
const ACCOUNTS = 64;

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

let signedSets = 0;

/** Distinct signed events, round-robin over the connected accounts, as Stripe would send them now. */
function signedEvents(
  n: number,
  accounts: readonly string[],
): { events: StripeEvent[]; bodies: string[]; headers: string[] } {
  const now = Math.floor(Date.now() / 1000);
  // Members new to each set: reusing them would pile every run's subscriptions onto the same
  // members, and later runs would measure ever larger member states rather than a larger ledger.
  const set = ++signedSets;
  const events: StripeEvent[] = [];
  const bodies: string[] = [];
  const headers: string[] = [];
  for (let i = 0; i < n; i++) {
    // A subscription Gatehouse's checkout made: its own customer, and metadata naming the member.
    const event = kit.customerSubscriptionUpdated(
      {
        id: kit.stripeId('sub'),
        customer: kit.stripeId('cus'),
        status: 'active',
        priceId: 'price_gold',
        metadata: { gatehouse_member_id: `mem_bench_${set}_${i}` },
      },
      { apiVersion: '2025-03-31.basil', created: now, account: accounts[i % accounts.length] },
    );
    const { rawBody, header } = kit.signPayload(event, WEBHOOK_SECRET, now);
    events.push(event);
    bodies.push(rawBody.toString('utf8'));
    headers.push(header);
  }
  return { events, bodies, headers };
}

/** The baseline: one plain INSERT per payload into a plain table, `concurrency` at a time. */
async function insertAll(
  pool: Pool,
  table: string,
  communityOf: ReadonlyMap<string, string>,
  bodies: string[],
  concurrency: number,
): Promise<RunResult> {
  const latencies = new Float64Array(bodies.length);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= bodies.length) return;
        const t0 = performance.now();
        const e = JSON.parse(bodies[i]) as StripeEvent;
        await pool.query(
          `INSERT INTO ${table} (id, type, community_id, subject, occurred_at, recorded_at, source, data)
           VALUES ($1, $2, $3, $4, to_timestamp($5), now(), 'stripe', $6)`,
          [e.id, e.type, communityOf.get(String(e.account)), e.data.object.id, e.created, bodies[i]],
        );
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  return {
    perSecond: (bodies.length / (performance.now() - started)) * 1000,
    p99Ms: p99(latencies),
    failures: 0,
  };
}

type Rig = {
  gatehouse: RunningGatehouse;
  url: string;
  /** Connected account → community, one per simulated connected account. */
  communityOf: Map<string, string>;
  accounts: string[];
  pool: Pool;
  rawTable: string;
  /** PostgreSQL runs on this machine: its processes' CPU time can be read. */
  localPostgres: boolean;
  close(): Promise<void>;
};

async function startRig(
  adapter: 'postgres' | 'kafka',
  options: IngestBenchOptions,
  tag: string,
): Promise<Rig> {
  const dbName = `gh_ingest_bench_${adapter}_${tag}`;
  await admin(options.databaseUrl, (c) => c.query(`CREATE DATABASE "${dbName}"`));
  const url = withDatabase(options.databaseUrl, dbName);
  const jwtSecret = randomBytes(32).toString('base64url');
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: url,
    KAFKA_BROKERS: adapter === 'kafka' ? options.kafkaBrokers!.join(',') : '',
    GATEHOUSE_KAFKA_TOPIC: `gatehouse.ingest.bench.${tag}`,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GATEHOUSE_JWT_SECRET: jwtSecret,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    NODE_ENV: 'development',
  });
  const gatehouse = await startGatehouse(config);
  const token = signToken(jwtSecret, { sub: 'bench', roles: ['platform-admin'] });
  const communityOf = new Map<string, string>();
  for (let i = 0; i < ACCOUNTS; i++) {
    const account = `acct_bench${tag}${i}`;
    const res = await fetch(`${gatehouse.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query:
          'mutation($a: String!) { createCommunity(input: { name: "Bench", region: EU, stripeAccountId: $a }) { id } }',
        variables: { a: account },
      }),
    });
    const answer = (await res.json()) as { data?: { createCommunity: { id: string } }; errors?: unknown };
    if (!answer.data) throw new Error(`createCommunity failed: ${JSON.stringify(answer.errors)}`);
    communityOf.set(account, answer.data.createCommunity.id);
  }
  const pool = new Pool({ connectionString: url, max: options.concurrency ?? 32 });
  pool.on('error', () => undefined);
  const rawTable = 'ingest_bench_raw';
  await pool.query(`CREATE TABLE ${rawTable} (
    id text PRIMARY KEY, type text NOT NULL, community_id text NOT NULL, subject text, occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL, source text NOT NULL, data json NOT NULL)`);
  return {
    gatehouse,
    url,
    communityOf,
    accounts: [...communityOf.keys()],
    pool,
    rawTable,
    localPostgres: ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(url).hostname),
    async close() {
      await pool.end().catch(() => undefined);
      await gatehouse.close();
      await admin(options.databaseUrl, (c) =>
        c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`),
      ).catch(() => undefined);
    },
  };
}

/** Webhooks vs baseline, alternating which goes first, medians of the runs. */
async function compare(
  rig: Rig,
  adapter: 'postgres' | 'kafka',
  scenario: string,
  accounts: readonly string[],
  options: IngestBenchOptions,
  /** False while the server's projector is stopped (`withoutProjector`): nothing to wait for. */
  projecting = true,
): Promise<IngestFigure> {
  const runs = Math.max(3, options.runs ?? 3);
  const n = options.requests ?? (options.quick ? 3_000 : 10_000);
  const concurrency = options.concurrency ?? 32;
  const hooks: RunResult[] = [];
  const base: RunResult[] = [];
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? ['hooks', 'base'] : ['base', 'hooks'];
    for (const which of order) {
      const { bodies, headers } = signedEvents(n, accounts);
      await projectorIdle(rig);
      const walBefore = await walSample(rig.pool);
      const before = cpuSample();
      if (which === 'hooks') {
        const started = Date.now();
        const result = await postAll(`${rig.gatehouse.url}/webhooks/stripe`, bodies, headers, concurrency);
        if (result.failures) throw new Error(`${result.failures} of ${n} webhooks were not answered 200`);
        const projectedAt = projecting ? await projectorIdle(rig) : null;
        const projectedPerSecond =
          projectedAt === null ? undefined : (n / Math.max(1, projectedAt - started)) * 1000;
        // Until projected (with no projector, until answered): what the run leaves for the projector
        // is part of each webhook's cost.
        const cpu = cpuPer(before, cpuSample(), n);
        hooks.push({
          ...result,
          cpu,
          wal: walPer(walBefore, await walSample(rig.pool), n),
          projectedPerSecond,
        });
      } else {
        const result = await insertAll(rig.pool, rig.rawTable, rig.communityOf, bodies, concurrency);
        const cpu = cpuPer(before, cpuSample(), n);
        base.push({ ...result, cpu, wal: walPer(walBefore, await walSample(rig.pool), n) });
      }
    }
  }
  const cpuOf = (results: RunResult[]): CpuSample => {
    const pg = results.map((x) => x.cpu!.postgresMs);
    return {
      nodeMs: median(results.map((x) => x.cpu!.nodeMs)),
      postgresMs: rig.localPostgres && pg.every((v) => v !== null) ? median(pg as number[]) : null,
    };
  };
  const walOf = (results: RunResult[]): WalSample | null =>
    results.every((x) => x.wal)
      ? {
          fullPageImages: median(results.map((x) => x.wal!.fullPageImages)),
          bytes: median(results.map((x) => x.wal!.bytes)),
        }
      : null;
  const w = median(hooks.map((h) => h.perSecond));
  const b = median(base.map((h) => h.perSecond));
  const figure: IngestFigure = {
    adapter,
    scenario,
    webhooksPerSecond: w,
    p99Ms: median(hooks.map((h) => h.p99Ms)),
    baselinePerSecond: b,
    baselineP99Ms: median(base.map((h) => h.p99Ms)),
    ratio: w / b,
    projectedPerSecond: projecting ? median(hooks.map((h) => h.projectedPerSecond!)) : null,
    cpuPerWebhook: cpuOf(hooks),
    cpuPerInsert: cpuOf(base),
    walPerWebhook: walOf(hooks),
    walPerInsert: walOf(base),
  };
  const cpu = (c: CpuSample) =>
    `node ${c.nodeMs.toFixed(2)} ms` +
    (c.postgresMs === null ? '' : `, postgres ${c.postgresMs.toFixed(2)} ms`);
  options.log(
    `${adapter.padEnd(8)} ${scenario.padEnd(20)} webhooks ${figure.webhooksPerSecond.toFixed(0).padStart(6)}/s p99 ${figure.p99Ms
      .toFixed(1)
      .padStart(
        6,
      )} ms   pg insert ${figure.baselinePerSecond.toFixed(0).padStart(6)}/s p99 ${figure.baselineP99Ms
      .toFixed(1)
      .padStart(6)} ms   ratio ${figure.ratio.toFixed(2)}`,
  );
  options.log(
    `${''.padEnd(29)} cpu per webhook: ${cpu(figure.cpuPerWebhook)}   per insert: ${cpu(figure.cpuPerInsert)}`,
  );
  const wal = (x: WalSample) =>
    `${(x.bytes / 1024).toFixed(1)} KiB, ${x.fullPageImages.toFixed(2)} full-page images`;
  if (figure.walPerWebhook && figure.walPerInsert)
    options.log(
      `${''.padEnd(29)} WAL per webhook: ${wal(figure.walPerWebhook)}   per insert: ${wal(figure.walPerInsert)}`,
    );
  if (figure.projectedPerSecond !== null)
    options.log(
      `${''.padEnd(29)} acknowledged and projected: ${figure.projectedPerSecond.toFixed(0)}/s (first request to the projector's last batch)`,
    );
  return figure;
}

async function warmUp(rig: Rig, concurrency: number): Promise<void> {
  const { bodies, headers } = signedEvents(500, rig.accounts);
  await postAll(`${rig.gatehouse.url}/webhooks/stripe`, bodies, headers, concurrency);
  await insertAll(
    rig.pool,
    rig.rawTable,
    rig.communityOf,
    signedEvents(500, rig.accounts).bodies,
    concurrency,
  );
}

/** Appends ledger events in batches until the log holds `target` events; the projector is then let catch up. */
async function growLedger(rig: Rig, target: number, log: (l: string) => void): Promise<void> {
  const ledger = new PostgresLedger({ connectionString: rig.url });
  try {
    const count = async () =>
      Number((await rig.pool.query<{ n: string }>('SELECT count(*) AS n FROM ledger_log')).rows[0].n);
    let have = await count();
    const started = Date.now();
    // Other communities' history: the benchmark community's own partition stays small, as it would.
    const communities = Array.from({ length: 100 }, (_, i) => `bench-history-${i}`);
    while (have < target) {
      const size = Math.min(1_000, target - have);
      const now = Math.floor(Date.now() / 1000);
      const batch: NewEvent[] = Array.from({ length: size }, (_, i) => {
        const e = kit.invoicePaid(
          { subscription: kit.stripeId('sub'), lines: [{ amount: 900, priceId: 'price_gold' }] },
          { apiVersion: '2025-03-31.basil', created: now },
        );
        return stripeEventToLedgerFact(e, communities[(have + i) % communities.length]);
      });
      await ledger.append(batch);
      have += size;
      if (have % 50_000 === 0)
        process.stderr.write(
          `  ledger at ${have} events (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
        );
    }
    // Measure with the projector caught up, not while it replays the pre-fill.
    const deadline = Date.now() + 30 * 60_000;
    for (;;) {
      const { rows } = await rig.pool.query<{ behind: string }>(
        'SELECT (SELECT count(*) FROM ledger_log) - (SELECT count(*) FROM ledger_events) AS behind',
      );
      if (Number(rows[0].behind) <= 0) break;
      if (Date.now() > deadline) throw new Error('the projector did not catch up within 30 minutes');
      await new Promise((r) => setTimeout(r, 1_000));
    }
    // Tables just filled have no planner statistics or visibility maps yet: with autovacuum off (CI
    // configurations often turn it off) they never get them, and even with it on the measurement
    // would start before its next round (the embedded PostgreSQL, autovacuum on, measured 0.70 of
    // the empty rate at 100k right after the fill, 0.93 after VACUUM ANALYZE). Do now what
    // autovacuum does for a ledger that grew over time.
    const t0 = Date.now();
    await rig.pool.query('VACUUM ANALYZE');
    log(`  VACUUM ANALYZE after the fill: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    // The fill wrote gigabytes in minutes; a ledger that grew over months has no such write-back
    // pending. Flush it now, or the next measurement pays for the fill (measured at 1M: 1,644/s
    // right after the fill, 1,842–1,864/s after a checkpoint).
    const t1 = Date.now();
    try {
      await rig.pool.query('CHECKPOINT');
      log(`  checkpoint after the fill: ${((Date.now() - t1) / 1000).toFixed(0)} s`);
    } catch (err) {
      if ((err as { code?: string }).code !== '42501') throw err;
      log('  no CHECKPOINT (needs the pg_checkpoint role): the fill’s write-back is measured too');
    }
    log(
      `  ledger holds ${have} events (filled and projected in ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  } finally {
    await ledger.close();
  }
}

/**
 * CPU per webhook and per INSERT against the empty ledger's: closer to the work done than the rates,
 * which move with whatever else the shared machine runs; the INSERT's shows how much a busier
 * machine alone makes each operation cost.
 */
function cpuGrowth(f: IngestFigure, empty: IngestFigure): string {
  const samples = [f.cpuPerWebhook, empty.cpuPerWebhook, f.cpuPerInsert, empty.cpuPerInsert];
  // PostgreSQL's share only when every sample has it (a server on this machine).
  const withPostgres = samples.every((c) => c.postgresMs !== null);
  const total = (c: CpuSample) => c.nodeMs + (withPostgres ? c.postgresMs! : 0);
  const scope = withPostgres ? '' : ' (node)';
  const now = total(f.cpuPerWebhook);
  const then = total(empty.cpuPerWebhook);
  const insert = total(f.cpuPerInsert) / total(empty.cpuPerInsert);
  return `   cpu per webhook${scope}: ${(now / then).toFixed(2)}× (${then.toFixed(2)} → ${now.toFixed(2)} ms), per insert: ${insert.toFixed(2)}×`;
}

export async function runIngestBench(options: IngestBenchOptions): Promise<IngestFigure[]> {
  const tag = randomBytes(4).toString('hex');
  const concurrency = options.concurrency ?? 32;
  const figures: IngestFigure[] = [];
  options.log(
    `ingest bench: signed Stripe webhooks through the HTTP server at concurrency ${concurrency}, ${options.requests ?? (options.quick ? 3_000 : 10_000)} per run, median of ${Math.max(3, options.runs ?? 3)} runs`,
  );
  const adapters: ('postgres' | 'kafka')[] = [
    'postgres',
    ...(options.kafkaBrokers?.length ? (['kafka'] as const) : []),
  ];
  options.log(
    'cpu per webhook (until projected): this process (server, projector, load generator thread) and, for a server on this machine, PostgreSQL’s processes; every run starts on an idle projector',
  );
  options.log(
    '“no projector”: the bench holds the projector lease meanwhile, so the server receives and appends only, as one started with GATEHOUSE_PROJECTOR=off (cpu until answered); it projects the backlog afterwards',
  );
  options.log(
    'WAL per webhook (until projected) and per insert: bytes the whole database server logged, and full-page images, pages logged whole on their first change after a checkpoint (pg_stat_wal, PostgreSQL 14+: a lower bound, as backends report late)',
  );
  if (!options.kafkaBrokers?.length) options.log('kafka: skipped (no KAFKA_BROKERS)');
  for (const adapter of adapters) {
    const rig = await startRig(adapter, options, tag);
    try {
      await warmUp(rig, concurrency);
      // One busy connected account: its events are ordered, so its appends take turns.
      figures.push(await compare(rig, adapter, '1 account', rig.accounts.slice(0, 1), options));
      figures.push(await compare(rig, adapter, `${ACCOUNTS} accounts`, rig.accounts, options));
      figures.push(
        await withoutProjector(rig, () =>
          compare(rig, adapter, `${ACCOUNTS} acc, no projector`, rig.accounts, options, false),
        ),
      );
      if (adapter === 'postgres') {
        const sizes = options.growth ?? (options.quick ? [100_000] : [100_000, 500_000, 1_000_000]);
        for (const size of sizes) {
          await growLedger(rig, size, options.log);
          figures.push(
            await compare(rig, adapter, `${ACCOUNTS} acc, ledger ${size / 1000}k`, rig.accounts, options),
          );
          // The webhook path alone on the grown ledger: what the append itself makes of its size.
          figures.push(
            await withoutProjector(rig, () =>
              compare(rig, adapter, `no projector, ${size / 1000}k`, rig.accounts, options, false),
            ),
          );
        }
        const empty = figures.find((f) => f.adapter === 'postgres' && f.scenario === `${ACCOUNTS} accounts`)!;
        const emptyAlone = figures.find(
          (f) => f.adapter === 'postgres' && f.scenario === `${ACCOUNTS} acc, no projector`,
        )!;
        for (const f of figures.filter((x) => x.adapter === 'postgres' && /\d+k$/.test(x.scenario))) {
          const base = f.projectedPerSecond === null ? emptyAlone : empty;
          options.log(
            // The baseline's own change says how much of it is the database server, not the ledger.
            `postgres ${f.scenario.padEnd(20)} rate vs the empty ledger ${(f.webhooksPerSecond / base.webhooksPerSecond).toFixed(2)}` +
              `   (pg insert: ${(f.baselinePerSecond / base.baselinePerSecond).toFixed(2)})` +
              cpuGrowth(f, base),
          );
        }
      }
    } finally {
      await rig.close();
    }
  }
  for (const line of ingestGoalLines(figures, ACCOUNTS)) options.log(line);
  return figures;
}

import { open, type FileHandle } from 'node:fs/promises';
import type { Command } from 'commander';
import pino, { type Logger } from 'pino';
import type Stripe from 'stripe';
import type { DataSource } from 'typeorm';
import {
  createStripeClient,
  loadConfig,
  openStores,
  RECONCILE_CONCURRENCY,
  RECONCILE_INTERVAL_MAX_SECONDS,
  RegionRoutedLedger,
  postgresReconcileWindowStore,
  reconcileWindows,
  advisoryStripeAccountLock,
  stripeBulkReadLock,
  type LockHolder,
  regionStores,
  withDevSecrets,
  type Config,
} from '@gatehouse/api';
import {
  EVENTS_API_WINDOW_MS,
  PostgresQuarantineStore,
  FAKE_RETRY_DELAYS_SECONDS,
  PLATFORM_HOLD,
  RECONCILE_REQUESTS_PER_SECOND,
  ReconcileStoppedError,
  atMostPerSecond,
  retryingRateLimited,
  reconcile,
  startFakeStripe,
  translateSubscription,
  type CommunityDirectory,
  type FakeDelivery,
  type HeldAccount,
  type ReconcileProgress,
  type ReconcileReport,
  type StripeEvent,
} from '@gatehouse/stripe';
import { openRegions, type RegionSet } from './regions';
import { run } from './run';

// `gatehouse stripe …`: catch up missed webhooks, run the fake Stripe API, report drift.

export class CliUsageError extends Error {
  readonly code = 'CLI_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since`: a duration back from `now` (`90m`, `72h`, `30d`) or an ISO date-time. */
export function parseSinceOrThrow(value: string, now: Date, option = '--since'): Date {
  const relative = /^(\d+)(m|h|d)$/.exec(value.trim());
  if (relative) {
    return new Date(now.getTime() - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]);
  }
  // Only full dates count as ISO: Date.parse would also take "3" or "yesterday 5pm" in some engines.
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const t = Date.parse(value.trim());
    if (!Number.isNaN(t)) {
      if (t > now.getTime()) throw new CliUsageError(`${option} ${value} is in the future`);
      return new Date(t);
    }
  }
  throw new CliUsageError(
    `${option} must be a duration like 72h, 30d or 90m, or an ISO date-time; got "${value}"`,
  );
}

/** `--requests-per-second` (or another rate): Stripe allows 100 a second at most (live mode). */
export function parseRequestsPerSecondOrThrow(value: string, option = '--requests-per-second'): number {
  if (!/^\d{1,3}$/.test(value.trim()) || Number(value) < 1 || Number(value) > 100) {
    throw new CliUsageError(`${option} must be an integer from 1 to 100; got "${value}"`);
  }
  return Number(value);
}

export function parsePortOrThrow(value: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 65_535) {
    throw new CliUsageError(`--port must be an integer between 0 and 65535; got "${value}"`);
  }
  return Number(value);
}

/** Logs (progress) go to stderr; stdout carries the report. */
function stderrLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { service: 'gatehouse' } }, pino.destination(2));
}

function stripeOrThrow(config: Config): Stripe {
  const stripe = createStripeClient(config);
  if (!stripe) throw new CliUsageError('STRIPE_SECRET_KEY is not set: the Stripe API cannot be reached');
  return stripe;
}

type LinkedCommunity = { communityId: string; stripeAccountId: string | null };

async function linkedCommunities(dataSource: DataSource, communityId?: string): Promise<LinkedCommunity[]> {
  const rows = await dataSource.query<{ community_id: string; stripe_account_id: string | null }[]>(
    `SELECT community_id, stripe_account_id FROM catalog_communities
      WHERE $1::text IS NULL OR community_id = $1 ORDER BY community_id`,
    [communityId ?? null],
  );
  return rows.map((r) => ({ communityId: r.community_id, stripeAccountId: r.stripe_account_id }));
}

/** Connected account → community, from the catalogs of the regions open (a community is in one). */
function catalogDirectory(dataSources: readonly DataSource[], config: Config): CommunityDirectory {
  return {
    async communityForStripeAccount(accountId) {
      for (const dataSource of dataSources) {
        const rows = await dataSource.query<{ community_id: string }[]>(
          'SELECT community_id FROM catalog_communities WHERE stripe_account_id = $1',
          [accountId],
        );
        if (rows[0]) return rows[0].community_id;
      }
      return null;
    },
    platformCommunity: async () => config.stripePlatformCommunityId ?? null,
  };
}

export function formatReconcileReport(report: ReconcileReport): string {
  const lines = [
    `Stripe events since ${report.since}${report.clamped ? ' (clamped to the Events API 30-day window)' : ''}`,
    `${'account'.padEnd(24)} ${'community'.padEnd(38)} ${'listed'.padStart(7)} ${'appended'.padStart(9)} ${'present'.padStart(8)} ${'unassigned'.padStart(11)}`,
  ];
  for (const s of report.scopes) {
    lines.push(
      `${(s.account ?? 'platform').padEnd(24)} ${(s.communityId ?? '-').padEnd(38)} ${String(s.listed).padStart(7)} ${String(
        s.appended,
      ).padStart(9)} ${String(s.alreadyPresent).padStart(8)} ${String(s.unassigned).padStart(11)}`,
    );
    for (const id of s.appendedIds) lines.push(`  + ${id}`);
  }
  for (const r of report.refused)
    lines.push(`${r.account.padEnd(24)} not listed: Stripe refused (${r.message})`);
  lines.push(
    `total: ${report.listed} listed, ${report.appended} appended, ${report.alreadyPresent} already in the ledger, ${report.unassigned} without a community`,
  );
  return lines.join('\n') + '\n';
}

/** A busy account lists many pages: a line on stderr every this many events. */
const PROGRESS_EVERY = 1_000;

/** Writes a line for every `PROGRESS_EVERY` events an account lists. */
export function reconcileProgress(write: (line: string) => void): (p: ReconcileProgress) => void {
  return (p) => {
    if (p.listed % PROGRESS_EVERY === 0)
      write(
        `${p.account ?? 'platform'}: ${p.listed} events listed, ${p.missing} missing from the ledger so far\n`,
      );
  };
}

export async function reconcileCommand(opts: {
  since: string;
  community?: string;
  json?: boolean;
  requestsPerSecond: string;
}): Promise<number> {
  const since = parseSinceOrThrow(opts.since, new Date());
  const requestsPerSecond = parseRequestsPerSecondOrThrow(opts.requestsPerSecond);
  if (since.getTime() < Date.now() - EVENTS_API_WINDOW_MS) {
    process.stderr.write('note: the Events API keeps 30 days; earlier events cannot be listed\n');
  }
  const config = loadConfig();
  const log = stderrLogger(config);
  const stripe = stripeOrThrow(config);
  const set = await openRegions(config, log, opts.community);
  try {
    const communities = (
      await Promise.all(set.regions.map((r) => linkedCommunities(r.stores.dataSource, opts.community)))
    ).flat();
    if (opts.community && communities.length === 0) {
      throw new CliUsageError(`--community ${opts.community}: no such community in the catalog`);
    }
    const accounts = communities.flatMap((c) => (c.stripeAccountId ? [c.stripeAccountId] : []));
    const platform = config.stripePlatformCommunityId;
    // Platform events (no `account`) belong to STRIPE_PLATFORM_COMMUNITY_ID; without it they have nowhere to go.
    const includePlatform = platform !== undefined && (!opts.community || opts.community === platform);
    if (!platform)
      process.stderr.write(
        'note: STRIPE_PLATFORM_COMMUNITY_ID is not set: platform events are not reconciled\n',
      );
    if (accounts.length === 0 && !includePlatform) {
      process.stderr.write('nothing to reconcile: no community is linked to a Stripe account\n');
      return 0;
    }
    process.stderr.write(
      `reconciling ${accounts.length} connected account(s)${includePlatform ? ' and the platform account' : ''}` +
        `${set.multiRegion ? ` in ${set.regions.map((r) => r.region).join(', ')}` : ''}…\n`,
    );
    // Each event goes to the ledger of its community's region, as the webhook's would.
    const ledgers = set.regions.map((r) => ({ region: r.region, ledger: r.stores.ledger }));
    const interrupt = interruptible(
      'stopped by Ctrl-C before every account was listed; the report shows those that were (what ' +
        'they lacked was appended), and a run again appends the rest',
    );
    let stopped = false;
    let listing = false;
    let started = 0;
    const report = await stripeBulkReadLock(
      (await set.home()).dataSource,
      'command',
      'gatehouse stripe reconcile',
    )
      .hold(
        () => {
          listing = true;
          started = Date.now();
          return reconcile({
            stripe,
            ledger: ledgers.length === 1 ? ledgers[0].ledger : new RegionRoutedLedger(ledgers, ledgers[0]),
            directory: catalogDirectory(
              set.regions.map((r) => r.stores.dataSource),
              config,
            ),
            since,
            accounts,
            includePlatform,
            log,
            onProgress: reconcileProgress((line) => process.stderr.write(line)),
            concurrency: RECONCILE_CONCURRENCY,
            requestsPerSecond,
            signal: interrupt.signal,
          });
        },
        { signal: interrupt.signal, waiting: (holder) => process.stderr.write(waitingForBulkRead(holder)) },
      )
      .catch((err: unknown) => {
        if (!listing && interrupt.signal.aborted) {
          process.stderr.write('gatehouse: stopped by Ctrl-C while waiting; nothing was listed\n');
          return undefined;
        }
        if (!(err instanceof ReconcileStoppedError)) throw err;
        // What the accounts listed to the end did, then why the others were not.
        stopped = true;
        process.stderr.write(`gatehouse: ${err.message}\n`);
        return err.report;
      })
      .finally(interrupt.done);
    if (!report) return 1;
    process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatReconcileReport(report));
    await moveIntervalWindows(set, report, started);
    if (report.refused.length > 0)
      process.stderr.write(
        `gatehouse: Stripe refused to list ${report.refused.length} account(s): a connected account that ` +
          'disconnected the platform cannot be read until it connects again\n',
      );
    return stopped || report.refused.length > 0 ? 1 : 0;
  } finally {
    await set.close();
  }
}

/**
 * The server's reconcile interval goes on from this run for the accounts it listed to the end from
 * where the interval's next run would have listed them (in the windows each region's database keeps,
 * the platform's in the default region's), so that it does not list them over again. An account no
 * run has listed yet counts once this one went back over the first window of the longest interval
 * (three days), whatever the server's interval is.
 */
async function moveIntervalWindows(
  set: RegionSet,
  report: ReconcileReport,
  startedMs: number,
): Promise<void> {
  const accounts = report.scopes.map((s) => s.account);
  if (accounts.length === 0) return;
  const home = await set.home();
  const windows = reconcileWindows(
    RECONCILE_INTERVAL_MAX_SECONDS,
    postgresReconcileWindowStore([
      ...set.regions.map((r) => ({ dataSource: r.stores.dataSource, home: r.stores === home })),
      ...(set.regions.some((r) => r.stores === home) ? [] : [{ dataSource: home.dataSource, home: true }]),
    ]),
  );
  // What was appended stays appended: a window not kept only means the server lists these again.
  const moved = await windows
    .listedFrom(accounts, Date.parse(report.since), startedMs)
    .catch((err: unknown) => {
      process.stderr.write(
        `note: how far this run listed was not kept for the server's reconcile interval (${String(err)}); ` +
          'its next run lists these accounts from where it would have\n',
      );
      return undefined;
    });
  if (!moved) return;
  process.stderr.write(
    moved.length === accounts.length
      ? `the server's reconcile interval goes on from this run for the ${accounts.length} account(s) it listed\n`
      : `the server's reconcile interval goes on from this run for ${moved.length} of the ${accounts.length} ` +
          `account(s) it listed; it lists the others from further back than --since went\n`,
  );
}

/** Why a command waits before it reads Stripe, and for whom when the database says. */
export function waitingForBulkRead(holder: LockHolder | undefined): string {
  const who = holder ? `${holder.as}, since ${holder.since.toISOString()}` : 'a reconcile or a drift';
  return (
    `another command is reading Stripe (${who}): waiting for it to end, so that commands and the ` +
    "server's reconcile interval together keep under Stripe's rate limit\n"
  );
}

/**
 * Until `done`, a first Ctrl-C aborts `signal` (with `reason` as the error's message) so that the
 * work under way ends cleanly; a second one exits at once (status 130).
 */
function interruptible(reason: string): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('stopping: the requests in flight are answered first (Ctrl-C again to quit now)\n');
    controller.abort(new Error(reason));
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, done: () => void process.off('SIGINT', onSigint) };
}

export type FakeOptions = {
  port: string;
  host: string;
  forwardTo?: string;
  webhookSecret?: string;
  latency: string;
  rateLimit?: string;
};

/** `--latency`: milliseconds, 0 to 60000. */
export function parseLatencyOrThrow(value: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 60_000) {
    throw new CliUsageError(
      `--latency must be a whole number of milliseconds from 0 to 60000; got "${value}"`,
    );
  }
  return Number(value);
}

/** `--forward-to`: an http(s) URL, or a usage error naming what is wrong. */
export function parseForwardToOrThrow(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliUsageError(
      `--forward-to must be a URL like http://127.0.0.1:4000/webhooks/stripe; got "${value}"`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliUsageError(`--forward-to must be an http(s) URL; got "${value}"`);
  return url.toString();
}

/** One line per delivery attempt, as `stripe listen` prints them. */
export function formatDelivery(d: FakeDelivery): string {
  const answer = d.status === null ? `no answer (${d.error ?? 'failed'})` : String(d.status);
  const attempt = d.attempt > 1 ? ` (attempt ${d.attempt})` : '';
  const retry =
    d.nextAttemptAt === undefined
      ? ''
      : `, tried again at ${new Date(d.nextAttemptAt * 1000).toISOString().replace('.000', '')}`;
  return `${d.ok ? '-->' : '-x-'} ${d.type} [${d.eventId}]${d.account ? ` ${d.account}` : ''}: ${answer}${attempt}${retry}\n`;
}

/** When the fake tries a refused delivery again, in hours after the first attempt: "1, 3 and 6". */
export function retryHours(delaysSeconds: readonly number[] = FAKE_RETRY_DELAYS_SECONDS): string {
  let after = 0;
  const hours = delaysSeconds.map((d) => String((after += d) / 3_600));
  return hours.length > 1 ? `${hours.slice(0, -1).join(', ')} and ${hours.at(-1)}` : (hours[0] ?? '');
}

export async function fakeCommand(opts: FakeOptions): Promise<number> {
  const port = parsePortOrThrow(opts.port);
  const latencyMs = parseLatencyOrThrow(opts.latency);
  const rateLimitPerSecond =
    opts.rateLimit === undefined ? undefined : parseRequestsPerSecondOrThrow(opts.rateLimit, '--rate-limit');
  let webhooks: { url: string; secret: string } | undefined;
  if (opts.forwardTo !== undefined) {
    const url = parseForwardToOrThrow(opts.forwardTo);
    // The secret the local server checks, as for `gatehouse stripe sign`.
    const secret = opts.webhookSecret ?? withDevSecrets(loadConfig()).stripeWebhookSecrets[0];
    if (!secret)
      throw new CliUsageError('no webhook secret: set STRIPE_WEBHOOK_SECRET or pass --webhook-secret');
    webhooks = { url, secret };
  }
  const fake = await startFakeStripe({
    port,
    host: opts.host,
    webhooks,
    onDelivery: (d) => process.stderr.write(formatDelivery(d)),
    latencyMs,
    rateLimitPerSecond,
  });
  process.stdout.write(
    [
      `Fake Stripe API listening on ${fake.url}`,
      'Point Gatehouse at it with:',
      `  STRIPE_API_BASE=${fake.url}`,
      '  STRIPE_SECRET_KEY=sk_test_fake',
      webhooks
        ? `Sending its events to ${webhooks.url} (signed with the webhook secret; a refused one is tried again after ${retryHours()} hours of its time).`
        : 'Its events stay in its Events API (--forward-to sends them to a webhook endpoint).',
      ...(latencyMs > 0 ? [`Each API request waits ${latencyMs} ms before it is answered.`] : []),
      ...(rateLimitPerSecond
        ? [`API requests past ${rateLimitPerSecond} in a second are refused with a 429 (rate_limit).`]
        : []),
      `Move its time (renewals and their invoices, trials ending, cancellations and retries falling due):`,
      `  curl -X POST ${fake.url}/fake/advance -d days=30`,
      'Dispute a card payment as the buyer’s bank would, then decide it (refunds go through the API):',
      `  curl -X POST ${fake.url}/fake/disputes -d charge=ch_…`,
      `  curl -X POST ${fake.url}/fake/disputes/du_…/close -d status=won`,
      'Decline a customer’s card from now on (renewals fail and are retried; declines=false to accept it again):',
      `  curl -X POST ${fake.url}/fake/customers/cus_…/card_declines -d declines=true`,
      'Give a customer an Indian card (renewals wait 26 h; above INR 15,000, for the cardholder):',
      `  curl -X POST ${fake.url}/fake/customers/cus_…/card_country -d country=IN`,
      `  curl -X POST ${fake.url}/fake/payments/pi_…/authenticate`,
      'Settle a SEPA debit paid on its Checkout page (it stays processing until then):',
      `  curl -X POST ${fake.url}/fake/payments/pi_…/settle -d outcome=succeeded`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await fake.close();
  process.stderr.write('fake Stripe API stopped\n');
  return 0;
}

/** What the read model says about one subscription. */
export type ProjectedSubscription = {
  communityId: string;
  memberId: string;
  subscriptionId: string;
  stripeAccountId: string | null;
  /** null when only a link is known (the member has no subscription state for it yet). */
  status: string | null;
  priceId: string | null;
  currentPeriodEnd: number | null;
};

export type DriftDifference = {
  communityId: string;
  memberId: string;
  subscriptionId: string;
  /** `access`: Stripe would not let the platform read it (its account disconnected, or was deleted). */
  field: 'status' | 'price' | 'periodEnd' | 'existence' | 'access';
  projected: string | null;
  stripe: string | null;
};

const isoOrNull = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

/** Differences between the projection and Stripe's subscription object (`null`: Stripe does not know it). */
function isRefusedRead(value: unknown): value is RefusedRead {
  return typeof value === 'object' && value !== null && typeof (value as RefusedRead).refused === 'number';
}

export function compareSubscription(
  projected: ProjectedSubscription,
  stripeObject: unknown | null,
): DriftDifference[] {
  const base = {
    communityId: projected.communityId,
    memberId: projected.memberId,
    subscriptionId: projected.subscriptionId,
  };
  if (stripeObject === null) {
    return [{ ...base, field: 'existence', projected: 'projected', stripe: 'not found' }];
  }
  if (isRefusedRead(stripeObject)) {
    return [
      { ...base, field: 'access', projected: projected.status, stripe: `refused (${stripeObject.refused})` },
    ];
  }
  const view = translateSubscription(stripeObject);
  const item = view.items[0];
  // The projection reads the first item's price and period, falling back to the subscription's period.
  const actual = {
    status: view.status,
    priceId: item?.priceId ?? null,
    periodEnd: item?.currentPeriodEnd ?? view.currentPeriodEnd,
  };
  if (projected.status === null) {
    return [{ ...base, field: 'existence', projected: 'not projected', stripe: actual.status }];
  }
  const out: DriftDifference[] = [];
  if (projected.status !== actual.status)
    out.push({ ...base, field: 'status', projected: projected.status, stripe: actual.status });
  if (projected.priceId !== actual.priceId)
    out.push({ ...base, field: 'price', projected: projected.priceId, stripe: actual.priceId });
  if (projected.currentPeriodEnd !== actual.periodEnd) {
    out.push({
      ...base,
      field: 'periodEnd',
      projected: isoOrNull(projected.currentPeriodEnd),
      stripe: isoOrNull(actual.periodEnd),
    });
  }
  return out;
}

type MemberDocShape = {
  state?: {
    subscriptions?: Record<
      string,
      { latest?: { status?: string; priceId?: string; currentPeriodEnd?: number } }
    >;
  };
};

/** Every subscription the membership read model knows, with its community's Stripe account. */
export async function projectedSubscriptions(
  dataSource: DataSource,
  communityId?: string,
): Promise<ProjectedSubscription[]> {
  const members = await dataSource.query<
    { community_id: string; member_id: string; doc: MemberDocShape; stripe_account_id: string | null }[]
  >(
    `SELECT m.community_id, m.member_id, m.doc, c.stripe_account_id
       FROM member_states m LEFT JOIN catalog_communities c ON c.community_id = m.community_id
      WHERE $1::text IS NULL OR m.community_id = $1
      ORDER BY m.community_id, m.member_id`,
    [communityId ?? null],
  );
  const links = await dataSource.query<
    { community_id: string; member_id: string; stripe_key: string; stripe_account_id: string | null }[]
  >(
    `SELECT l.community_id, l.member_id, l.stripe_key, c.stripe_account_id
       FROM stripe_links l LEFT JOIN catalog_communities c ON c.community_id = l.community_id
      WHERE l.stripe_key LIKE 'sub\\_%' AND ($1::text IS NULL OR l.community_id = $1)
      ORDER BY l.community_id, l.stripe_key`,
    [communityId ?? null],
  );
  const out = new Map<string, ProjectedSubscription>();
  for (const m of members) {
    for (const [subscriptionId, s] of Object.entries(m.doc?.state?.subscriptions ?? {})) {
      out.set(`${m.community_id}\u0000${subscriptionId}`, {
        communityId: m.community_id,
        memberId: m.member_id,
        subscriptionId,
        stripeAccountId: m.stripe_account_id,
        status: s.latest?.status ?? null,
        priceId: s.latest?.priceId ?? null,
        currentPeriodEnd: s.latest?.currentPeriodEnd ?? null,
      });
    }
  }
  for (const l of links) {
    const key = `${l.community_id}\u0000${l.stripe_key}`;
    if (out.has(key)) continue;
    out.set(key, {
      communityId: l.community_id,
      memberId: l.member_id,
      subscriptionId: l.stripe_key,
      stripeAccountId: l.stripe_account_id,
      status: null,
      priceId: null,
      currentPeriodEnd: null,
    });
  }
  return [...out.values()];
}

/** A subscription of a connected account that Stripe will not let the platform read (401 or 403). */
export type RefusedRead = { refused: number };

async function retrieveOrNull(
  stripe: Stripe,
  s: ProjectedSubscription,
): Promise<unknown | RefusedRead | null> {
  try {
    return await stripe.subscriptions.retrieve(
      s.subscriptionId,
      {},
      s.stripeAccountId ? { stripeAccount: s.stripeAccountId } : undefined,
    );
  } catch (err) {
    const e = err as { statusCode?: number; code?: string };
    if (e.statusCode === 404 || e.code === 'resource_missing') return null;
    // The account disconnected the platform (or was deleted): named in the report, the others compared.
    if (s.stripeAccountId && (e.statusCode === 401 || e.statusCode === 403)) return { refused: e.statusCode };
    throw err;
  }
}

export function formatDrift(differences: DriftDifference[], checked: number): string {
  if (differences.length === 0) return `no drift: ${checked} subscription(s) match Stripe\n`;
  const lines = [`${differences.length} difference(s) in ${checked} subscription(s):`];
  for (const d of differences) {
    lines.push(
      `  ${d.communityId} ${d.memberId} ${d.subscriptionId} ${d.field}: projected ${d.projected ?? '-'}, Stripe ${d.stripe ?? '-'}`,
    );
  }
  return lines.join('\n') + '\n';
}

export async function driftCommand(opts: {
  community?: string;
  json?: boolean;
  requestsPerSecond: string;
}): Promise<number> {
  // Tried again, after a while, while Stripe refuses it for its rate.
  const retrieve = retryingRateLimited(
    atMostPerSecond(parseRequestsPerSecondOrThrow(opts.requestsPerSecond), retrieveOrNull),
  );
  const config = loadConfig();
  const log = stderrLogger(config);
  const stripe = stripeOrThrow(config);
  const set = await openRegions(config, log, opts.community);
  try {
    const sources = set.regions.map((r) => r.stores.dataSource);
    if (opts.community && (await linkedCommunities(sources[0], opts.community)).length === 0) {
      throw new CliUsageError(`--community ${opts.community}: no such community in the catalog`);
    }
    const subscriptions = (
      await Promise.all(sources.map((source) => projectedSubscriptions(source, opts.community)))
    ).flat();
    const differences: DriftDifference[] = [];
    let next = 0;
    let done = 0;
    // A few requests in flight, started no faster than --requests-per-second, while no other
    // command reads Stripe.
    await stripeBulkReadLock((await set.home()).dataSource, 'command', 'gatehouse stripe drift').hold(
      async () => {
        process.stderr.write(`comparing ${subscriptions.length} projected subscription(s) with Stripe…\n`);
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (next < subscriptions.length) {
              const s = subscriptions[next++];
              differences.push(...compareSubscription(s, await retrieve(stripe, s)));
              if (++done % 100 === 0) process.stderr.write(`  ${done}/${subscriptions.length}\n`);
            }
          }),
        );
      },
      { waiting: (holder) => process.stderr.write(waitingForBulkRead(holder)) },
    );
    differences.sort(
      (a, b) =>
        a.communityId.localeCompare(b.communityId) ||
        a.subscriptionId.localeCompare(b.subscriptionId) ||
        a.field.localeCompare(b.field),
    );
    process.stdout.write(
      opts.json
        ? JSON.stringify({ checked: subscriptions.length, differences }, null, 2) + '\n'
        : formatDrift(differences, subscriptions.length),
    );
    return differences.length > 0 ? 1 : 0;
  } finally {
    await set.close();
  }
}

/** One line per account: its events held, the oldest one's `created`, when the last was held. */
function heldTable(held: readonly HeldAccount[]): string[] {
  const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return [
    `${'account'.padEnd(28)} ${'events'.padStart(7)}  ${'oldest event'.padEnd(20)}  last held`,
    ...held.map(
      (a) =>
        `${a.accountId.padEnd(28)} ${String(a.events).padStart(7)}  ${iso(a.oldestCreated).padEnd(20)}  ${iso(a.lastHeldAt)}`,
    ),
  ];
}

const heldTotal = (held: readonly HeldAccount[]) => held.reduce((n, a) => n + a.events, 0);

export function formatQuarantine(held: readonly HeldAccount[]): string {
  if (held.length === 0) return 'no Stripe events held: every connected account that sent one is linked\n';
  return [
    ...heldTable(held),
    `${heldTotal(held)} event(s) held for ${held.length} account(s). A community created with the account as its ` +
      'stripeAccountId takes them into its ledger; those of an account linked already are taken by the ' +
      'projecting server within 30 s. An account that will never be linked: `gatehouse stripe quarantine ' +
      'drop <account>`.',
    '',
  ].join('\n');
}

/** A connected account's id as Stripe writes it, or `platform` for the platform's own events. */
export function parseHeldAccountOrThrow(value: string): string {
  if (value === PLATFORM_HOLD || /^acct_[A-Za-z0-9]+$/.test(value)) return value;
  throw new CliUsageError(`"${value}" is neither a connected account id (acct_…) nor "${PLATFORM_HOLD}"`);
}

export type QuarantineDropOptions = {
  olderThan?: string;
  save?: string;
  yes?: boolean;
  json?: boolean;
  unlinked?: boolean;
};

/** What `quarantine drop` found, and did unless it was a dry run. */
export type QuarantineDropReport = {
  dryRun: boolean;
  createdBefore: string | null;
  /** What was held, per account named (or found, with --unlinked), before any drop; only accounts with events. */
  held: HeldAccount[];
  dropped: number;
  savedTo: string | null;
  /** Accounts a community linked while the command ran: their events were left for its release. */
  linkedMeanwhile: string[];
};

export function formatQuarantineDrop(report: QuarantineDropReport): string {
  const scope = report.createdBefore ? ` created before ${report.createdBefore}` : '';
  if (report.held.length === 0) return `no Stripe events${scope} held for these accounts: nothing to drop\n`;
  const total = heldTotal(report.held);
  const lines = heldTable(report.held);
  if (report.dryRun) {
    lines.push(
      `${total} event(s)${scope} held for ${report.held.length} account(s) would be dropped. Nothing was ` +
        'dropped: run again with --yes to drop them, with --save <file> to keep a copy (one Stripe event ' +
        'per line). Stripe lists events for 30 days only: older ones cannot be fetched from it again.',
    );
  } else {
    lines.push(
      `dropped ${report.dropped} event(s)${scope} held for ${report.held.length - report.linkedMeanwhile.length} account(s)` +
        (report.savedTo ? `; a copy of each is in ${report.savedTo}` : ''),
    );
    if (report.linkedMeanwhile.length > 0)
      lines.push(
        `left those of ${report.linkedMeanwhile.join(', ')}: linked to a community while this ran, they go to its ledger`,
      );
  }
  return lines.join('\n') + '\n';
}

/** A line on stderr every this many events dropped. */
const DROP_PROGRESS_EVERY = 10_000;

/**
 * Drops the events held for connected accounts that will never be linked (they would otherwise stay
 * held, and counted, for good). A dry run unless `--yes`; refuses a linked account, whose events the
 * projecting server releases into its community.
 */
export async function quarantineDropCommand(
  accounts: string[],
  opts: QuarantineDropOptions,
): Promise<number> {
  const named = [...new Set(accounts.map(parseHeldAccountOrThrow))];
  if (opts.unlinked && named.length > 0)
    throw new CliUsageError('name the accounts or pass --unlinked, not both');
  if (!opts.unlinked && named.length === 0)
    throw new CliUsageError(
      'name the accounts (acct_…), or pass --unlinked for every account no community has linked',
    );
  const createdBefore =
    opts.olderThan === undefined ? undefined : parseSinceOrThrow(opts.olderThan, new Date(), '--older-than');
  if (opts.save !== undefined && !opts.yes)
    throw new CliUsageError('--save goes with --yes: a dry run drops nothing, so it saves nothing');
  const config = loadConfig();
  const log = stderrLogger(config);
  const set = await openRegions(config, log);
  // An account no community has linked has no region yet: its events wait in the default region's database.
  const quarantine = new PostgresQuarantineStore({ connectionString: set.regions[0].stores.databaseUrl });
  let out: FileHandle | undefined;
  try {
    const directory = catalogDirectory(
      set.regions.map((r) => r.stores.dataSource),
      config,
    );
    /** Why an account's held events go to a community, if they do: those are released, never dropped. */
    const linkedBecause = async (accountId: string): Promise<string | null> => {
      if (accountId === PLATFORM_HOLD) {
        const platform = config.stripePlatformCommunityId;
        return platform === undefined ? null : `STRIPE_PLATFORM_COMMUNITY_ID names community ${platform}`;
      }
      const community = await directory.communityForStripeAccount(accountId);
      return community ? `${accountId} is linked to community ${community}` : null;
    };
    await quarantine.init();
    let accountIds = named;
    if (opts.unlinked) {
      // Every account with events held (of the age asked for) that no community has linked.
      accountIds = [];
      for (const { accountId } of await quarantine.held({ createdBefore }))
        if (!(await linkedBecause(accountId))) accountIds.push(accountId);
    } else {
      for (const accountId of named) {
        const linked = await linkedBecause(accountId);
        if (linked)
          throw new CliUsageError(
            `${linked}: the projecting server moves its held events into that community’s ledger, so ` +
              'there is nothing to drop',
          );
      }
    }
    const filter = { accountIds, createdBefore };
    const held = await quarantine.held(filter);
    const report: QuarantineDropReport = {
      dryRun: !opts.yes,
      createdBefore: createdBefore?.toISOString() ?? null,
      held,
      dropped: 0,
      savedTo: null,
      linkedMeanwhile: [],
    };
    if (opts.yes && held.length > 0) {
      // `wx`: an existing file is refused, never overwritten.
      if (opts.save !== undefined) {
        out = await open(opts.save, 'wx').catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST')
            throw new CliUsageError(`--save ${opts.save}: the file exists; name a new one`);
          throw err;
        });
        report.savedTo = opts.save;
      }
      const file = out;
      let done = 0;
      const keep = async (events: StripeEvent[]) => {
        if (file) {
          await file.appendFile(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
          await file.sync();
        }
        const before = done;
        done += events.length;
        if (Math.floor(done / DROP_PROGRESS_EVERY) > Math.floor(before / DROP_PROGRESS_EVERY))
          process.stderr.write(`${done} of ${heldTotal(held)} event(s) dropped\n`);
      };
      // Each account under the lock that linking it takes: a community made for it meanwhile is
      // either linked before (its events are then left for the release) or after the drop.
      const lock = advisoryStripeAccountLock((await set.home()).dataSource);
      for (const { accountId } of held) {
        const drop = async () => {
          const linked = await linkedBecause(accountId);
          if (linked) {
            report.linkedMeanwhile.push(accountId);
            process.stderr.write(`${linked} since this command looked: its events are left for it\n`);
            return;
          }
          report.dropped += await quarantine.drop({ accountIds: [accountId], createdBefore }, { keep });
        };
        await (accountId === PLATFORM_HOLD ? drop() : lock(accountId, drop));
      }
    }
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatQuarantineDrop(report));
    return 0;
  } finally {
    await out?.close();
    await quarantine.close();
    await set.close();
  }
}

export async function quarantineCommand(opts: { json?: boolean }): Promise<number> {
  const config = loadConfig();
  const log = stderrLogger(config);
  // An account no community has linked has no region yet: its events wait in the default region's database.
  const [home] = regionStores(config);
  const stores = await openStores(home.config, log, { reuseRunning: true });
  const quarantine = new PostgresQuarantineStore({ connectionString: stores.databaseUrl });
  try {
    await quarantine.init();
    const held = await quarantine.held();
    process.stdout.write(opts.json ? `${JSON.stringify(held, null, 2)}\n` : formatQuarantine(held));
    return 0;
  } finally {
    await quarantine.close();
    await stores.close();
  }
}

export function registerStripeCommands(program: Command): void {
  const stripe = program
    .command('stripe')
    .description('Stripe: catch up missed webhooks, drift, import subscribers, sign payloads, the fake API');

  stripe
    .command('reconcile')
    .description(
      'append the Stripe events (Events API) the ledger lacks, per connected account; idempotent. ' +
        'Waits while another reconcile or drift reads Stripe',
    )
    .requiredOption(
      '--since <when>',
      'how far back: 72h, 30d, 90m or an ISO date-time (the Events API keeps 30 days)',
    )
    .option('--community <id>', 'only this community (its connected account)')
    .option('--json', 'print the report as JSON')
    .option(
      '--requests-per-second <n>',
      'Events API requests started in any second, all accounts together (Stripe allows 25 a second per endpoint)',
      String(RECONCILE_REQUESTS_PER_SECOND),
    )
    .action(run((opts: Parameters<typeof reconcileCommand>[0]) => reconcileCommand(opts)));

  stripe
    .command('fake')
    .description('run the fake Stripe API in the foreground until Ctrl-C (for demos and manual tests)')
    .option('--port <n>', 'port to listen on (0 picks a free one)', '12111')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--forward-to <url>',
      'send every event it records, signed, to this webhook endpoint (e.g. http://127.0.0.1:4000/webhooks/stripe)',
    )
    .option(
      '--webhook-secret <whsec>',
      'secret to sign with (default: the first of STRIPE_WEBHOOK_SECRET, else the local dev secret)',
    )
    .option(
      '--latency <ms>',
      'make each API request wait this long before its answer, as the real one takes time',
      '0',
    )
    .option(
      '--rate-limit <n>',
      "refuse API requests past n in a second with a 429, as Stripe's rate limiter does (its test mode allows 25)",
    )
    .action(run((opts: FakeOptions) => fakeCommand(opts)));

  const quarantine = stripe
    .command('quarantine')
    .description('list the connected accounts whose webhook events are held until a community links them')
    .option('--json', 'print the accounts as JSON')
    .action(run((opts: { json?: boolean }) => quarantineCommand(opts)));

  quarantine
    .command('drop')
    .description(
      'drop the events held for accounts no community will link (a dry run unless --yes); a linked account is refused',
    )
    .argument(
      '[accounts...]',
      `connected account ids (acct_…), or "${PLATFORM_HOLD}" for the platform's own events`,
    )
    .option(
      '--unlinked',
      'every account with events held that no community has linked, instead of naming them',
    )
    .option('--older-than <when>', 'only events created before this: 30d, 72h, 90m or an ISO date-time')
    .option(
      '--save <file>',
      'first write each event dropped to this new file, one Stripe event (JSON) per line',
    )
    .option('--yes', 'drop them; without it, only say what would be dropped')
    .option('--json', 'print the report as JSON')
    // `--json` after `drop` is the parent's option as much as its own: read both.
    .action(
      run((accounts: string[], _opts: QuarantineDropOptions, command: Command) =>
        quarantineDropCommand(accounts, command.optsWithGlobals<QuarantineDropOptions>()),
      ),
    );

  stripe
    .command('drift')
    .description(
      "compare projected subscriptions with Stripe's (status, price, period end); exit 1 on any difference. " +
        'Waits while another drift or reconcile reads Stripe',
    )
    .option('--community <id>', 'only this community')
    .option('--json', 'print the differences as JSON')
    .option(
      '--requests-per-second <n>',
      'subscriptions retrieved in any second (Stripe allows 25 a second per endpoint)',
      String(RECONCILE_REQUESTS_PER_SECOND),
    )
    .action(run((opts: Parameters<typeof driftCommand>[0]) => driftCommand(opts)));
}

import { withDeadline } from '@gatehouse/ledger';
import { LRUCache } from 'lru-cache';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP request duration by route',
      labelNames: ['route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    webhooks: new Counter({
      name: 'gatehouse_stripe_webhooks_total',
      help: 'Stripe webhook deliveries by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    reconcileRuns: new Counter({
      name: 'gatehouse_stripe_reconcile_runs_total',
      help: 'Runs of the Stripe reconciler on its interval, by outcome (ok, failed)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    reconcileRunSeconds: new Histogram({
      name: 'gatehouse_stripe_reconcile_run_duration_seconds',
      help: 'How long runs of the Stripe reconciler on its interval took, by outcome (ok, failed)',
      labelNames: ['outcome'] as const,
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    }),
    reconcileTicksSkipped: new Counter({
      name: 'gatehouse_stripe_reconcile_ticks_skipped_total',
      help: 'Ticks of GATEHOUSE_RECONCILE_INTERVAL skipped: the last run still under way (reason "running": runs take longer than the interval), or another server\'s run, one that lost the projector lease during it (reason "locked")',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    stripeRequestSeconds: new Histogram({
      name: 'gatehouse_stripe_request_duration_seconds',
      help: 'How long Stripe took to answer the requests of this server, by method and path (ids shown as :id), as the Stripe SDK measures each try',
      labelNames: ['method', 'path'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
      registers: [registry],
    }),
    stripeRateLimited: new Counter({
      name: 'gatehouse_stripe_rate_limited_total',
      help: 'Stripe API requests of this server that Stripe refused for its rate (429), each asked for again after a while: one that keeps rising wants fewer requests, or a higher limit from Stripe',
      registers: [registry],
    }),
    reconciledEvents: new Counter({
      name: 'gatehouse_stripe_reconciled_events_total',
      help: 'Stripe events the reconciler found in the Events API and not in the ledger, and appended: webhooks that did not arrive',
      registers: [registry],
    }),
  };
}

/**
 * How long a gauge's database read serves scrapes: `/metrics` needs no token, so a burst of requests
 * must not become a burst of queries. Scrapes arriving together share one read.
 */
export const SCRAPE_CACHE_MS = 5_000;

/**
 * How long a scrape waits for a gauge's database read: one that has not answered by then (a database
 * that stopped answering) leaves the gauge's last value, and the scrape answers with the rest, the
 * HTTP metrics among them, when they matter most. The read goes on, and later scrapes share it.
 */
export const SCRAPE_WAIT_MS = 2_000;

function cachedRead<T extends object | number>(
  read: () => Promise<T>,
  ttlMs: number,
  waitMs: number,
): () => Promise<T> {
  const cache = new LRUCache<'value', T>({ max: 1, ttl: ttlMs, fetchMethod: () => read() });
  return () => withDeadline(cache.fetch('value') as Promise<T>, waitMs);
}

/** A gauge of one value, read at scrape time through `cachedRead`. */
function registerReadGauge<T>(
  metrics: Metrics,
  gauge: { name: string; help: string },
  read: () => Promise<T>,
  value: (read: T) => number,
): void {
  new Gauge({
    ...gauge,
    registers: [metrics.registry],
    async collect() {
      // A failed or slow read leaves the last value: the scrape must not fail with the database.
      const got = await read().then(
        (r) => ({ r }),
        () => undefined,
      );
      if (got !== undefined) this.set(value(got.r));
    },
  });
}

/** A gauge with one value per region, read at scrape time through `cachedRead`. */
function registerRegionGauge(
  metrics: Metrics,
  gauge: { name: string; help: string },
  read: () => Promise<{ region: string; value: number }[]>,
  ttlMs: number,
  waitMs: number,
): void {
  const byRegion = cachedRead(read, ttlMs, waitMs);
  new Gauge({
    ...gauge,
    labelNames: ['region'] as const,
    registers: [metrics.registry],
    async collect() {
      // As above: a failed or slow read leaves the last values.
      const values = await byRegion().catch(() => undefined);
      for (const { region, value } of values ?? []) this.set({ region }, value);
    },
  });
}

/**
 * `gatehouse_projector_lag_events{region}`: events of the region's ledger that its slowest projection
 * has not applied yet (counted up to 10,000), read at scrape time (at most every `SCRAPE_CACHE_MS`).
 */
export function registerProjectorLagGauge(
  metrics: Metrics,
  read: () => Promise<{ region: string; behind: number }[]>,
  ttlMs = SCRAPE_CACHE_MS,
  waitMs = SCRAPE_WAIT_MS,
): void {
  registerRegionGauge(
    metrics,
    {
      name: 'gatehouse_projector_lag_events',
      help: 'Events appended to the ledger that the projector has not applied yet',
    },
    async () => (await read()).map(({ region, behind }) => ({ region, value: behind })),
    ttlMs,
    waitMs,
  );
}

/**
 * `gatehouse_projector_leading{region}`: 1 on the server that projects the region's read models, 0
 * on one that follows it (several servers on one database), read from memory at each scrape.
 */
export function registerProjectorLeadingGauge(
  metrics: Metrics,
  read: () => { region: string; leading: boolean }[],
): void {
  new Gauge({
    name: 'gatehouse_projector_leading',
    help: 'Whether this server projects the region (1) or follows the server that does (0)',
    labelNames: ['region'] as const,
    registers: [metrics.registry],
    collect() {
      for (const { region, leading } of read()) this.set({ region }, leading ? 1 : 0);
    },
  });
}

/** Quarantined Stripe events are counted up to this many (and one more, to show the cap was passed). */
export const QUARANTINE_COUNT_CAP = 100_000;

/**
 * `gatehouse_stripe_quarantined_events`: Stripe events held for connected accounts that no community
 * has linked yet (counted up to `QUARANTINE_COUNT_CAP` + 1), read at scrape time (at most every
 * `SCRAPE_CACHE_MS`). A count that stays above
 * zero usually means a community's `stripeAccountId` is missing or mistyped (`gatehouse stripe
 * quarantine` lists the accounts).
 */
export function registerQuarantineGauge(
  metrics: Metrics,
  read: () => Promise<number>,
  ttlMs = SCRAPE_CACHE_MS,
  waitMs = SCRAPE_WAIT_MS,
): void {
  registerReadGauge(
    metrics,
    {
      name: 'gatehouse_stripe_quarantined_events',
      help: 'Stripe events held for connected accounts that no community has linked yet',
    },
    cachedRead(read, ttlMs, waitMs),
    (n) => n,
  );
}

/**
 * `gatehouse_stripe_quarantine_oldest_held_seconds`: how long the event held longest has waited
 * (0 when none is held), read like the count. Linking releases within seconds: an age that keeps
 * growing is an account nobody will link (`gatehouse stripe quarantine drop`) or a missing link.
 */
export function registerQuarantineAgeGauge(
  metrics: Metrics,
  read: () => Promise<Date | null>,
  timing: AgeGaugeTiming = {},
): void {
  registerAgeGauge(
    metrics,
    {
      name: 'gatehouse_stripe_quarantine_oldest_held_seconds',
      help: 'Seconds the Stripe event held longest for an unlinked connected account has waited (0: none held)',
    },
    read,
    timing,
  );
}

/**
 * `gatehouse_stripe_reconcile_window_age_seconds` (with `GATEHOUSE_RECONCILE_INTERVAL`): seconds since
 * the start of the least recent run that listed one of the accounts (the platform's and the linked
 * ones that a run has listed), from the windows the database keeps; until one is kept, since this
 * server started. Every event older than that, less 5 minutes, was listed. It should stay near the
 * interval: a growing age means the runs fail (`gatehouse_stripe_reconcile_runs_total`) or take
 * longer than the interval.
 */
export function registerReconcileWindowAgeGauge(
  metrics: Metrics,
  read: () => Promise<Date | null>,
  startedAt: Date,
  timing: AgeGaugeTiming = {},
): void {
  registerAgeGauge(
    metrics,
    {
      name: 'gatehouse_stripe_reconcile_window_age_seconds',
      help: 'Seconds since the start of the least recent reconcile run that listed an account to the end (until one has: since the server started)',
    },
    async () => (await read()) ?? startedAt,
    timing,
  );
}

/** An age gauge's clock, and how long a read is kept and waited for (`cachedRead`). */
export type AgeGaugeTiming = { clock?: () => number; ttlMs?: number; waitMs?: number };

/** A gauge of the seconds since a time read at scrape time (0 for no time). */
function registerAgeGauge(
  metrics: Metrics,
  gauge: { name: string; help: string },
  read: () => Promise<Date | null>,
  { clock = Date.now, ttlMs = SCRAPE_CACHE_MS, waitMs = SCRAPE_WAIT_MS }: AgeGaugeTiming,
): void {
  registerReadGauge(
    metrics,
    gauge,
    cachedRead(async () => ({ at: await read() }), ttlMs, waitMs),
    // The age at the scrape, from the time however old the read.
    ({ at }) => (at ? Math.max(0, (clock() - at.getTime()) / 1000) : 0),
  );
}

/** Parked Stripe events are counted up to this many per region. */
export const UNLINKED_COUNT_CAP = 100_000;

/**
 * `gatehouse_stripe_unlinked_events{region}`: Stripe events the projection could not attribute to a
 * member and keeps aside until one of their keys is linked (counted up to `UNLINKED_COUNT_CAP` + 1),
 * read at scrape time (at most every `SCRAPE_CACHE_MS`). Events of a connected account's other sales
 * stay here for good: a count that only grows is worth a look (`stripe_unlinked` has their reasons).
 */
export function registerUnlinkedGauge(
  metrics: Metrics,
  read: () => Promise<{ region: string; events: number }[]>,
  ttlMs = SCRAPE_CACHE_MS,
  waitMs = SCRAPE_WAIT_MS,
): void {
  registerRegionGauge(
    metrics,
    {
      name: 'gatehouse_stripe_unlinked_events',
      help: 'Stripe events kept aside until a member is found for them',
    },
    async () => (await read()).map(({ region, events }) => ({ region, value: events })),
    ttlMs,
    waitMs,
  );
}

/**
 * A Stripe API path as a metric label: the query left out, and each segment after the version that
 * holds a digit or a capital letter (an object's id: `sub_1NxY…`, a coupon's `LAUNCH10`) shown as
 * `:id`, so that the label takes a handful of values.
 */
export function stripePathTemplate(path: string): string {
  const [version, ...rest] = path.split('?')[0].split('/').filter(Boolean);
  if (version === undefined) return '/';
  return ['', version, ...rest.map((segment) => (/[0-9A-Z]/.test(segment) ? ':id' : segment))].join('/');
}

/** Counts and times the Stripe API requests a Stripe client makes, from the SDK's response events. */
export function observeStripeRequests(
  stripe: { on(event: 'response', listener: (response: StripeResponseEvent) => void): void },
  metrics: Pick<Metrics, 'stripeRequestSeconds' | 'stripeRateLimited'>,
): void {
  stripe.on('response', (response) => {
    metrics.stripeRequestSeconds.observe(
      { method: response.method ?? 'GET', path: stripePathTemplate(response.path ?? '') },
      response.elapsed / 1000,
    );
    if (response.status === 429) metrics.stripeRateLimited.inc();
  });
}

type StripeResponseEvent = { method?: string; path?: string; status?: number; elapsed: number };

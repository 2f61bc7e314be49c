import { setTimeout as sleep } from 'node:timers/promises';
import Stripe from 'stripe';
import { PostgresLedger } from '@gatehouse/ledger';
import {
  RECONCILE_REQUESTS_PER_SECOND,
  reconcile,
  startFakeStripe,
  stripeConfigForApiBase,
  stripeEventToLedgerFact,
  stripeTestKit as kit,
  type StripeEvent,
} from '@gatehouse/stripe';
import { median } from './http-load';

// How long a reconcile run over many connected accounts takes when each Stripe request takes a
// while to answer (the fake Stripe API's `latencyMs`), listing one account at a time against four
// at a time under the run's request rate, and four at a time with no rate at all: what the rate
// costs. The fake refuses requests past Stripe's test-mode limit (25 a second) as Stripe does, and
// the run asks again after a while for what was refused. The ledger (PostgreSQL) already holds every
// event, as after webhooks that all arrived, so each page costs one Events API request and one
// question to the ledger.

export type ReconcileBenchOptions = {
  /** A scratch database for the ledger. */
  databaseUrl: string;
  log: (line: string) => void;
  /** Fewer accounts (8 instead of 16). */
  quick?: boolean;
  /** Connected accounts, overriding the quick/full defaults. */
  accounts?: number;
  /** Runs per figure (median reported); at least 3. */
  runs?: number;
  /** Milliseconds each request waits in the fake before its answer. */
  latenciesMs?: number[];
  /** Requests the fake takes in a second before it refuses them (default: Stripe's test mode, 25). */
  rateLimitPerSecond?: number;
};

export type ReconcileFigure = {
  latencyMs: number;
  concurrency: number;
  /** Requests allowed in any second; null for no cap. */
  requestsPerSecond: number | null;
  seconds: number;
  eventsPerSecond: number;
  /** The most Events API requests started within any one second of a run (the highest of the runs). */
  peakRequestsPerSecond: number;
  /** Requests Stripe's rate limit refused (429) in a run (the median of the runs). */
  refused: number;
  /** One account at a time, divided by this: how many times faster. */
  speedUp: number;
};

/** Stripe's test mode allows 25 requests a second, all endpoints together (100 live). */
export const STRIPE_TEST_MODE_RATE = 25;

const EVENTS_PER_ACCOUNT = 250; // three pages of the Events API
const SETTINGS = [
  { concurrency: 1, requestsPerSecond: RECONCILE_REQUESTS_PER_SECOND },
  { concurrency: 4, requestsPerSecond: RECONCILE_REQUESTS_PER_SECOND },
  { concurrency: 4, requestsPerSecond: Infinity },
] as const;

/** The most of `times` (ms, ascending) within any window of one second. */
export function peakPerSecond(times: readonly number[]): number {
  let peak = 0;
  for (let first = 0, last = 0; last < times.length; last++) {
    while (times[last] - times[first] >= 1_000) first++;
    peak = Math.max(peak, last - first + 1);
  }
  return peak;
}

export async function runReconcileBench(options: ReconcileBenchOptions): Promise<ReconcileFigure[]> {
  const { log } = options;
  const runs = Math.max(3, options.runs ?? 3);
  const accounts = Array.from(
    { length: options.accounts ?? (options.quick ? 8 : 16) },
    (_, i) => `acct_bench${i + 1}`,
  );
  const latencies = options.latenciesMs ?? [50, 300];
  const limit = options.rateLimitPerSecond ?? STRIPE_TEST_MODE_RATE;
  const now = Math.floor(Date.now() / 1000);
  const events: StripeEvent[] = accounts.flatMap((account) =>
    Array.from({ length: EVENTS_PER_ACCOUNT }, (_, i) =>
      kit.invoicePaid({}, { account, created: now - 86_400 + i }),
    ),
  );
  const communityOf = (account: string) => `bench-${account}`;
  const ledger = new PostgresLedger({ connectionString: options.databaseUrl });
  await ledger.init();
  const figures: ReconcileFigure[] = [];
  try {
    for (let i = 0; i < events.length; i += 500)
      await ledger.append(
        events.slice(i, i + 500).map((e) => stripeEventToLedgerFact(e, communityOf(e.account!))),
      );
    log(
      `reconcile bench: ${accounts.length} connected accounts, ${EVENTS_PER_ACCOUNT} events each (3 Events API pages), ` +
        `all already in a PostgreSQL ledger; a fake Stripe refusing past ${limit} requests a second` +
        `${limit === STRIPE_TEST_MODE_RATE ? ' (test mode)' : ''}; median of ${runs} runs, the settings taking turns`,
    );
    for (const latencyMs of latencies) {
      const fake = await startFakeStripe({
        latencyMs,
        clock: () => now,
        rateLimitPerSecond: limit,
      });
      try {
        for (const e of events) fake.emit(e);
        const stripe = new Stripe('sk_test_bench', {
          ...stripeConfigForApiBase(fake.url),
          maxNetworkRetries: 0,
        });
        const started: number[] = [];
        stripe.on('request', () => started.push(Date.now()));
        const seconds = SETTINGS.map(() => [] as number[]);
        const peaks = SETTINGS.map(() => 0);
        const refused = SETTINGS.map(() => [] as number[]);
        for (let run = 0; run < runs; run++) {
          for (const [s, setting] of SETTINGS.entries()) {
            // Each run starts on a Stripe whose last second is quiet: the run before spends none of its rate.
            await sleep(1_100);
            started.length = 0;
            const answeredBefore = fake.requests.length;
            const t0 = process.hrtime.bigint();
            const report = await reconcile({
              stripe,
              ledger,
              directory: {
                communityForStripeAccount: async (account) => communityOf(account),
                platformCommunity: async () => null,
              },
              since: new Date((now - 2 * 86_400) * 1000),
              accounts,
              includePlatform: false,
              concurrency: setting.concurrency,
              requestsPerSecond: setting.requestsPerSecond,
              log: { info: () => undefined, warn: () => undefined, error: () => undefined },
              clock: () => new Date(now * 1000),
            });
            seconds[s].push(Number(process.hrtime.bigint() - t0) / 1e9);
            if (report.listed !== events.length || report.appended !== 0)
              throw new Error(
                `reconcile bench: a run listed ${report.listed} and appended ${report.appended}; expected ${events.length} and 0`,
              );
            peaks[s] = Math.max(peaks[s], peakPerSecond(started));
            refused[s].push(fake.requests.slice(answeredBefore).filter((r) => r.status === 429).length);
          }
        }
        const base = median(seconds[0]);
        for (const [s, setting] of SETTINGS.entries()) {
          const m = median(seconds[s]);
          const figure: ReconcileFigure = {
            latencyMs,
            concurrency: setting.concurrency,
            requestsPerSecond: Number.isFinite(setting.requestsPerSecond) ? setting.requestsPerSecond : null,
            seconds: m,
            eventsPerSecond: events.length / m,
            peakRequestsPerSecond: peaks[s],
            refused: median(refused[s]),
            speedUp: base / m,
          };
          figures.push(figure);
          const rate = figure.requestsPerSecond === null ? 'no cap' : `≤ ${figure.requestsPerSecond} req/s`;
          log(
            `latency ${String(latencyMs).padStart(4)} ms  ${setting.concurrency} at a time, ${rate.padEnd(12)} ` +
              `${m.toFixed(2).padStart(6)} s  ${Math.round(figure.eventsPerSecond).toLocaleString('en-US').padStart(6)} events/s  ` +
              `peak ${String(figure.peakRequestsPerSecond).padStart(3)} requests in a second  ` +
              `${String(figure.refused).padStart(3)} refused (429)  ×${figure.speedUp.toFixed(2)}`,
          );
        }
      } finally {
        await fake.close();
      }
    }
  } finally {
    await ledger.close();
  }
  return figures;
}

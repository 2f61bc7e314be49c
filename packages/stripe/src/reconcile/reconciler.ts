import type { Ledger } from '@gatehouse/ledger';
import pLimit from 'p-limit';
import type Stripe from 'stripe';
import { PLATFORM_HOLD, type QuarantineStore } from '../quarantine/quarantine.port';
import { assertStripeEvent, stripeEventToLedgerFact, type StripeEvent } from '../stripe-event';
import type { CommunityDirectory } from '../webhook/community-directory.port';
import type { WebhookLogger } from '../webhook/ingest.handler';
import { atMostPerSecond, retryingRateLimited } from './stripe-rate';

/** The Events API keeps 30 days of events. */
export const EVENTS_API_WINDOW_MS = 30 * 24 * 3600 * 1000;
const APPEND_BATCH = 100;
/** Events per page of the Events API (its maximum), and per question to the ledger. */
const PAGE = 100;
/**
 * Stripe allows 25 requests a second to one endpoint (and 25 to all of them in test mode, 100 live).
 * A reconcile run takes at most 10 of them: requests the server makes for members at the same time
 * (Checkout, the billing portal) are not refused for its sake. That still lists 1,000 events a second.
 */
export const RECONCILE_REQUESTS_PER_SECOND = 10;

export type ReconcileOptions = {
  stripe: Stripe;
  ledger: Ledger;
  directory: CommunityDirectory;
  /** Earliest event time to look at; clamped to the Events API's 30-day window. */
  since: Date;
  /** Connected accounts (`acct_…`) to reconcile besides the platform account. */
  accounts?: readonly string[];
  /** Reconcile the platform account's own events too (default true). */
  includePlatform?: boolean;
  /** When given, events of accounts without a community are held here instead of skipped. */
  quarantine?: QuarantineStore;
  log: WebhookLogger;
  clock?: () => Date;
  /** Accounts listed at once (default 1): Stripe's rate limit is shared by all of them. */
  concurrency?: number;
  /**
   * At most this many Events API requests in any second, all accounts together (default
   * `RECONCILE_REQUESTS_PER_SECOND`; `Infinity` for no cap).
   */
  requestsPerSecond?: number;
  /**
   * Stops the run: once aborted, no account starts and no further request goes to Stripe (one under
   * way is answered first); an account whose listing it cut short appends nothing, one whose last
   * page had come appends what it lacks, and the run then rejects with a `ReconcileStoppedError`
   * (the signal's reason as its message) that reports the accounts it finished.
   */
  signal?: AbortSignal;
  /**
   * Waits before each new try of a page Stripe refused for its rate (429), one a try
   * (`RATE_LIMIT_BACKOFF_MS` by default); past the last, the run fails.
   */
  rateLimitBackoffMs?: readonly number[];
  /** Called after each page of events listed: how many so far for this account, and how many the ledger lacks. */
  onProgress?: (progress: ReconcileProgress) => void;
};

export type ReconcileProgress = { account: string | null; listed: number; missing: number };

export type ReconcileScopeReport = {
  /** null for the platform account. */
  account: string | null;
  communityId: string | null;
  listed: number;
  appended: number;
  alreadyPresent: number;
  /** Listed but not recorded: the account has no community (held in quarantine when one is given). */
  unassigned: number;
  /** Ids of the events this run appended (the ones the webhook had missed). */
  appendedIds: string[];
};

export type ReconcileReport = {
  since: string;
  /** True when `since` was older than the Events API keeps and was moved forward. */
  clamped: boolean;
  scopes: ReconcileScopeReport[];
  /**
   * Connected accounts whose events Stripe refused to list (401 or 403: the account disconnected the
   * platform, or was deleted): nothing of theirs was appended, and the other accounts were listed.
   */
  refused: { account: string; message: string }[];
  listed: number;
  appended: number;
  alreadyPresent: number;
  unassigned: number;
};

/**
 * Lists Stripe's Events API (platform and connected accounts) and appends what the ledger lacks.
 * Each page listed is checked against the ledger, and only the events it lacks are kept, then
 * appended oldest first; events already recorded by the webhook are reported as present. Appending
 * is idempotent by event id, so an event the webhook brings meanwhile is not written twice.
 */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileReport> {
  const { stripe, ledger, directory, log } = options;
  const now = (options.clock ?? (() => new Date()))().getTime();
  const earliest = now - EVENTS_API_WINDOW_MS;
  const clamped = options.since.getTime() < earliest;
  const sinceMs = clamped ? earliest : options.since.getTime();
  const gte = Math.ceil(sinceMs / 1000);
  const scopes: (string | null)[] = [
    ...(options.includePlatform === false ? [] : [null]),
    ...(options.accounts ?? []),
  ];

  const { signal } = options;
  // A request Stripe refuses for its rate is made again after a while, in its turn again.
  const listPage = retryingRateLimited(
    atMostPerSecond(
      options.requestsPerSecond ?? RECONCILE_REQUESTS_PER_SECOND,
      // Checked when its turn comes: a stop while it waited sends nothing.
      (params: Stripe.EventListParams, requestOptions?: Stripe.RequestOptions) => {
        signal?.throwIfAborted();
        return stripe.events.list(params, requestOptions);
      },
    ),
    { signal, backoffMs: options.rateLimitBackoffMs },
  );

  const one = async (account: string | null): Promise<ReconcileScopeReport> => {
    const communityId = account
      ? await directory.communityForStripeAccount(account)
      : await directory.platformCommunity();
    const report: ReconcileScopeReport = {
      account,
      communityId,
      listed: 0,
      appended: 0,
      alreadyPresent: 0,
      unassigned: 0,
      appendedIds: [],
    };
    // Only what the ledger lacks is kept: a busy account lists far more events than a webhook missed.
    const missing: StripeEvent[] = [];
    const page: StripeEvent[] = [];
    const settle = async () => {
      if (page.length === 0) return;
      report.listed += page.length;
      if (!communityId) {
        report.unassigned += page.length;
        if (options.quarantine)
          for (const e of page) await options.quarantine.put(account ?? PLATFORM_HOLD, e);
      } else {
        const held = await ledger.holds(page.map((e) => e.id));
        const lacking = page.filter((e) => !held.has(e.id));
        missing.push(...lacking);
        report.alreadyPresent += page.length - lacking.length;
      }
      page.length = 0;
      options.onProgress?.({ account, listed: report.listed, missing: missing.length });
    };
    // Page by page (newest first), each request waiting its turn under the run's rate.
    let startingAfter: string | undefined;
    for (;;) {
      const listed = await listPage(
        { created: { gte }, limit: PAGE, ...(startingAfter && { starting_after: startingAfter }) },
        account ? { stripeAccount: account } : undefined,
      );
      for (const item of listed.data) {
        const event: unknown = item;
        assertStripeEvent(event);
        page.push(event);
      }
      await settle();
      if (!listed.has_more || listed.data.length === 0) break;
      startingAfter = listed.data[listed.data.length - 1].id;
    }
    // Only when events were listed: a server reconciling every minute would say it every minute otherwise.
    if (!communityId && report.listed > 0) {
      log.warn(
        { account, events: report.listed, held: options.quarantine !== undefined },
        'reconcile: no community for this Stripe account',
      );
    }
    // The Events API lists newest first; the ledger should learn them in the order they happened.
    missing.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
    for (let i = 0; communityId && i < missing.length; i += APPEND_BATCH) {
      const batch = missing.slice(i, i + APPEND_BATCH);
      const results = await ledger.append(batch.map((e) => stripeEventToLedgerFact(e, communityId)));
      results.forEach((r) => {
        if (r.appended) {
          report.appended++;
          report.appendedIds.push(r.id);
        } else report.alreadyPresent++; // the webhook brought it meanwhile
      });
    }
    log.info(
      { account, communityId, listed: report.listed, appended: report.appended },
      'reconcile: account done',
    );
    return report;
  };
  // Accounts are listed `concurrency` at a time. A failure stops new ones from starting; the run
  // ends, with that failure, once those under way are done (nothing goes on after it returns). A
  // connected account Stripe no longer lets the platform read is reported, and the others go on: one
  // disconnected account must not hold back the recovery of every other account's missed webhooks.
  const limit = pLimit(Math.max(1, Math.floor(options.concurrency ?? 1)));
  let failed: { err: unknown } | undefined;
  const refused: { account: string; message: string }[] = [];
  const settled = await Promise.all(
    scopes.map((account) =>
      limit(async () => {
        if (failed) return undefined;
        if (signal?.aborted) {
          failed = { err: signal.reason };
          return undefined;
        }
        try {
          return await one(account);
        } catch (err) {
          if (account !== null && accessRefused(err)) {
            const message = err instanceof Error ? err.message : String(err);
            refused.push({ account, message });
            log.warn(
              { account, err: message },
              'reconcile: Stripe refused to list this account (has it disconnected the platform?); the others go on',
            );
          } else failed ??= { err };
          return undefined;
        }
      }),
    ),
  );
  const summary = (reports: ReconcileScopeReport[]): ReconcileReport => {
    const sum = (k: 'listed' | 'appended' | 'alreadyPresent' | 'unassigned') =>
      reports.reduce((s, r) => s + r[k], 0);
    return {
      since: new Date(gte * 1000).toISOString(),
      clamped,
      scopes: reports,
      refused: [...refused],
      listed: sum('listed'),
      appended: sum('appended'),
      alreadyPresent: sum('alreadyPresent'),
      unassigned: sum('unassigned'),
    };
  };
  const done = settled.filter((r): r is ReconcileScopeReport => r !== undefined);
  // A stop that came once every account was done cut nothing short.
  if (signal?.aborted && done.length + refused.length < scopes.length)
    throw new ReconcileStoppedError(signal.reason, summary(done));
  if (failed) throw failed.err;
  return summary(done);
}

/** Stripe's 401 or 403: the platform's key may not read this account (any longer). */
function accessRefused(err: unknown): boolean {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return status === 401 || status === 403;
}

/** A run its signal stopped: `report` holds the accounts listed to the end before the stop. */
export class ReconcileStoppedError extends Error {
  constructor(
    readonly reason: unknown,
    readonly report: ReconcileReport,
  ) {
    super(reason instanceof Error ? reason.message : String(reason ?? 'reconcile stopped'));
    this.name = 'ReconcileStoppedError';
  }
}

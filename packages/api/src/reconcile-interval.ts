import type Stripe from 'stripe';
import { reconcile, ReconcileWindows, type ReconcileWindowStore } from '@gatehouse/stripe';
import { everyWhileLeading } from './leader-task';
import type { AdvisoryLock } from './services';
import type { StripeTaskDeps } from './quarantine-sweep';
import type { Metrics } from './http/metrics';

/** Stripe's clock against ours, and an event listed a little after the time it is dated. */
export const RECONCILE_OVERLAP_MS = 5 * 60_000;

/**
 * Accounts listed at once: a run over thousands of accounts takes minutes one at a time, while each
 * listing waits on Stripe far more than it works. Together they start no more requests than the
 * reconciler's rate allows (`RECONCILE_REQUESTS_PER_SECOND`, below Stripe's 25 a second).
 */
export const RECONCILE_CONCURRENCY = 4;

/**
 * The windows of a reconciler run every `intervalSeconds`: an account's first run lists back over
 * three intervals, at least an hour (at most three days, at the longest interval).
 */
export function reconcileWindows(intervalSeconds: number, store?: ReconcileWindowStore): ReconcileWindows {
  return new ReconcileWindows(
    { firstWindowMs: Math.max(3 * intervalSeconds, 3600) * 1000, overlapMs: RECONCILE_OVERLAP_MS },
    store,
  );
}

/**
 * The reconciler inside the server: every `intervalSeconds`, while `leads()` (one server of several
 * runs it: each run lists accounts' events against one Stripe rate limit), the Events API of the
 * platform and of every linked account is listed and what the ledger lacks is appended. An account
 * is first listed back over three intervals (at least an hour), then from `RECONCILE_OVERLAP_MS` before
 * the start of the last run that listed it, as `windows` keeps it (in the database: a restarted server,
 * or the next one to project, goes on from there).
 * A tick is skipped while the last run is under way, or while another server's run holds
 * `bulkRead`: the next one lists from where the last run that listed began. An operator's
 * `gatehouse stripe reconcile` or `drift` runs beside it, each under its own rate (a reconcile that
 * listed an account from where the next run would moves its window forward too).
 * Answers a stop function: a run under way sends no further request to Stripe and moves no window
 * forward, and the stop resolves once it has ended.
 */
export function startReconcileInterval(
  deps: StripeTaskDeps & {
    intervalSeconds: number;
    stripe: Stripe;
    /** How far each account was listed; in this process only when not given. */
    windows?: ReconcileWindowStore;
    /** Held by each run; a tick that finds it taken is skipped. */
    bulkRead: Pick<AdvisoryLock, 'holdIfFree'>;
    metrics: Pick<
      Metrics,
      'reconcileRuns' | 'reconciledEvents' | 'reconcileRunSeconds' | 'reconcileTicksSkipped'
    >;
  },
): () => Promise<void> {
  const { intervalSeconds, log } = deps;
  const windows = reconcileWindows(intervalSeconds, deps.windows);
  return everyWhileLeading({
    everyMs: intervalSeconds * 1000,
    leads: deps.leads,
    task: async (signal) => {
      // One server's run at a time across the deployment: a server that lost the projector lease in
      // the middle of its run may still be listing when the next one's tick comes.
      const ran = await deps.bulkRead.holdIfFree(async () => {
        const started = Date.now();
        const took = deps.metrics.reconcileRunSeconds.startTimer();
        try {
          await run(signal, started);
          deps.metrics.reconcileRuns.inc({ outcome: 'ok' });
          took({ outcome: 'ok' });
        } catch (err) {
          if (!signal.aborted) took({ outcome: 'failed' });
          throw err;
        }
      });
      if (!ran.held) {
        deps.metrics.reconcileTicksSkipped.inc({ reason: 'locked' });
        log.info("another server's reconcile run is under way; this tick is skipped");
      }
    },
    skipped: () => deps.metrics.reconcileTicksSkipped.inc({ reason: 'running' }),
    failed: (err) => {
      deps.metrics.reconcileRuns.inc({ outcome: 'failed' });
      log.warn({ err }, 'reconciliation failed; will retry');
    },
  });

  async function run(signal: AbortSignal, started: number): Promise<void> {
    const plan = await windows.plan([null, ...(await deps.linkedAccounts())], started);
    for (const { since, accounts } of plan) {
      const report = await reconcile({
        stripe: deps.stripe,
        ledger: deps.ledger,
        directory: deps.directory,
        since,
        accounts: accounts.filter((a): a is string => a !== null),
        includePlatform: accounts.includes(null),
        quarantine: deps.quarantine,
        concurrency: RECONCILE_CONCURRENCY,
        log,
        signal,
      });
      // An account Stripe refused is listed from where it was once it lets the platform read again.
      const refused = new Set<string | null>(report.refused.map((r) => r.account));
      await windows.listed(
        accounts.filter((a) => !refused.has(a)),
        started,
      );
      deps.metrics.reconciledEvents.inc(report.appended);
      log.info({ report }, 'reconciled with the Stripe Events API');
    }
  }
}

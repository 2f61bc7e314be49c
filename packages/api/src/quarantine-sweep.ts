import type { Logger } from 'pino';
import type { Ledger } from '@gatehouse/ledger';
import { releaseLinkedQuarantine, type CommunityDirectory, type QuarantineStore } from '@gatehouse/stripe';
import { everyWhileLeading } from './leader-task';

/** What the server's periodic Stripe tasks (this sweep, the interval reconciler) work with. */
export type StripeTaskDeps = {
  ledger: Ledger;
  quarantine: QuarantineStore;
  directory: CommunityDirectory;
  /** The Stripe accounts linked to a community, in every region. */
  linkedAccounts: () => Promise<string[]>;
  /** Whether this server projects the default region: the one that runs the tasks. */
  leads: () => boolean;
  log: Logger;
};

/** How often the server projecting the default region looks for held events it can release. */
export const QUARANTINE_SWEEP_MS = 30_000;

/**
 * Linking an account releases what the quarantine held for it, but an event can miss that: one held
 * by a webhook that looked the account up just before the link and was held just after the release
 * looked, or one whose release failed or was cut short by a stop. While `leads()`, soon after start
 * and then every 30 s, whatever is held for an account linked by now (or for the platform, once
 * it has a community) is released. Answers a stop function, which waits for a sweep under way.
 */
export function startQuarantineSweep(deps: StripeTaskDeps): () => Promise<void> {
  const { log } = deps;
  return everyWhileLeading({
    everyMs: QUARANTINE_SWEEP_MS,
    firstAfterMs: 1_000,
    leads: deps.leads,
    task: async () => {
      const reports = await releaseLinkedQuarantine({
        ledger: deps.ledger,
        quarantine: deps.quarantine,
        directory: deps.directory,
        accounts: await deps.linkedAccounts(),
      });
      for (const report of reports)
        log.info({ report }, 'quarantined Stripe events of a linked account released');
    },
    failed: (err) => log.warn({ err }, 'releasing quarantined Stripe events failed; will retry'),
  });
}

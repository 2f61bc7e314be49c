import type { Ledger } from '@gatehouse/ledger';
import { stripeEventToLedgerFact } from '../stripe-event';
import type { QuarantineStore } from './quarantine.port';

export type QuarantineReleaseReport = {
  accountId: string;
  communityId: string;
  /** Newly written to the ledger. */
  appended: number;
  /** Already in the ledger (a retry, or a redelivery that found the account linked). */
  alreadyPresent: number;
};

/**
 * Appends the events held for a connected account to its (now known) community, then forgets them.
 * Safe to repeat: the append is idempotent by event id, and nothing is discarded unless appended.
 */
export async function releaseQuarantine(
  deps: { ledger: Ledger; quarantine: QuarantineStore },
  accountId: string,
  communityId: string,
): Promise<QuarantineReleaseReport> {
  const held = await deps.quarantine.take(accountId);
  const report: QuarantineReleaseReport = { accountId, communityId, appended: 0, alreadyPresent: 0 };
  if (held.length === 0) return report;
  const results = await deps.ledger.append(held.map((e) => stripeEventToLedgerFact(e, communityId)));
  for (const r of results) {
    if (r.appended) report.appended++;
    else report.alreadyPresent++;
  }
  await deps.quarantine.discard(
    accountId,
    held.map((e) => e.id),
  );
  return report;
}

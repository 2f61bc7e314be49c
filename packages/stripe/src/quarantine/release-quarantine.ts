import type { Ledger } from '@gatehouse/ledger';
import { stripeEventToLedgerFact } from '../stripe-event';
import type { CommunityDirectory } from '../webhook/community-directory.port';
import { PLATFORM_HOLD, type QuarantineStore } from './quarantine.port';

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

/**
 * Releases what is held for accounts that have a community by now: an event held while its account
 * was being linked, after the link's own release had looked, or one whose release failed or was cut
 * short. `accounts` are the linked ones to look for; the platform's events are looked for too.
 */
export async function releaseLinkedQuarantine(deps: {
  ledger: Ledger;
  quarantine: QuarantineStore;
  directory: CommunityDirectory;
  accounts: readonly string[];
}): Promise<QuarantineReleaseReport[]> {
  const reports: QuarantineReleaseReport[] = [];
  for (const accountId of await deps.quarantine.heldAmong([...deps.accounts, PLATFORM_HOLD])) {
    const communityId =
      accountId === PLATFORM_HOLD
        ? await deps.directory.platformCommunity()
        : await deps.directory.communityForStripeAccount(accountId);
    if (communityId) reports.push(await releaseQuarantine(deps, accountId, communityId));
  }
  return reports;
}

import { lapsedGrants, type AccessChange, type AccessGrant, type EpochMs } from '@gatehouse/domain';

/** A row of a member's access history: ordinals count from 0 per member. */
export function accessChangeId(communityId: string, memberId: string, ordinal: number): string {
  return `${communityId}/${memberId}/c${ordinal}`;
}

/**
 * Access that ran out by time alone between `since` (the member's last fact) and `until`, each change
 * with the instant Gatehouse knew it: when the access ended, or later if the facts that granted it
 * were recorded after that (a late webhook; `grantsRecordedAt` is the latest such time, asked only
 * when something lapsed). The projection stores these at the member's next fact and `accessHistory`
 * shows them before one arrives: both use this, so the rows are the same.
 */
export function lapsesBetween(
  grants: AccessGrant[],
  since: EpochMs,
  until: EpochMs,
  grantsRecordedAt: () => EpochMs,
): (AccessChange & { recordedAt: EpochMs })[] {
  const lapsed = lapsedGrants(grants, since, until);
  if (lapsed.length === 0) return [];
  const known = grantsRecordedAt();
  return lapsed.map((c) => ({ ...c, recordedAt: Math.max(c.effectiveAt, known) }));
}

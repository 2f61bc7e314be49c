import type { ResourceRef } from '../catalog/catalog.events';
import type { EpochMs } from '../time';
import {
  compareText,
  endOrInfinity,
  resourceKey,
  sameResource,
  type AccessGrant,
  type AccessSource,
} from './access-grant';
import { decideAccess } from './decide-access';

export type AccessChangeKind = 'GRANTED' | 'EXTENDED' | 'SHORTENED' | 'SUSPENDED' | 'RESTORED' | 'REVOKED';

export type AccessChange = {
  resource: ResourceRef;
  change: AccessChangeKind;
  source: AccessSource;
  effectiveAt: EpochMs;
  /** Access end after the change; null when it has no end or access is gone. */
  validUntil: EpochMs | null;
  causedBy: string;
};

function lastEnded(grants: AccessGrant[], resource: ResourceRef, at: EpochMs): AccessGrant | undefined {
  return grants
    .filter((g) => sameResource(g.resource, resource) && g.validUntil !== null && g.validUntil <= at)
    .sort((a, b) => endOrInfinity(b.validUntil) - endOrInfinity(a.validUntil))[0];
}

const longest = (grants: AccessGrant[]): AccessGrant =>
  [...grants].sort((a, b) => endOrInfinity(b.validUntil) - endOrInfinity(a.validUntil))[0];

/**
 * What a new fact changed, per resource, as seen at `effectiveAt`: the rows of the access history.
 * Losing access is SUSPENDED when the ending grant is a suspension (past due, unpaid, paused,
 * disputed) and REVOKED otherwise; regaining it after a suspension is RESTORED, and a suspension
 * that can no longer be lifted is REVOKED when that becomes known. Each row's cause is
 * the grant's; a loss that leaves no ended grant behind (a purchase refunded the second it was
 * made, a group taken out of a tier) is put down to `trigger`, the fact being applied, when given.
 */
export function diffGrants(
  before: AccessGrant[],
  after: AccessGrant[],
  effectiveAt: EpochMs,
  trigger?: string,
): AccessChange[] {
  const resources = new Map<string, ResourceRef>();
  for (const g of [...before, ...after]) resources.set(resourceKey(g.resource), g.resource);
  const changes: AccessChange[] = [];
  for (const key of [...resources.keys()].sort(compareText)) {
    const resource = resources.get(key) as ResourceRef;
    const was = decideAccess(before, resource, effectiveAt);
    const is = decideAccess(after, resource, effectiveAt);
    const row = (change: AccessChangeKind, grant: AccessGrant): AccessChange => ({
      resource,
      change,
      source: grant.source,
      effectiveAt,
      validUntil: is.validUntil,
      causedBy: grant.causedBy,
    });
    if (!was.allowed && is.allowed) {
      changes.push(
        row(lastEnded(before, resource, effectiveAt)?.suspended ? 'RESTORED' : 'GRANTED', longest(is.grants)),
      );
    } else if (was.allowed && !is.allowed) {
      const ending = lastEnded(after, resource, effectiveAt);
      const lost = ending ?? { ...longest(was.grants), ...(trigger !== undefined && { causedBy: trigger }) };
      changes.push(row(ending?.suspended ? 'SUSPENDED' : 'REVOKED', lost));
    } else if (!was.allowed && !is.allowed) {
      // A suspension that became final (a dispute lost, a past-due subscription canceled) revokes.
      const ended = lastEnded(after, resource, effectiveAt);
      if (lastEnded(before, resource, effectiveAt)?.suspended && ended && !ended.suspended)
        changes.push(row('REVOKED', ended));
    } else if (was.allowed && is.allowed) {
      const from = endOrInfinity(was.validUntil);
      const to = endOrInfinity(is.validUntil);
      if (to > from) changes.push(row('EXTENDED', longest(is.grants)));
      if (to < from) changes.push(row('SHORTENED', longest(is.grants)));
    }
  }
  return changes;
}

/**
 * Access that ran out by time alone between two facts: allowed at `since` (when access was last
 * compared), gone by `until` with no fact in between (a past-due grace running out, a period
 * ending with its cancellation already known). One SUSPENDED or REVOKED row per resource, effective
 * when access ended, caused by the grant that ended.
 */
export function lapsedGrants(grants: AccessGrant[], since: EpochMs, until: EpochMs): AccessChange[] {
  if (until <= since) return [];
  const resources = new Map<string, ResourceRef>();
  for (const g of grants) resources.set(resourceKey(g.resource), g.resource);
  const changes: AccessChange[] = [];
  for (const key of [...resources.keys()].sort(compareText)) {
    const resource = resources.get(key) as ResourceRef;
    const was = decideAccess(grants, resource, since);
    if (!was.allowed || was.validUntil === null || was.validUntil > until) continue;
    const endedAt = was.validUntil;
    const ending = lastEnded(grants, resource, endedAt) ?? longest(was.grants);
    changes.push({
      resource,
      change: ending.suspended ? 'SUSPENDED' : 'REVOKED',
      source: ending.source,
      effectiveAt: endedAt,
      validUntil: null,
      causedBy: ending.causedBy,
    });
  }
  return changes;
}

import type { ResourceRef } from '../catalog/catalog.events';
import { toIso, type EpochMs } from '../time';
import {
  describeResource,
  endOrInfinity,
  sameResource,
  type AccessGrant,
  type AccessSource,
} from './access-grant';

export type AccessDecision = {
  allowed: boolean;
  /** A sentence naming the source and the end, or what is missing. */
  reason: string;
  /** End of the unbroken access that covers `at` (chained grants included); null = no end or no access. */
  validUntil: EpochMs | null;
  /** The grants that apply at `at`. */
  grants: AccessGrant[];
};

const SOURCE_PHRASE: Record<AccessSource, string> = {
  SUBSCRIPTION: 'a subscription',
  ONE_TIME: 'a one-time purchase',
  INSTALLMENT_PLAN: 'an installment plan',
  COMPLIMENTARY: 'complimentary access',
  FREE_MEMBERSHIP: 'a free membership',
  MIGRATION: 'a migration',
};

export function sourcePhrase(source: AccessSource): string {
  return SOURCE_PHRASE[source];
}

export function covers(grant: AccessGrant, at: EpochMs): boolean {
  return grant.validFrom <= at && at < endOrInfinity(grant.validUntil);
}

/** Follows overlapping or touching grants from `at` to where access first stops. */
function coverageEnd(grants: AccessGrant[], at: EpochMs): number {
  let end = at;
  for (let extended = true; extended && end !== Infinity;) {
    extended = false;
    for (const g of grants) {
      if (g.validFrom <= end && endOrInfinity(g.validUntil) > end) {
        end = endOrInfinity(g.validUntil);
        extended = true;
      }
    }
  }
  return end;
}

/** May the member use `resource` at `at`? An interval lookup over the member's grants. */
export function decideAccess(grants: AccessGrant[], resource: ResourceRef, at: EpochMs): AccessDecision {
  const forResource = grants.filter((g) => sameResource(g.resource, resource));
  const applicable = forResource.filter((g) => covers(g, at));
  const what = describeResource(resource);
  if (applicable.length > 0) {
    const end = coverageEnd(forResource, at);
    const best = [...applicable].sort((a, b) => endOrInfinity(b.validUntil) - endOrInfinity(a.validUntil))[0];
    const until = end === Infinity ? 'with no end date' : `until ${toIso(end)}`;
    return {
      allowed: true,
      reason: `Allowed: ${sourcePhrase(best.source)} gives access to ${what} ${until}.`,
      validUntil: end === Infinity ? null : end,
      grants: applicable,
    };
  }
  const ended = forResource
    .filter((g) => g.validUntil !== null && g.validUntil <= at)
    .sort((a, b) => endOrInfinity(b.validUntil) - endOrInfinity(a.validUntil))[0];
  const upcoming = forResource.filter((g) => g.validFrom > at).sort((a, b) => a.validFrom - b.validFrom)[0];
  let reason = `Denied: no subscription, purchase, installment plan, complimentary or free access covers ${what}.`;
  if (upcoming) {
    reason = `Denied: ${sourcePhrase(upcoming.source)} gives access to ${what} only from ${toIso(upcoming.validFrom)}.`;
  } else if (ended) {
    const how = ended.suspended ? 'was suspended' : 'ended';
    reason = `Denied: access to ${what} through ${sourcePhrase(ended.source)} ${how} at ${toIso(ended.validUntil ?? at)}.`;
  }
  return { allowed: false, reason, validUntil: null, grants: [] };
}

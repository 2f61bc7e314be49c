import type { ResourceRef } from '../catalog/catalog.events';
import type { EpochMs } from '../time';

export type AccessSource =
  'SUBSCRIPTION' | 'ONE_TIME' | 'INSTALLMENT_PLAN' | 'COMPLIMENTARY' | 'FREE_MEMBERSHIP' | 'MIGRATION';

/** One interval of access to one resource: `[validFrom, validUntil)`, `validUntil: null` = no end. */
export type AccessGrant = {
  resource: ResourceRef;
  source: AccessSource;
  validFrom: EpochMs;
  validUntil: EpochMs | null;
  /** Ledger event id behind the grant (a Stripe `evt_...` or an admin fact's id). */
  causedBy: string;
  /** The end is a suspension that a payment or a won dispute may lift (past due, unpaid, paused, disputed). */
  suspended: boolean;
};

export function resourceKey(resource: ResourceRef): string {
  return resource.kind === 'COMMUNITY' ? 'COMMUNITY' : `${resource.kind}:${resource.id ?? ''}`;
}

export function sameResource(a: ResourceRef, b: ResourceRef): boolean {
  return resourceKey(a) === resourceKey(b);
}

export function describeResource(resource: ResourceRef): string {
  return resource.kind === 'COMMUNITY'
    ? 'the community'
    : `${resource.kind.toLowerCase()} ${resource.id ?? ''}`;
}

/** `null` (no end) sorts after every instant. */
export function endOrInfinity(until: EpochMs | null): number {
  return until === null ? Infinity : until;
}

/** Code-unit order: the same on every machine, unlike `localeCompare`. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

import type { Catalog } from '@gatehouse/domain';
import type { MemberMigration, MembershipRecord } from '@gatehouse/projections';
import type { MembershipStatus } from '../graphql/enums';
import type { Membership } from '../graphql/types';
import { toPrice, toTier } from './catalog.mapper';

/** Membership as GraphQL shows it; a pending price migration is its scheduled change when no schedule says otherwise. */
export function toMembership(
  communityId: string,
  catalog: Catalog | null,
  r: MembershipRecord,
  migrations: readonly MemberMigration[],
  at: number,
): Membership {
  const price = (id?: string) =>
    id && catalog?.prices[id] ? toPrice(communityId, catalog.prices[id]) : null;
  let scheduledChange: Membership['scheduledChange'] = null;
  const fromSchedule = price(r.scheduledChange?.toPriceId);
  if (r.scheduledChange && fromSchedule) {
    scheduledChange = { toPrice: fromSchedule, effectiveAt: new Date(r.scheduledChange.effectiveAt) };
  } else {
    const pending = migrations.find(
      (m) => m.subscriptionId === r.stripeSubscriptionId && m.effectiveAt.getTime() > at,
    );
    const to = price(pending?.toPriceId);
    if (pending && to) scheduledChange = { toPrice: to, effectiveAt: pending.effectiveAt };
  }
  return {
    communityId,
    memberId: r.memberId,
    status: r.status as MembershipStatus,
    tier: r.tierId && catalog?.tiers[r.tierId] ? toTier(communityId, catalog, r.tierId) : null,
    price: price(r.priceId),
    trialEndsAt: r.trialEndsAt !== undefined ? new Date(r.trialEndsAt) : null,
    currentPeriodEnd: r.currentPeriodEnd !== undefined ? new Date(r.currentPeriodEnd) : null,
    cancelAtPeriodEnd: r.cancelAtPeriodEnd,
    installmentsPaid: r.installmentsPaid ?? null,
    installmentsTotal: r.installmentsTotal ?? null,
    scheduledChange,
    stripeSubscriptionId: r.stripeSubscriptionId ?? null,
    paymentActionRequired: r.paymentActionRequired,
  };
}

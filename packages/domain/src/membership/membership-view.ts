import { priceByStripePriceId, productForStripe, type Catalog } from '../catalog/catalog.evolve';
import type { EpochMs } from '../time';
import type { SubscriptionStatus } from './membership.events';
import { installmentsPaid, type MemberState, type SubscriptionState } from './membership.evolve';
import { compareSnapshots, isTerminal } from './subscription-order';

export type MembershipStatus =
  'NONE' | 'INCOMPLETE' | 'TRIALING' | 'ACTIVE' | 'PAST_DUE' | 'PAUSED' | 'CANCELED' | 'EXPIRED';

const STATUS: Record<SubscriptionStatus, MembershipStatus> = {
  incomplete: 'INCOMPLETE',
  incomplete_expired: 'EXPIRED',
  trialing: 'TRIALING',
  active: 'ACTIVE',
  past_due: 'PAST_DUE',
  // The contract has no UNPAID: retries are over but invoices stay open, which members see as past due.
  unpaid: 'PAST_DUE',
  paused: 'PAUSED',
  canceled: 'CANCELED',
};

export type MembershipView = {
  status: MembershipStatus;
  tierId?: string;
  /** Our price id when the Stripe price is in the catalog. */
  priceId?: string;
  stripePriceId?: string;
  stripeSubscriptionId?: string;
  trialEndsAt?: EpochMs;
  currentPeriodEnd?: EpochMs;
  cancelAtPeriodEnd: boolean;
  installmentsPaid?: number;
  installmentsTotal?: number;
  scheduledChange?: { toStripePriceId: string; toPriceId?: string; effectiveAt: EpochMs };
};

/** The subscription a member's membership is about: a live one before an ended one, then the newest. */
function currentSubscription(state: MemberState): SubscriptionState | undefined {
  return Object.values(state.subscriptions).sort(
    (a, b) =>
      Number(isTerminal(b.latest.status)) - Number(isTerminal(a.latest.status)) ||
      compareSnapshots(a.latest, b.latest),
  )[Object.keys(state.subscriptions).length - 1];
}

export function membershipView(state: MemberState, catalog: Catalog, at: EpochMs): MembershipView {
  const sub = currentSubscription(state);
  if (!sub) return { status: 'NONE', cancelAtPeriodEnd: false };
  const s = sub.latest;
  const product = productForStripe(catalog, s.priceId, s.productId);
  const price = priceByStripePriceId(catalog, s.priceId);
  const plan = price?.frequency === 'INSTALLMENTS';
  const next = Object.values(state.schedules)
    .filter((sc) => sc.subscriptionId === s.subscriptionId && !sc.ended)
    .flatMap((sc) => sc.phases)
    .filter((p) => p.start > at && p.priceId !== s.priceId)
    .sort((a, b) => a.start - b.start)[0];
  const toPrice = next && priceByStripePriceId(catalog, next.priceId);
  return {
    status: STATUS[s.status],
    ...(product?.kind === 'TIER' && { tierId: product.id }),
    ...(price && { priceId: price.priceId }),
    stripePriceId: s.priceId,
    stripeSubscriptionId: s.subscriptionId,
    ...(s.trialEnd !== undefined && { trialEndsAt: s.trialEnd }),
    currentPeriodEnd: s.currentPeriodEnd,
    cancelAtPeriodEnd: s.cancelAtPeriodEnd,
    ...(plan && {
      installmentsPaid: installmentsPaid(state, s.subscriptionId),
      installmentsTotal: price.installments,
    }),
    ...(next && {
      scheduledChange: {
        toStripePriceId: next.priceId,
        ...(toPrice && { toPriceId: toPrice.priceId }),
        effectiveAt: next.start,
      },
    }),
  };
}

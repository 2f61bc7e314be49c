import { priceOrThrow } from '../catalog/catalog.decide';
import { priceByStripePriceId, productForStripe, type Catalog, type Price } from '../catalog/catalog.evolve';
import { stripeRecurringFor } from '../catalog/frequency';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import type { SubscriptionSnapshot, SubscriptionStatus } from '../membership/membership.events';
import {
  DEFAULT_TIER_CHANGE_POLICY,
  previewProration,
  tierChangeTiming,
  type ChangeTiming,
  type PlanSide,
  type ProrationPreview,
  type TierChangePolicy,
} from '../proration/proration';
import { addInterval, SECOND_MS, type EpochMs } from '../time';

export type TierChangePlan = {
  subscription: SubscriptionSnapshot;
  /** Absent when the current Stripe price is not in the catalog. */
  fromPrice?: Price;
  toPrice: Price;
  timing: ChangeTiming;
  /** IMMEDIATE: the proration date (whole seconds); PERIOD_END: when the new price starts. */
  prorationDate: EpochMs;
  preview: ProrationPreview;
};

// A change of price is made on a subscription that still bills.
const CHANGEABLE: ReadonlySet<SubscriptionStatus> = new Set(['active', 'trialing', 'past_due']);

/** Prices a subscription can move to: recurring ones (an installment plan ends by itself). */
export function isSubscriptionPrice(p: Price): boolean {
  return p.frequency !== 'ONE_TIME' && p.frequency !== 'INSTALLMENTS';
}

export function planSide(catalog: Catalog, price: Price, quantity: number): PlanSide {
  const recurring = stripeRecurringFor(price.frequency) ?? { interval: 'month', interval_count: 1 };
  const p = price.product;
  const name =
    (p.kind === 'TIER'
      ? catalog.tiers[p.id]?.name
      : p.kind === 'GROUP'
        ? catalog.groups[p.id]?.name
        : catalog.events[p.id]?.name) ?? price.priceId;
  return {
    amount: price.amount,
    quantity,
    interval: recurring.interval,
    intervalCount: recurring.interval_count,
    name,
  };
}

/** The rank of the tier a subscription grants; a group or event subscription ranks below every tier. */
export function rankOf(catalog: Catalog, stripePriceId: string, stripeProductId?: string): number {
  const product = productForStripe(catalog, stripePriceId, stripeProductId);
  return product?.kind === 'TIER' ? (catalog.tiers[product.id]?.rank ?? -Infinity) : -Infinity;
}

/**
 * What moving a subscription to `toPriceId` at `at` means: the timing (the community's policy unless
 * given) and, for an immediate change, Stripe's proration with the same proration date changeTier sends.
 */
export function planTierChange(input: {
  subscription: SubscriptionSnapshot | undefined;
  catalog: Catalog;
  toPriceId: string;
  at: EpochMs;
  timing?: ChangeTiming;
  policy?: TierChangePolicy;
}): TierChangePlan {
  const { subscription: sub, catalog } = input;
  const toPrice = priceOrThrow(catalog, input.toPriceId);
  if (toPrice.product.kind !== 'TIER') {
    throw new BadUserInputError('A tier change goes to a tier price', {
      toPriceId: 'is not a price of a tier',
    });
  }
  if (!isSubscriptionPrice(toPrice)) {
    throw new BadUserInputError('A tier change goes to a recurring price', {
      toPriceId: 'is not a recurring price',
    });
  }
  if (!toPrice.active) throw new ConflictError(`Price ${toPrice.priceId} is superseded and no longer sold`);
  if (!sub || !CHANGEABLE.has(sub.status))
    throw new ConflictError('The member has no live subscription to change');
  if (sub.priceId === toPrice.stripePriceId) throw new ConflictError('The member is already on this price');
  const fromPrice = priceByStripePriceId(catalog, sub.priceId);
  if (!fromPrice)
    throw new NotFoundError(`The member's current Stripe price ${sub.priceId} is not in the catalog`);
  if (fromPrice.currency !== toPrice.currency) {
    throw new BadUserInputError('Stripe cannot change the currency of a subscription', {
      toPriceId: `is in ${toPrice.currency}, the subscription in ${fromPrice.currency}`,
    });
  }
  const toRank = catalog.tiers[toPrice.product.id]?.rank ?? -Infinity;
  const timing =
    input.timing ??
    tierChangeTiming(
      rankOf(catalog, sub.priceId, sub.productId),
      toRank,
      input.policy ?? DEFAULT_TIER_CHANGE_POLICY,
    );
  const from = planSide(catalog, fromPrice, sub.quantity);
  const to = planSide(catalog, toPrice, sub.quantity);

  if (timing === 'PERIOD_END') {
    const start = sub.currentPeriodEnd;
    return {
      subscription: sub,
      fromPrice,
      toPrice,
      timing,
      prorationDate: start,
      preview: {
        lines: [],
        credit: 0,
        charge: 0,
        net: 0,
        dueNow: 0,
        currency: toPrice.currency,
        intervalChange: false,
        nextPeriod: { start, end: addInterval(start, to.interval, to.intervalCount) },
      },
    };
  }
  // Stripe counts whole seconds: the date sent as proration_date is the one previewed.
  const prorationDate = Math.floor(input.at / SECOND_MS) * SECOND_MS;
  if (prorationDate < sub.currentPeriodStart || prorationDate > sub.currentPeriodEnd) {
    throw new BadUserInputError('The change must fall within the current billing period', {
      at: 'is outside the current billing period',
    });
  }
  const preview = previewProration({
    from,
    to,
    currency: toPrice.currency,
    periodStart: sub.currentPeriodStart,
    periodEnd: sub.currentPeriodEnd,
    prorationDate,
    behavior: 'always_invoice',
  });
  return { subscription: sub, fromPrice, toPrice, timing, prorationDate, preview };
}

import type { ProductRef } from '../catalog/catalog.events';
import { productForStripe, type Catalog, type Price } from '../catalog/catalog.evolve';
import { communityOrThrow, priceOrThrow } from '../catalog/catalog.decide';
import { stripeRecurringFor } from '../catalog/frequency';
import { BadUserInputError, ConflictError } from '../errors';
import type { SubscriptionStatus } from '../membership/membership.events';
import type { MemberState } from '../membership/membership.evolve';
import { addInterval, type EpochMs } from '../time';
import type { CheckoutMode } from './commerce.events';
import { promoCodeProblem, type PromoCodeState } from './promo-code.decide';

/** What checkout needs to know about a member: live subscriptions and past trials, by product. */
export type MemberCommerceView = {
  subscribedProducts: ProductRef[];
  trialedProducts: ProductRef[];
};

export const productKey = (p: ProductRef): string => `${p.kind}:${p.id}`;

// Statuses in which the member still holds the subscription (a new checkout would make a second one).
const HELD: ReadonlySet<SubscriptionStatus> = new Set(['trialing', 'active', 'past_due', 'unpaid', 'paused']);

/** The member's live subscriptions and the products they ever had a trial of, from the Stripe facts. */
export function memberCommerceView(state: MemberState, catalog: Catalog): MemberCommerceView {
  const subscribed = new Map<string, ProductRef>();
  const trialed = new Map<string, ProductRef>();
  for (const { latest, firstSeen } of Object.values(state.subscriptions)) {
    const product = productForStripe(catalog, latest.priceId, latest.productId);
    if (!product) continue;
    if (HELD.has(latest.status)) subscribed.set(productKey(product), product);
    // Stripe keeps `trial_end` after the trial; a snapshot seen while trialing also proves one.
    const hadTrial =
      latest.trialEnd !== undefined || Object.keys(firstSeen).some((k) => k.startsWith('trialing@'));
    if (hadTrial) trialed.set(productKey(product), product);
  }
  return { subscribedProducts: [...subscribed.values()], trialedProducts: [...trialed.values()] };
}

export function mergeCommerceViews(...views: MemberCommerceView[]): MemberCommerceView {
  const merge = (lists: ProductRef[][]) => [...new Map(lists.flat().map((p) => [productKey(p), p])).values()];
  return {
    subscribedProducts: merge(views.map((v) => v.subscribedProducts)),
    trialedProducts: merge(views.map((v) => v.trialedProducts)),
  };
}

/** One trial per member per product: the price's trial unless the member already had one of it. */
export function trialDaysFor(
  price: Price,
  member: Pick<MemberCommerceView, 'trialedProducts'>,
): number | undefined {
  if (price.frequency === 'ONE_TIME' || !price.trialDays) return undefined;
  const key = productKey(price.product);
  return member.trialedProducts.some((p) => productKey(p) === key) ? undefined : price.trialDays;
}

export function checkoutModeFor(price: Pick<Price, 'frequency'>): CheckoutMode {
  return price.frequency === 'ONE_TIME' ? 'payment' : 'subscription';
}

export type CheckoutPlan = {
  price: Price;
  mode: CheckoutMode;
  trialDays?: number;
  installments?: number;
  promo?: PromoCodeState;
};

/**
 * Decides what Checkout session to open. Refuses a second subscription to a product the member
 * already holds (a tier is changed with `changeTier`, not bought again) and a promo code that cannot
 * discount this price.
 */
export function decideCheckout(
  input: { priceId: string; promo?: PromoCodeState; member: MemberCommerceView },
  catalog: Catalog,
  now: EpochMs,
): CheckoutPlan {
  communityOrThrow(catalog);
  const price = priceOrThrow(catalog, input.priceId);
  if (!price.active) {
    throw new ConflictError(
      `Price ${price.priceId} is superseded by ${price.supersededBy?.priceId ?? 'another price'}`,
    );
  }
  const key = productKey(price.product);
  if (input.member.subscribedProducts.some((p) => productKey(p) === key)) {
    const what = price.product.kind === 'TIER' ? 'tier' : price.product.kind.toLowerCase();
    throw new ConflictError(
      price.product.kind === 'TIER'
        ? `The member already holds an active subscription to this ${what}: use changeTier to switch prices`
        : `The member already holds an active subscription to this ${what}`,
    );
  }
  if (input.promo) {
    const problem = promoCodeProblem(input.promo, price, now);
    if (problem)
      throw new BadUserInputError(`Promo code ${input.promo.code} ${problem}`, { promoCode: problem });
  }
  const trialDays = trialDaysFor(price, input.member);
  return {
    price,
    mode: checkoutModeFor(price),
    ...(trialDays !== undefined && { trialDays }),
    ...(price.frequency === 'INSTALLMENTS' && { installments: price.installments }),
    ...(input.promo && { promo: input.promo }),
  };
}

/**
 * When an installment plan ends: N billing intervals after its first paid period began. Checkout
 * cannot create a schedule, so the subscription gets `cancel_at` at this instant once the session
 * completes; the Nth invoice is the last one.
 */
export function installmentPlanEndsAt(firstPaidPeriodStart: EpochMs, installments: number): EpochMs {
  const recurring = stripeRecurringFor('INSTALLMENTS');
  if (!recurring) throw new Error('installments are recurring');
  return addInterval(firstPaidPeriodStart, recurring.interval, recurring.interval_count * installments);
}

import type { CatalogEvent } from '../catalog/catalog.events';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { emptyMemberState, evolveMembership } from '../membership/membership.evolve';
import { buildCatalog, communityId, observed, T0 } from '../testing/builders';
import {
  checkoutModeFor,
  decideCheckout,
  installmentPlanEndsAt,
  memberCommerceView,
  trialDaysFor,
  type MemberCommerceView,
} from './checkout.decide';

const extra: CatalogEvent[] = [
  ...(['WEEKLY', 'QUARTERLY', 'ANNUAL'] as const).map((frequency): CatalogEvent => ({
    type: 'PriceAdded',
    data: {
      communityId,
      priceId: `gold-${frequency}`,
      stripePriceId: `price_gold_${frequency}`,
      stripeProductId: 'prod_gold',
      product: { kind: 'TIER', id: 'gold' },
      amount: 1000,
      currency: 'usd',
      frequency,
      trialDays: 14,
    },
  })),
  {
    type: 'TierDefined',
    data: {
      communityId,
      tierId: 'silver',
      name: 'Silver',
      rank: 1,
      groupIds: [],
      stripeProductId: 'prod_silver',
    },
  },
  {
    type: 'PriceAdded',
    data: {
      communityId,
      priceId: 'silver-monthly',
      stripePriceId: 'price_silver',
      stripeProductId: 'prod_silver',
      product: { kind: 'TIER', id: 'silver' },
      amount: 500,
      currency: 'usd',
      frequency: 'MONTHLY',
      trialDays: 7,
    },
  },
];
const catalog = buildCatalog(extra);
const nobody: MemberCommerceView = { subscribedProducts: [], trialedProducts: [] };

describe('checkout mode per frequency', () => {
  it.each([
    ['ONE_TIME', 'payment'],
    ['INSTALLMENTS', 'subscription'],
    ['WEEKLY', 'subscription'],
    ['MONTHLY', 'subscription'],
    ['QUARTERLY', 'subscription'],
    ['ANNUAL', 'subscription'],
  ] as const)('%s opens Checkout in %s mode', (frequency, mode) =>
    expect(checkoutModeFor({ frequency })).toBe(mode),
  );

  it('carries the installment count of a plan', () =>
    expect(decideCheckout({ priceId: 'gold-3x', member: nobody }, catalog, T0)).toMatchObject({
      mode: 'subscription',
      installments: 3,
    }));
});

describe('trial eligibility: one trial per member per product', () => {
  const weekly = catalog.prices['gold-WEEKLY'];
  it('offers the price trial to a member who never had one of the product', () =>
    expect(trialDaysFor(weekly, nobody)).toBe(14));
  it('refuses a second trial of the same product, whatever the price', () =>
    expect(trialDaysFor(weekly, { trialedProducts: [{ kind: 'TIER', id: 'gold' }] })).toBeUndefined());
  it('still offers the trial of another product', () =>
    expect(
      trialDaysFor(catalog.prices['silver-monthly'], { trialedProducts: [{ kind: 'TIER', id: 'gold' }] }),
    ).toBe(7));
  it('learns past trials from Stripe subscriptions, also ended ones', () => {
    const state = [
      observed({ status: 'trialing', trialEnd: T0 + 1, priceId: 'price_gold_WEEKLY' }),
      observed({ status: 'canceled', observedAt: T0 + 5, eventId: 'e2' }),
    ].reduce(evolveMembership, emptyMemberState());
    const view = memberCommerceView(state, catalog);
    expect(view.trialedProducts).toEqual([{ kind: 'TIER', id: 'gold' }]);
    expect(view.subscribedProducts).toEqual([]);
    expect(decideCheckout({ priceId: 'gold-ANNUAL', member: view }, catalog, T0).trialDays).toBeUndefined();
  });
});

describe('decideCheckout', () => {
  it('refuses a member who already holds an active subscription to the tier, pointing to changeTier', () => {
    const view = memberCommerceView([observed()].reduce(evolveMembership, emptyMemberState()), catalog);
    expect(() => decideCheckout({ priceId: 'gold-ANNUAL', member: view }, catalog, T0)).toThrow(
      ConflictError,
    );
    expect(() => decideCheckout({ priceId: 'gold-ANNUAL', member: view }, catalog, T0)).toThrow(/changeTier/);
  });
  it('lets a subscriber of one tier buy another product', () => {
    const view = memberCommerceView([observed()].reduce(evolveMembership, emptyMemberState()), catalog);
    expect(decideCheckout({ priceId: 'g1-once', member: view }, catalog, T0).mode).toBe('payment');
  });
  it('refuses a superseded price and an unknown one', () => {
    const superseded = buildCatalog([
      ...extra,
      {
        type: 'PriceSuperseded',
        data: {
          communityId,
          priceId: 'silver-monthly',
          byPriceId: 'gold-WEEKLY',
          existingSubscribers: 'GRANDFATHER',
        },
      },
    ]);
    expect(() => decideCheckout({ priceId: 'silver-monthly', member: nobody }, superseded, T0)).toThrow(
      ConflictError,
    );
    expect(() => decideCheckout({ priceId: 'nope', member: nobody }, catalog, T0)).toThrow(NotFoundError);
  });
  it('refuses a promo code that does not apply', () => {
    const promo = {
      communityId,
      promoCodeId: 'pc',
      code: 'G1',
      codeKey: 'G1',
      stripeCouponId: 'co',
      stripePromotionCodeId: 'promo',
      percentOff: 10,
      duration: 'ONCE' as const,
      firstTimeOnly: false,
      createdAt: T0,
      timesRedeemed: 0,
      appliesTo: [{ kind: 'GROUP' as const, id: 'g1' }],
    };
    expect(() => decideCheckout({ priceId: 'gold-monthly', member: nobody, promo }, catalog, T0)).toThrow(
      BadUserInputError,
    );
    expect(decideCheckout({ priceId: 'g1-once', member: nobody, promo }, catalog, T0).promo).toBe(promo);
  });
});

describe('installment plans', () => {
  it('end N months after the first paid period began (month ends clamp)', () => {
    expect(installmentPlanEndsAt(Date.UTC(2026, 0, 31), 3)).toBe(Date.UTC(2026, 3, 30));
    expect(installmentPlanEndsAt(Date.UTC(2026, 0, 15, 8), 12)).toBe(Date.UTC(2027, 0, 15, 8));
  });
});

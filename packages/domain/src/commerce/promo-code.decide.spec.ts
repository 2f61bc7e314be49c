import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { buildCatalog, T0 } from '../testing/builders';
import { DAY_MS } from '../time';
import {
  decidePromoCode,
  promoCodeProblem,
  stripeCouponParams,
  stripePromotionCodeParams,
  type PromoCodeDraft,
  type PromoCodeState,
} from './promo-code.decide';

const catalog = buildCatalog();
const ctx = { catalog, existingCodeKeys: new Set<string>(['WELCOME']), now: T0 };
const draft = (o: Partial<PromoCodeDraft> = {}): PromoCodeDraft => ({
  code: 'SPRING-25',
  percentOff: 25,
  duration: 'ONCE',
  ...o,
});

function fieldsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    return Object.keys((e as BadUserInputError).fields ?? {}).sort();
  }
  return [];
}

describe('promo code validation mirrors Stripe', () => {
  it.each<[string, Partial<PromoCodeDraft>, string[]]>([
    ['percent must be more than 0', { percentOff: 0 }, ['percentOff']],
    ['percent may not exceed 100', { percentOff: 100.5 }, ['percentOff']],
    ['percent takes at most two decimals', { percentOff: 12.345 }, ['percentOff']],
    ['percent and amount are exclusive', { percentOff: 10, amountOff: 500, currency: 'eur' }, ['amountOff']],
    ['one of percent or amount is required', { percentOff: undefined }, ['percentOff']],
    ['amount requires a currency', { percentOff: undefined, amountOff: 500 }, ['currency']],
    [
      'amount is whole minor units',
      { percentOff: undefined, amountOff: 5.5, currency: 'eur' },
      ['amountOff'],
    ],
    ['currency only goes with an amount', { currency: 'eur' }, ['currency']],
    ['currency is 3 letters', { percentOff: undefined, amountOff: 500, currency: 'euro' }, ['currency']],
    ['repeating needs months', { duration: 'REPEATING' }, ['durationInMonths']],
    ['months only with repeating', { duration: 'FOREVER', durationInMonths: 3 }, ['durationInMonths']],
    ['repeating months are bounded', { duration: 'REPEATING', durationInMonths: 37 }, ['durationInMonths']],
    ['max redemptions is at least 1', { maxRedemptions: 0 }, ['maxRedemptions']],
    ['expiry lies in the future', { expiresAt: T0 }, ['expiresAt']],
    ['codes use letters, digits and dashes only', { code: 'SPRING_25' }, ['code']],
    ['codes are not blank', { code: '  ' }, ['code']],
    [
      'every problem is reported at once',
      { code: 'a b', percentOff: 0, maxRedemptions: 0 },
      ['code', 'maxRedemptions', 'percentOff'],
    ],
  ])('refuses when %s', (_rule, overrides, fields) => {
    expect(() => decidePromoCode(draft(overrides), ctx)).toThrow(BadUserInputError);
    expect(fieldsOf(() => decidePromoCode(draft(overrides), ctx))).toEqual(fields);
  });

  it.each<[string, Partial<PromoCodeDraft>]>([
    ['100 percent', { percentOff: 100 }],
    ['0.01 percent', { percentOff: 0.01 }],
    ['an amount with its currency', { percentOff: undefined, amountOff: 500, currency: 'EUR' }],
    ['3 months repeating', { duration: 'REPEATING', durationInMonths: 3 }],
    ['forever with an expiry and a cap', { duration: 'FOREVER', expiresAt: T0 + DAY_MS, maxRedemptions: 5 }],
  ])('accepts %s', (_what, overrides) => {
    expect(() => decidePromoCode(draft(overrides), ctx)).not.toThrow();
  });

  it('refuses a code that exists in the community in another case', () => {
    expect(() => decidePromoCode(draft({ code: 'welcome' }), ctx)).toThrow(ConflictError);
  });

  it('keeps the code as typed and identifies it case-insensitively; lower-cases the currency', () => {
    const spec = decidePromoCode(
      draft({ code: 'Spring-25', percentOff: undefined, amountOff: 500, currency: 'EUR' }),
      ctx,
    );
    expect(spec).toMatchObject({
      code: 'Spring-25',
      codeKey: 'SPRING-25',
      amountOff: 500,
      currency: 'eur',
      firstTimeOnly: false,
    });
  });

  it('restricts to the Stripe products of the products named', () => {
    const spec = decidePromoCode(
      draft({
        appliesTo: [
          { kind: 'TIER', id: 'gold' },
          { kind: 'GROUP', id: 'g1' },
          { kind: 'TIER', id: 'gold' },
        ],
      }),
      ctx,
    );
    expect(spec.appliesTo).toEqual([
      { kind: 'TIER', id: 'gold' },
      { kind: 'GROUP', id: 'g1' },
    ]);
    expect(spec.stripeProductIds).toEqual(['prod_gold', 'prod_g1']);
  });

  it('refuses a product that does not exist', () => {
    expect(() => decidePromoCode(draft({ appliesTo: [{ kind: 'TIER', id: 'nope' }] }), ctx)).toThrow(
      NotFoundError,
    );
  });

  it('maps to Stripe coupon and promotion code parameters in seconds', () => {
    const expiresAt = T0 + 10 * DAY_MS + 999;
    const spec = decidePromoCode(
      draft({
        duration: 'REPEATING',
        durationInMonths: 3,
        maxRedemptions: 9,
        expiresAt,
        firstTimeOnly: true,
        appliesTo: [{ kind: 'TIER', id: 'gold' }],
      }),
      ctx,
    );
    expect(stripeCouponParams(spec, { k: 'v' })).toEqual({
      percent_off: 25,
      duration: 'repeating',
      duration_in_months: 3,
      max_redemptions: 9,
      redeem_by: Math.floor(expiresAt / 1000),
      applies_to: { products: ['prod_gold'] },
      name: 'SPRING-25',
      metadata: { k: 'v' },
    });
    expect(stripePromotionCodeParams(spec, 'coupon_1', {})).toEqual({
      promotion: { type: 'coupon', coupon: 'coupon_1' },
      code: 'SPRING-25',
      expires_at: Math.floor(expiresAt / 1000),
      max_redemptions: 9,
      restrictions: { first_time_transaction: true },
      metadata: {},
    });
  });
});

describe('a promo code at checkout', () => {
  const promo = (o: Partial<PromoCodeState> = {}): PromoCodeState => ({
    communityId: 'c1',
    promoCodeId: 'pc1',
    code: 'SPRING',
    codeKey: 'SPRING',
    stripeCouponId: 'co_1',
    stripePromotionCodeId: 'promo_1',
    percentOff: 10,
    duration: 'ONCE',
    firstTimeOnly: false,
    createdAt: T0,
    timesRedeemed: 0,
    ...o,
  });
  const gold = catalog.prices['gold-monthly'];

  it('discounts a price it applies to', () => expect(promoCodeProblem(promo(), gold, T0)).toBeNull());
  it('is refused once expired', () =>
    expect(promoCodeProblem(promo({ expiresAt: T0 }), gold, T0)).toBe('has expired'));
  it('is refused once redeemed its maximum', () =>
    expect(promoCodeProblem(promo({ maxRedemptions: 2, timesRedeemed: 2 }), gold, T0)).toBe(
      'has been used up',
    ));
  it('is refused for another product', () =>
    expect(promoCodeProblem(promo({ appliesTo: [{ kind: 'GROUP', id: 'g1' }] }), gold, T0)).toBe(
      'does not apply to this product',
    ));
  it('is refused for a price in another currency', () =>
    expect(
      promoCodeProblem(promo({ percentOff: undefined, amountOff: 100, currency: 'eur' }), gold, T0),
    ).toMatch(/EUR/));
});

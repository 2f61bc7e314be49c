import type { ProductRef } from '../catalog/catalog.events';
import type { Catalog, Price } from '../catalog/catalog.evolve';
import { ConflictError, FieldChecks, NotFoundError } from '../errors';
import type { EpochMs } from '../time';
import type { CouponDuration, PromoCodeCreated } from './commerce.events';

/** Stripe's alphabet for promotion codes; codes compare case-insensitively. */
export const PROMO_CODE_PATTERN = /^[A-Za-z0-9-]{1,200}$/;
export const MAX_COUPON_DURATION_MONTHS = 36;
export const COUPON_DURATIONS: readonly CouponDuration[] = ['ONCE', 'REPEATING', 'FOREVER'];

export type PromoCodeDraft = {
  code: string;
  percentOff?: number;
  amountOff?: number;
  currency?: string;
  duration: CouponDuration;
  durationInMonths?: number;
  maxRedemptions?: number;
  expiresAt?: EpochMs;
  appliesTo?: ProductRef[];
  firstTimeOnly?: boolean;
};

/** A validated promo code, ready for Stripe: what `PromoCodeCreated` records minus the Stripe ids. */
export type PromoCodeSpec = Omit<
  PromoCodeCreated['data'],
  'communityId' | 'promoCodeId' | 'stripeCouponId' | 'stripePromotionCodeId' | 'createdAt'
> & {
  /** The Stripe products of `appliesTo`, for `applies_to.products`. */
  stripeProductIds?: string[];
};

/** A promo code as the projection knows it. */
export type PromoCodeState = PromoCodeCreated['data'] & { timesRedeemed: number };

export function promoCodeKey(code: string): string {
  return code.trim().toUpperCase();
}

const isInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n);

/** The Stripe product a catalog product was sold under (known once a price was created for it). */
export function stripeProductIdOf(catalog: Catalog, product: ProductRef): string | undefined {
  const own =
    product.kind === 'TIER'
      ? catalog.tiers[product.id]?.stripeProductId
      : product.kind === 'GROUP'
        ? catalog.groups[product.id]?.stripeProductId
        : catalog.events[product.id]?.stripeProductId;
  if (own) return own;
  return Object.values(catalog.prices).find(
    (p) => p.product.kind === product.kind && p.product.id === product.id && p.stripeProductId,
  )?.stripeProductId;
}

function productExists(catalog: Catalog, p: ProductRef): boolean {
  if (p.kind === 'TIER') return p.id in catalog.tiers;
  if (p.kind === 'GROUP') return p.id in catalog.groups;
  return p.id in catalog.events;
}

/**
 * Validates a promo code the way Stripe would (so nothing half-made is left in Stripe), plus our
 * own rule: a code is unique per community, case-insensitively.
 */
export function decidePromoCode(
  draft: PromoCodeDraft,
  ctx: { catalog: Catalog; existingCodeKeys: ReadonlySet<string>; now: EpochMs },
): PromoCodeSpec {
  const d = draft;
  const checks = new FieldChecks();
  const code = typeof d.code === 'string' ? d.code.trim() : '';
  checks.check(PROMO_CODE_PATTERN.test(code), 'code', 'may only contain letters, digits and dashes (1..200)');
  const hasPercent = d.percentOff !== undefined;
  const hasAmount = d.amountOff !== undefined;
  checks.check(
    hasPercent !== hasAmount,
    hasPercent ? 'amountOff' : 'percentOff',
    'give either percentOff or amountOff',
  );
  if (hasPercent) {
    const p = d.percentOff as number;
    // Stripe accepts up to two decimals in (0, 100].
    checks.check(
      Number.isFinite(p) && p > 0 && p <= 100 && Math.abs(p * 100 - Math.round(p * 100)) < 1e-9,
      'percentOff',
      'must be more than 0 and at most 100, with at most two decimals',
    );
  }
  if (hasAmount) {
    checks.check(
      isInt(d.amountOff) && d.amountOff >= 1,
      'amountOff',
      'must be a whole number of minor units, at least 1',
    );
    checks.check(d.currency !== undefined, 'currency', 'is required with amountOff');
  }
  if (d.currency !== undefined) {
    checks.check(hasAmount, 'currency', 'only applies to amountOff');
    checks.check(/^[a-z]{3}$/i.test(d.currency), 'currency', 'must be 3 letters');
  }
  checks.check(COUPON_DURATIONS.includes(d.duration), 'duration', 'must be ONCE, REPEATING or FOREVER');
  if (d.duration === 'REPEATING') {
    checks.check(
      isInt(d.durationInMonths) &&
        d.durationInMonths >= 1 &&
        d.durationInMonths <= MAX_COUPON_DURATION_MONTHS,
      'durationInMonths',
      `is required with REPEATING: 1..${MAX_COUPON_DURATION_MONTHS}`,
    );
  } else {
    checks.check(d.durationInMonths === undefined, 'durationInMonths', 'only applies to REPEATING');
  }
  checks.check(
    d.maxRedemptions === undefined || (isInt(d.maxRedemptions) && d.maxRedemptions >= 1),
    'maxRedemptions',
    'must be at least 1',
  );
  checks.check(d.expiresAt === undefined || d.expiresAt > ctx.now, 'expiresAt', 'must be in the future');
  checks.check(
    d.appliesTo === undefined || d.appliesTo.length > 0,
    'appliesTo',
    'must name at least one product',
  );
  checks.throwIfAny();

  const appliesTo = d.appliesTo && uniqueProducts(d.appliesTo);
  const stripeProductIds: string[] = [];
  for (const p of appliesTo ?? []) {
    if (!productExists(ctx.catalog, p)) throw new NotFoundError(`${p.kind.toLowerCase()} ${p.id} not found`);
    const sp = stripeProductIdOf(ctx.catalog, p);
    if (!sp) {
      checks.check(
        false,
        'appliesTo',
        `${p.kind.toLowerCase()} ${p.id} has no Stripe product yet: create a price first`,
      );
    } else {
      stripeProductIds.push(sp);
    }
  }
  checks.throwIfAny();

  const codeKey = promoCodeKey(code);
  if (ctx.existingCodeKeys.has(codeKey))
    throw new ConflictError(`Promo code ${code} already exists in this community`);
  return {
    code,
    codeKey,
    ...(hasPercent && { percentOff: d.percentOff }),
    ...(hasAmount && { amountOff: d.amountOff, currency: (d.currency as string).toLowerCase() }),
    duration: d.duration,
    ...(d.duration === 'REPEATING' && { durationInMonths: d.durationInMonths }),
    ...(d.maxRedemptions !== undefined && { maxRedemptions: d.maxRedemptions }),
    ...(d.expiresAt !== undefined && { expiresAt: d.expiresAt }),
    ...(appliesTo && { appliesTo, stripeProductIds: [...new Set(stripeProductIds)] }),
    firstTimeOnly: d.firstTimeOnly ?? false,
  };
}

function uniqueProducts(products: readonly ProductRef[]): ProductRef[] {
  const seen = new Map<string, ProductRef>();
  for (const p of products) seen.set(`${p.kind}:${p.id}`, { kind: p.kind, id: p.id });
  return [...seen.values()];
}

/** Stripe's coupon parameters for a validated spec (seconds at this edge). */
export function stripeCouponParams(spec: PromoCodeSpec, metadata: Record<string, string>) {
  return {
    ...(spec.percentOff !== undefined && { percent_off: spec.percentOff }),
    ...(spec.amountOff !== undefined && { amount_off: spec.amountOff, currency: spec.currency }),
    duration: spec.duration.toLowerCase() as 'once' | 'repeating' | 'forever',
    ...(spec.durationInMonths !== undefined && { duration_in_months: spec.durationInMonths }),
    ...(spec.maxRedemptions !== undefined && { max_redemptions: spec.maxRedemptions }),
    ...(spec.expiresAt !== undefined && { redeem_by: Math.floor(spec.expiresAt / 1000) }),
    ...(spec.stripeProductIds && { applies_to: { products: spec.stripeProductIds } }),
    name: spec.code,
    metadata,
  };
}

/** Stripe's promotion code parameters (the coupon id comes from the coupon just created). */
export function stripePromotionCodeParams(
  spec: PromoCodeSpec,
  stripeCouponId: string,
  metadata: Record<string, string>,
) {
  return {
    promotion: { type: 'coupon' as const, coupon: stripeCouponId },
    code: spec.code,
    ...(spec.expiresAt !== undefined && { expires_at: Math.floor(spec.expiresAt / 1000) }),
    ...(spec.maxRedemptions !== undefined && { max_redemptions: spec.maxRedemptions }),
    ...(spec.firstTimeOnly && { restrictions: { first_time_transaction: true } }),
    metadata,
  };
}

/** Why a promo code cannot discount this price now, or null when it can. */
export function promoCodeProblem(promo: PromoCodeState, price: Price, now: EpochMs): string | null {
  if (promo.expiresAt !== undefined && promo.expiresAt <= now) return 'has expired';
  if (promo.maxRedemptions !== undefined && promo.timesRedeemed >= promo.maxRedemptions)
    return 'has been used up';
  if (
    promo.appliesTo &&
    !promo.appliesTo.some((p) => p.kind === price.product.kind && p.id === price.product.id)
  ) {
    return 'does not apply to this product';
  }
  if (promo.currency !== undefined && promo.currency !== price.currency)
    return `is in ${promo.currency.toUpperCase()}, the price in ${price.currency.toUpperCase()}`;
  return null;
}

import type { ProductRef } from '../catalog/catalog.events';
import type { EpochMs } from '../time';

export type CouponDuration = 'ONCE' | 'REPEATING' | 'FOREVER';
export type InvitationAudience = 'NEW_MEMBERS' | 'EXISTING_MEMBERS' | 'ANYONE';
export type CheckoutMode = 'payment' | 'subscription';

type Fact<Type extends string, Data> = { type: Type; data: Data };

/** A promotion code and its coupon, both already created in Stripe. */
export type PromoCodeCreated = Fact<
  'PromoCodeCreated',
  {
    communityId: string;
    promoCodeId: string;
    /** As the owner typed it; `codeKey` is its case-insensitive identity. */
    code: string;
    codeKey: string;
    stripeCouponId: string;
    stripePromotionCodeId: string;
    percentOff?: number;
    amountOff?: number;
    currency?: string;
    duration: CouponDuration;
    durationInMonths?: number;
    maxRedemptions?: number;
    expiresAt?: EpochMs;
    appliesTo?: ProductRef[];
    firstTimeOnly: boolean;
    createdAt: EpochMs;
  }
>;

export type InvitationLinkCreated = Fact<
  'InvitationLinkCreated',
  {
    communityId: string;
    linkId: string;
    token: string;
    audience: InvitationAudience;
    priceIds: string[];
    /** The promo code's key (upper case), when the link pre-applies one. */
    promoCode?: string;
    expiresAt?: EpochMs;
    maxUses?: number;
    createdAt: EpochMs;
  }
>;

/**
 * Someone asked to use a link. Whether it counts is decided by the projection in log order
 * (`decideRedemption`), so concurrent requests can never exceed `maxUses`.
 */
export type InvitationLinkRedeemed = Fact<
  'InvitationLinkRedeemed',
  { communityId: string; linkId: string; redemptionId: string; memberId: string; at: EpochMs }
>;

export type CheckoutStarted = Fact<
  'CheckoutStarted',
  {
    communityId: string;
    checkoutId: string;
    memberId: string;
    priceId: string;
    stripePriceId: string;
    stripeCheckoutSessionId: string;
    mode: CheckoutMode;
    trialDays?: number;
    installments?: number;
    stripeCustomerId?: string;
    email?: string;
    promoCodeId?: string;
    stripePromotionCodeId?: string;
    invitationLinkId?: string;
    redemptionId?: string;
    startedAt: EpochMs;
  }
>;

export type CommerceEvent =
  PromoCodeCreated | InvitationLinkCreated | InvitationLinkRedeemed | CheckoutStarted;

export const COMMERCE_EVENT_TYPES = [
  'PromoCodeCreated',
  'InvitationLinkCreated',
  'InvitationLinkRedeemed',
  'CheckoutStarted',
] as const satisfies readonly CommerceEvent['type'][];

export function isCommerceEvent(event: { type: string }): event is CommerceEvent {
  return (COMMERCE_EVENT_TYPES as readonly string[]).includes(event.type);
}

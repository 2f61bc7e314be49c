import { createHash, randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type Stripe from 'stripe';
import {
  BadUserInputError,
  ConflictError,
  ForbiddenError,
  InvitationClosedError,
  NotFoundError,
  assertInvitationOpen,
  decideCheckout,
  decideInvitationLink,
  decidePromoCode,
  memberCommerceView,
  mergeCommerceViews,
  promoCodeKey,
  stripeCouponParams,
  stripePromotionCodeParams,
  type Catalog,
  type CheckoutStarted,
  type InvitationLinkCreated,
  type InvitationLinkRedeemed,
  type InvitationLinkState,
  type MemberCommerceView,
  type MemberState,
  type ProductRef,
  type PromoCodeCreated,
  type PromoCodeState,
} from '@gatehouse/domain';
import type { Ledger } from '@gatehouse/ledger';
import { CatalogQuery, CommerceQuery, MembershipQuery, type Projector } from '@gatehouse/projections';
import type { DataSource } from 'typeorm';
import type { Caller } from '../auth/auth';
import { CouponDuration, InvitationAudience } from '../graphql/enums';
import type { CreateInvitationLinkInput, CreatePromoCodeInput, StartCheckoutInput } from '../graphql/inputs';
import type { CheckoutSession, InvitationLink, PromoCode } from '../graphql/types';
import { toPrice } from './catalog.mapper';
import { callStripe, stripeAccountOf, stripeOrThrow } from './catalog.service';
import { appendAndWait, type CommandContext } from './commands';

/** What commerce reads of a member's Stripe state (the membership projection's `MembershipQuery.doc`). */
export interface MemberStates {
  doc(communityId: string, memberId: string): Promise<{ state: MemberState }>;
}

export type CommerceServiceDeps = CommandContext & {
  catalog: CatalogQuery;
  commerce: CommerceQuery;
  /** Live subscriptions and past trials; without it only the commerce projection's trials are known. */
  members?: MemberStates;
  /** Null when STRIPE_SECRET_KEY is not set. */
  stripe: Stripe | null;
  /** Base of invitation URLs (`GATEHOUSE_PUBLIC_URL`). */
  /** Base of invitation links (read when a link is made: a server on port 0 knows it once it listens). */
  publicUrl: string | (() => string);
};

/** What an invitation page shows. */
export type JoinOffer = {
  link: InvitationLinkState;
  catalog: Catalog;
  promo: PromoCodeState | null;
};

/**
 * How long a buyer on Checkout holds a use of an invitation link with a maximum: the session expires
 * after this (Stripe's default is 24 hours; its minimum 30 minutes), and the expiry gives the use back.
 */
export const CAPPED_LINK_HOLD_SECONDS = 3_600;

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 32);
}

function productName(catalog: Catalog, p: ProductRef): string {
  if (p.kind === 'TIER') return catalog.tiers[p.id]?.name ?? 'Membership';
  if (p.kind === 'GROUP') return catalog.groups[p.id]?.name ?? 'Group';
  return catalog.events[p.id]?.name ?? 'Event';
}

export { productName as commerceProductName };

function httpUrlOrThrow(value: string, field: string): string {
  let ok = false;
  try {
    const u = new URL(value);
    ok = u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    ok = false;
  }
  if (!ok)
    throw new BadUserInputError(`${field} must be an http(s) URL`, { [field]: 'must be an http(s) URL' });
  return value;
}

/**
 * Selling access: Checkout sessions for every frequency, promo codes, paid invitation links and the
 * billing portal. Validate with the domain first, then call Stripe (idempotently), then record the
 * fact and answer from the commerce read model.
 */
export class CommerceService {
  constructor(private readonly deps: CommerceServiceDeps) {}

  private now(): number {
    return this.deps.clock().getTime();
  }

  private catalogOrThrow(communityId: string): Promise<Catalog> {
    return this.deps.catalog.getOrThrow(communityId);
  }

  private account(catalog: Catalog): { stripeAccount?: string } {
    return stripeAccountOf(catalog);
  }

  invitationUrl(token: string): string {
    const base = typeof this.deps.publicUrl === 'function' ? this.deps.publicUrl() : this.deps.publicUrl;
    return `${base.replace(/\/+$/, '')}/join/${encodeURIComponent(token)}`;
  }

  /** A snippet a community owner pastes on their own site: a plain link styled as a button. */
  embedHtml(token: string, communityName: string): string {
    const url = escapeHtml(this.invitationUrl(token));
    const label = escapeHtml(`Join ${communityName}`);
    return (
      `<a href="${url}" target="_blank" rel="noopener noreferrer" ` +
      `style="display:inline-block;padding:12px 20px;border-radius:6px;background:#1a56db;color:#fff;` +
      `font:600 16px/1.2 system-ui,sans-serif;text-decoration:none">${label}</a>`
    );
  }

  // ---- promo codes

  async createPromoCode(caller: Caller, input: CreatePromoCodeInput): Promise<PromoCode> {
    const { communityId } = input;
    const catalog = await this.catalogOrThrow(communityId);
    const spec = decidePromoCode(
      {
        code: input.code,
        percentOff: input.percentOff ?? undefined,
        amountOff: input.amountOff ?? undefined,
        currency: input.currency ?? undefined,
        duration: input.duration,
        durationInMonths: input.durationInMonths ?? undefined,
        maxRedemptions: input.maxRedemptions ?? undefined,
        expiresAt: input.expiresAt ? input.expiresAt.getTime() : undefined,
        appliesTo: input.appliesTo?.map((p) => ({ kind: p.kind, id: p.id }) as ProductRef),
        firstTimeOnly: input.firstTimeOnly ?? undefined,
      },
      { catalog, existingCodeKeys: await this.deps.commerce.promoCodeKeys(communityId), now: this.now() },
    );
    const stripe = stripeOrThrow(this.deps.stripe);
    const promoCodeId = uuidv7();
    const metadata = { gatehouse_community_id: communityId, gatehouse_promo_code: spec.codeKey };
    // Keys depend on the code and its terms: a retry after a partial failure reuses what Stripe made.
    const key = `gatehouse:${communityId}:promo:${spec.codeKey}:${hashOf(spec)}`;
    const account = this.account(catalog);
    const coupon = await callStripe('create the coupon', () =>
      stripe.coupons.create(stripeCouponParams(spec, metadata), {
        idempotencyKey: `${key}:coupon`,
        ...account,
      }),
    );
    const promotion = await callStripe('create the promotion code', () =>
      stripe.promotionCodes.create(stripePromotionCodeParams(spec, coupon.id, metadata), {
        idempotencyKey: `${key}:promotion-code`,
        ...account,
      }),
    );
    const { stripeProductIds: _products, ...recorded } = spec;
    const fact: PromoCodeCreated = {
      type: 'PromoCodeCreated',
      data: {
        ...recorded,
        communityId,
        promoCodeId,
        stripeCouponId: coupon.id,
        stripePromotionCodeId: promotion.id,
        createdAt: this.now(),
      },
    };
    await appendAndWait(this.deps, communityId, caller.sub, [fact], { subject: promoCodeId });
    const saved = await this.deps.commerce.promoCode(communityId, promoCodeId);
    // Another request created the same code first; the log order kept theirs.
    if (!saved)
      throw new ConflictError(`Promo code ${spec.code} was created by another request at the same time`);
    return toPromoCode(saved);
  }

  /** A community's promo codes with their redemptions so far, by code. */
  async promoCodes(communityId: string): Promise<PromoCode[]> {
    await this.catalogOrThrow(communityId);
    return (await this.deps.commerce.promoCodes(communityId)).map(toPromoCode);
  }

  // ---- invitation links

  async createInvitationLink(caller: Caller, input: CreateInvitationLinkInput): Promise<InvitationLink> {
    const { communityId } = input;
    const catalog = await this.catalogOrThrow(communityId);
    const decided = decideInvitationLink(
      {
        priceIds: input.priceIds,
        audience: input.audience,
        promoCode: input.promoCode ?? undefined,
        expiresAt: input.expiresAt ? input.expiresAt.getTime() : undefined,
        maxUses: input.maxUses ?? undefined,
      },
      { catalog, promoCodeKeys: await this.deps.commerce.promoCodeKeys(communityId), now: this.now() },
    );
    const linkId = uuidv7();
    // 192 random bits, URL-safe: the token is the only secret of a link.
    const token = randomBytes(24).toString('base64url');
    const fact: InvitationLinkCreated = {
      type: 'InvitationLinkCreated',
      data: { ...decided, communityId, linkId, token, createdAt: this.now() },
    };
    await appendAndWait(this.deps, communityId, caller.sub, [fact], { subject: linkId });
    const link = await this.deps.commerce.invitationLink(communityId, linkId);
    if (!link) throw new NotFoundError('Invitation link not found');
    return this.toInvitationLink(link, catalog);
  }

  toInvitationLink(link: InvitationLinkState, catalog: Catalog): InvitationLink {
    return {
      id: link.linkId,
      token: link.token,
      url: this.invitationUrl(link.token),
      embedHtml: this.embedHtml(link.token, catalog.community?.name ?? 'the community'),
      audience: link.audience as InvitationAudience,
      prices: link.priceIds
        .filter((id) => catalog.prices[id])
        .map((id) => toPrice(link.communityId, catalog.prices[id])),
      expiresAt: link.expiresAt !== undefined ? new Date(link.expiresAt) : null,
      maxUses: link.maxUses ?? null,
      uses: link.uses,
    };
  }

  /**
   * The offer behind a token, for the join page. Throws NotFoundError (unknown), InvitationClosedError
   * (expired, used up) or ForbiddenError (wrong audience for the given member).
   */
  async joinOfferOrThrow(token: string, memberId?: string): Promise<JoinOffer> {
    const link = await this.deps.commerce.invitationLinkByToken(token);
    if (!link) throw new NotFoundError('This invitation link does not exist');
    const catalog = await this.catalogOrThrow(link.communityId);
    const isMember = memberId !== undefined && (await this.isMember(link.communityId, memberId));
    assertInvitationOpen(link, { memberId, isMember }, this.now());
    const promo = link.promoCode
      ? await this.deps.commerce.promoCodeByKey(link.communityId, link.promoCode)
      : null;
    return { link, catalog, promo };
  }

  private async isMember(communityId: string, memberId: string): Promise<boolean> {
    return this.deps.commerce.isKnownMember(communityId, memberId);
  }

  // ---- checkout

  private async memberView(
    communityId: string,
    memberId: string,
    catalog: Catalog,
  ): Promise<MemberCommerceView> {
    const [doc, trialedPriceIds] = await Promise.all([
      this.deps.members?.doc(communityId, memberId),
      this.deps.commerce.trialedPriceIds(communityId, memberId),
    ]);
    const own: MemberCommerceView = {
      subscribedProducts: [],
      trialedProducts: trialedPriceIds.flatMap((id) =>
        catalog.prices[id] ? [catalog.prices[id].product] : [],
      ),
    };
    return doc ? mergeCommerceViews(memberCommerceView(doc.state, catalog), own) : own;
  }

  async startCheckout(caller: Caller | null, input: StartCheckoutInput): Promise<CheckoutSession> {
    const { communityId } = input;
    const successUrl = httpUrlOrThrow(input.successUrl, 'successUrl');
    const cancelUrl = httpUrlOrThrow(input.cancelUrl, 'cancelUrl');
    const catalog = await this.catalogOrThrow(communityId);
    const now = this.now();

    let link: InvitationLinkState | null = null;
    if (input.invitationToken) {
      link = await this.deps.commerce.invitationLinkByToken(input.invitationToken);
      if (!link || link.communityId !== communityId)
        throw new NotFoundError('This invitation link does not exist');
      if (!link.priceIds.includes(input.priceId)) {
        throw new BadUserInputError('This invitation does not offer that price', {
          priceId: 'is not offered by this invitation',
        });
      }
    }

    const given = input.memberId ?? undefined;
    const known = given !== undefined && (await this.isMember(communityId, given));
    // Someone without a token may start a purchase for a new member, never act as an existing one.
    if (!caller && known) throw new ForbiddenError('Sign in to buy as an existing member');
    if (link) assertInvitationOpen(link, { memberId: given, isMember: known }, now);
    const memberId = given ?? uuidv7();

    const promoCode = input.promoCode ?? link?.promoCode;
    let promo: PromoCodeState | undefined;
    if (promoCode) {
      promo = (await this.deps.commerce.promoCodeByKey(communityId, promoCodeKey(promoCode))) ?? undefined;
      if (!promo)
        throw new BadUserInputError(`Promo code ${promoCode} does not exist`, {
          promoCode: 'does not exist',
        });
    }
    const plan = decideCheckout(
      { priceId: input.priceId, promo, member: await this.memberView(communityId, memberId, catalog) },
      catalog,
      now,
    );
    const stripe = stripeOrThrow(this.deps.stripe);
    const actor = caller?.sub ?? null;

    let redemptionId: string | undefined;
    if (link) {
      redemptionId = uuidv7();
      const redeemed: InvitationLinkRedeemed = {
        type: 'InvitationLinkRedeemed',
        data: { communityId, linkId: link.linkId, redemptionId, memberId, at: now },
      };
      await appendAndWait(this.deps, communityId, actor ?? `invitation:${link.linkId}`, [redeemed], {
        source: 'system',
        subject: link.linkId,
      });
      const outcome = (await this.deps.commerce.redemption(communityId, redemptionId))?.outcome;
      if (outcome === 'EXPIRED' || outcome === 'USED_UP') throw new InvitationClosedError(outcome);
      if (outcome !== 'ACCEPTED') throw new NotFoundError('This invitation link does not exist');
    }

    const customer = await this.deps.commerce.stripeCustomerId(communityId, memberId);
    const price = plan.price;
    const metadata: Record<string, string> = {
      gatehouse_community_id: communityId,
      gatehouse_member_id: memberId,
      gatehouse_price_id: price.priceId,
      gatehouse_stripe_price_id: price.stripePriceId,
      ...(link && { gatehouse_invitation_link_id: link.linkId }),
    };
    const email = input.email ?? undefined;
    const params: Stripe.Checkout.SessionCreateParams = {
      mode: plan.mode,
      line_items: [{ price: price.stripePriceId, quantity: 1 }],
      success_url: successUrl,
      cancel_url: cancelUrl,
      client_reference_id: memberId,
      metadata,
      ...(link?.maxUses !== undefined && {
        expires_at: Math.floor(now / 1000) + CAPPED_LINK_HOLD_SECONDS,
      }),
      ...(customer ? { customer } : email ? { customer_email: email } : {}),
      ...(plan.promo
        ? { discounts: [{ promotion_code: plan.promo.stripePromotionCodeId }] }
        : { allow_promotion_codes: true }),
      ...(plan.mode === 'subscription'
        ? {
            subscription_data: {
              // Installment plans end after N paid invoices: `cancel_at` is set once the session
              // completes (Checkout cannot take a schedule); the count travels with the subscription.
              metadata: {
                ...metadata,
                ...(plan.installments && { gatehouse_installments: String(plan.installments) }),
              },
              ...(plan.trialDays !== undefined && { trial_period_days: plan.trialDays }),
            },
          }
        : {
            payment_intent_data: { metadata },
            // A one-time buyer gets a customer too, so the billing portal can find them later.
            ...(customer ? {} : { customer_creation: 'always' as const }),
          }),
    };
    const idempotencyKey = `gatehouse:${communityId}:checkout:${hashOf({ params, redemptionId })}`;
    const session = await callStripe('start the checkout', () =>
      stripe.checkout.sessions.create(params, { idempotencyKey, ...this.account(catalog) }),
    );
    if (!session.url) throw new NotFoundError('Stripe returned a Checkout session without a URL');

    const started: CheckoutStarted = {
      type: 'CheckoutStarted',
      data: {
        communityId,
        checkoutId: session.id,
        memberId,
        priceId: price.priceId,
        stripePriceId: price.stripePriceId,
        stripeCheckoutSessionId: session.id,
        mode: plan.mode,
        ...(plan.trialDays !== undefined && { trialDays: plan.trialDays }),
        ...(plan.installments !== undefined && { installments: plan.installments }),
        ...(customer && { stripeCustomerId: customer }),
        ...(email && { email }),
        ...(plan.promo && {
          promoCodeId: plan.promo.promoCodeId,
          stripePromotionCodeId: plan.promo.stripePromotionCodeId,
        }),
        ...(link && { invitationLinkId: link.linkId }),
        ...(redemptionId && { redemptionId }),
        startedAt: now,
      },
    };
    await appendAndWait(this.deps, communityId, actor ?? `invitation:${link?.linkId ?? 'none'}`, [started], {
      source: 'system',
      subject: memberId,
    });
    return { id: session.id, url: session.url };
  }

  // ---- billing portal

  async billingPortalUrl(
    _caller: Caller,
    communityId: string,
    memberId: string,
    returnUrl: string,
  ): Promise<string> {
    const url = httpUrlOrThrow(returnUrl, 'returnUrl');
    const catalog = await this.catalogOrThrow(communityId);
    const customer = await this.deps.commerce.stripeCustomerId(communityId, memberId);
    if (!customer) {
      throw new NotFoundError(
        `Member ${memberId} has no Stripe customer yet: billing details exist after a first checkout`,
      );
    }
    const stripe = stripeOrThrow(this.deps.stripe);
    const session = await callStripe('open the billing portal', () =>
      stripe.billingPortal.sessions.create({ customer, return_url: url }, this.account(catalog)),
    );
    return session.url;
  }
}

export function toPromoCode(p: PromoCodeState): PromoCode {
  return {
    id: p.promoCodeId,
    code: p.code,
    stripePromotionCodeId: p.stripePromotionCodeId,
    percentOff: p.percentOff ?? null,
    amountOff: p.amountOff ?? null,
    currency: p.currency ?? null,
    duration: p.duration as CouponDuration,
    durationInMonths: p.durationInMonths ?? null,
    maxRedemptions: p.maxRedemptions ?? null,
    expiresAt: p.expiresAt !== undefined ? new Date(p.expiresAt) : null,
    timesRedeemed: p.timesRedeemed,
  };
}

/** The commerce service over the composition root's dependencies (also what the join pages use). */
export function createCommerceService(deps: {
  dataSource: DataSource;
  ledger: Ledger;
  projector: Projector;
  stripe: Stripe | null;
  /** Base of invitation links (read when a link is made: a server on port 0 knows it once it listens). */
  publicUrl: string | (() => string);
  clock?: () => Date;
  waitMs?: number;
}): CommerceService {
  return new CommerceService({
    ledger: deps.ledger,
    projector: deps.projector,
    clock: deps.clock ?? (() => new Date()),
    waitMs: deps.waitMs ?? 10_000,
    catalog: new CatalogQuery(deps.dataSource),
    commerce: new CommerceQuery(deps.dataSource),
    members: new MembershipQuery(deps.dataSource),
    stripe: deps.stripe,
    publicUrl: deps.publicUrl,
  });
}

import {
  COMMERCE_EVENT_TYPES,
  decideRedemption,
  type CheckoutStarted,
  type InvitationLinkCreated,
  type InvitationLinkRedeemed,
  type PromoCodeCreated,
} from '@gatehouse/domain';
import type { RecordedEvent } from '@gatehouse/ledger';
import pino, { type Logger } from 'pino';
import type { Projection, ProjectionTx } from '../runtime/projection';
import {
  COMMERCE_STRIPE_TYPES,
  readCommerceStripeEvent,
  type CommerceStripeReading,
} from './commerce-stripe.translate';

export const COMMERCE_PROJECTION = 'commerce';

/**
 * Promo codes with their redemptions, invitation links with their uses, checkout sessions started,
 * and what Stripe taught about members (customers, trials). Events are applied one by one in log
 * order inside the batch: the log order decides an invitation link's last use, so concurrent
 * redemptions can never exceed `maxUses`, and a rebuild decides exactly as the live run did.
 */
export class CommerceProjection implements Projection {
  readonly name = COMMERCE_PROJECTION;
  readonly types = [...COMMERCE_EVENT_TYPES, ...COMMERCE_STRIPE_TYPES];
  readonly tables = [
    'commerce_promo_codes',
    'commerce_promo_redemptions',
    'commerce_invitation_links',
    'commerce_invitation_redemptions',
    'commerce_checkouts',
    'commerce_customers',
    'commerce_trials',
  ];
  private readonly log: Logger;

  constructor(options: { logger?: Logger } = {}) {
    this.log = options.logger ?? pino({ name: 'commerce-projection' });
  }

  async apply(tx: ProjectionTx, events: readonly RecordedEvent[]): Promise<void> {
    // Nothing here reads commerce_customers: its rows are written once, at the end of the batch.
    const customers = new Map<
      string,
      [communityId: string, memberId: string, customerId: string, eventId: string]
    >();
    for (const e of events) {
      switch (e.type) {
        case 'PromoCodeCreated':
          await this.promoCodeCreated(tx, e, e.data as PromoCodeCreated['data']);
          break;
        case 'InvitationLinkCreated':
          await this.invitationLinkCreated(tx, e, e.data as InvitationLinkCreated['data']);
          break;
        case 'InvitationLinkRedeemed':
          await this.invitationLinkRedeemed(tx, e, e.data as InvitationLinkRedeemed['data']);
          break;
        case 'CheckoutStarted':
          await this.checkoutStarted(tx, e, e.data as CheckoutStarted['data']);
          break;
        default:
          if (e.source === 'stripe')
            await this.stripeEvent(tx, e, readCommerceStripeEvent(e.data), customers);
      }
    }
    if (customers.size > 0) {
      const rows = [...customers.values()];
      await tx.query(
        `INSERT INTO commerce_customers (community_id, member_id, stripe_customer_id, event_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
        [0, 1, 2, 3].map((i) => rows.map((r) => r[i])),
      );
    }
  }

  private async promoCodeCreated(
    tx: ProjectionTx,
    e: RecordedEvent,
    d: PromoCodeCreated['data'],
  ): Promise<void> {
    const rows = await tx.query(
      `INSERT INTO commerce_promo_codes (community_id, promo_code_id, code_key, stripe_promotion_code_id, data)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING promo_code_id`,
      [e.communityId, d.promoCodeId, d.codeKey, d.stripePromotionCodeId, JSON.stringify(d)],
    );
    // Two creations of one code raced past validation: the first in the log keeps the code.
    if (rows.length === 0)
      this.log.warn({ eventId: e.id, code: d.codeKey }, 'promo code already known: later creation ignored');
  }

  private async invitationLinkCreated(
    tx: ProjectionTx,
    e: RecordedEvent,
    d: InvitationLinkCreated['data'],
  ): Promise<void> {
    await tx.query(
      `INSERT INTO commerce_invitation_links (community_id, link_id, token, data, uses)
       VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING`,
      [e.communityId, d.linkId, d.token, JSON.stringify(d)],
    );
  }

  private async invitationLinkRedeemed(
    tx: ProjectionTx,
    e: RecordedEvent,
    d: InvitationLinkRedeemed['data'],
  ): Promise<void> {
    const seen = await tx.query(
      'SELECT 1 FROM commerce_invitation_redemptions WHERE community_id = $1 AND redemption_id = $2',
      [e.communityId, d.redemptionId],
    );
    if (seen.length > 0) return;
    const [link] = await tx.query<{ data: InvitationLinkCreated['data']; uses: number }>(
      'SELECT data, uses FROM commerce_invitation_links WHERE community_id = $1 AND link_id = $2',
      [e.communityId, d.linkId],
    );
    const outcome = link ? decideRedemption(link.data, link.uses, d.at) : 'UNKNOWN_LINK';
    await tx.query(
      `INSERT INTO commerce_invitation_redemptions (community_id, redemption_id, link_id, member_id, outcome, event_id)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [e.communityId, d.redemptionId, d.linkId, d.memberId, outcome, e.id],
    );
    if (outcome === 'ACCEPTED') {
      await tx.query(
        'UPDATE commerce_invitation_links SET uses = uses + 1 WHERE community_id = $1 AND link_id = $2',
        [e.communityId, d.linkId],
      );
    }
  }

  private async checkoutStarted(
    tx: ProjectionTx,
    e: RecordedEvent,
    d: CheckoutStarted['data'],
  ): Promise<void> {
    await tx.query(
      `INSERT INTO commerce_checkouts (community_id, checkout_id, member_id, price_id, stripe_checkout_session_id, data, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
      [
        e.communityId,
        d.checkoutId,
        d.memberId,
        d.priceId,
        d.stripeCheckoutSessionId,
        JSON.stringify(d),
        new Date(d.startedAt).toISOString(),
      ],
    );
  }

  /**
   * Stripe expired a session unpaid: the checkout is marked, and a use of an invitation link it held
   * is given back (the link's `uses` goes down, its redemption becomes RELEASED). Once per session; a
   * completed session keeps its use.
   */
  private async checkoutExpired(tx: ProjectionTx, e: RecordedEvent, sessionId: string): Promise<void> {
    const [checkout] = await tx.query<{
      data: CheckoutStarted['data'];
      completed_at: Date | null;
      expired_at: Date | null;
    }>(
      `SELECT data, completed_at, expired_at FROM commerce_checkouts
        WHERE community_id = $1 AND stripe_checkout_session_id = $2`,
      [e.communityId, sessionId],
    );
    if (!checkout || checkout.completed_at || checkout.expired_at) return;
    await tx.query(
      `UPDATE commerce_checkouts SET expired_at = $3 WHERE community_id = $1 AND stripe_checkout_session_id = $2`,
      [e.communityId, sessionId, e.occurredAt],
    );
    const { redemptionId, invitationLinkId } = checkout.data;
    if (!redemptionId || !invitationLinkId) return;
    const [redemption] = await tx.query<{ outcome: string }>(
      'SELECT outcome FROM commerce_invitation_redemptions WHERE community_id = $1 AND redemption_id = $2',
      [e.communityId, redemptionId],
    );
    if (redemption?.outcome !== 'ACCEPTED') return;
    await tx.query(
      `UPDATE commerce_invitation_redemptions SET outcome = 'RELEASED' WHERE community_id = $1 AND redemption_id = $2`,
      [e.communityId, redemptionId],
    );
    await tx.query(
      'UPDATE commerce_invitation_links SET uses = uses - 1 WHERE community_id = $1 AND link_id = $2 AND uses > 0',
      [e.communityId, invitationLinkId],
    );
  }

  private async stripeEvent(
    tx: ProjectionTx,
    e: RecordedEvent,
    r: CommerceStripeReading,
    customers: Map<string, [string, string, string, string]>,
  ): Promise<void> {
    if (r.kind === 'other') return;
    const c = e.communityId;
    if (r.kind === 'checkout-expired') {
      if (r.objectId) await this.checkoutExpired(tx, e, r.objectId);
      return;
    }
    const promos = new Set(r.promotionCodeIds);
    let memberId = r.memberId;
    if (r.kind === 'checkout-completed' && r.objectId) {
      // TypeORM answers UPDATE … RETURNING with [rows, count]: update, then read.
      await tx.query(
        `UPDATE commerce_checkouts SET completed_at = COALESCE(completed_at, $3)
          WHERE community_id = $1 AND stripe_checkout_session_id = $2`,
        [c, r.objectId, e.occurredAt],
      );
      const started = await tx.query<{ member_id: string; data: CheckoutStarted['data'] }>(
        'SELECT member_id, data FROM commerce_checkouts WHERE community_id = $1 AND stripe_checkout_session_id = $2',
        [c, r.objectId],
      );
      for (const s of started) {
        memberId ??= s.member_id;
        // A pre-applied code is redeemed with the session even when the payload does not echo it.
        if (s.data.stripePromotionCodeId) promos.add(s.data.stripePromotionCodeId);
      }
    }
    if (memberId && r.customerId) {
      // One customer per member, as ON CONFLICT DO NOTHING row by row would keep: the first seen.
      const key = `${c}\u0000${memberId}`;
      if (!customers.has(key)) customers.set(key, [c, memberId, r.customerId, e.id]);
    }
    if (r.kind === 'subscription' && memberId && r.subscriptionId && r.priceId && r.trialEnd !== undefined) {
      await tx.query(
        `INSERT INTO commerce_trials (community_id, member_id, stripe_subscription_id, price_id, event_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING`,
        [c, memberId, r.subscriptionId, r.priceId, e.id],
      );
    }
    if (r.kind === 'subscription') return;
    // One redemption per subscription (every invoice of a repeating coupon carries it), else per object.
    const key = r.subscriptionId ?? r.objectId;
    if (!key) return;
    for (const promo of promos) {
      await tx.query(
        `INSERT INTO commerce_promo_redemptions (community_id, stripe_promotion_code_id, redemption_key, event_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [c, promo, key, e.id],
      );
    }
  }
}

import type {
  CheckoutStarted,
  InvitationLinkCreated,
  InvitationLinkState,
  PromoCodeCreated,
  PromoCodeState,
  RedemptionOutcome,
  RedemptionRelease,
} from '@gatehouse/domain';
import type { DataSource } from 'typeorm';

export type InvitationRedemptionRecord = {
  redemptionId: string;
  linkId: string;
  memberId: string;
  outcome: RedemptionOutcome | RedemptionRelease | 'UNKNOWN_LINK';
};

export type CheckoutRecord = CheckoutStarted['data'] & {
  completedAt: number | null;
  /** When Stripe expired the session unpaid. */
  expiredAt: number | null;
};

const PROMO_SELECT = `
  SELECT p.data, (SELECT count(*)::int FROM commerce_promo_redemptions r
                   WHERE r.community_id = p.community_id AND r.stripe_promotion_code_id = p.stripe_promotion_code_id) AS times_redeemed
    FROM commerce_promo_codes p`;

type PromoRow = { data: PromoCodeCreated['data']; times_redeemed: number };
const toPromo = (r: PromoRow): PromoCodeState => ({ ...r.data, timesRedeemed: r.times_redeemed });

/** Reads of the commerce read model. Every lookup is scoped by community, except a link by its token. */
export class CommerceQuery {
  constructor(private readonly ds: DataSource) {}

  async promoCodes(communityId: string): Promise<PromoCodeState[]> {
    const rows = await this.ds.query<PromoRow[]>(
      `${PROMO_SELECT} WHERE p.community_id = $1 ORDER BY p.code_key`,
      [communityId],
    );
    return rows.map(toPromo);
  }

  async promoCodeKeys(communityId: string): Promise<Set<string>> {
    const rows = await this.ds.query<{ code_key: string }[]>(
      'SELECT code_key FROM commerce_promo_codes WHERE community_id = $1',
      [communityId],
    );
    return new Set(rows.map((r) => r.code_key));
  }

  /** By the case-insensitive key (`promoCodeKey`). */
  async promoCodeByKey(communityId: string, codeKey: string): Promise<PromoCodeState | null> {
    const rows = await this.ds.query<PromoRow[]>(
      `${PROMO_SELECT} WHERE p.community_id = $1 AND p.code_key = $2`,
      [communityId, codeKey],
    );
    return rows[0] ? toPromo(rows[0]) : null;
  }

  async promoCode(communityId: string, promoCodeId: string): Promise<PromoCodeState | null> {
    const rows = await this.ds.query<PromoRow[]>(
      `${PROMO_SELECT} WHERE p.community_id = $1 AND p.promo_code_id = $2`,
      [communityId, promoCodeId],
    );
    return rows[0] ? toPromo(rows[0]) : null;
  }

  /** A link by its secret token: the token alone identifies the community (join pages carry nothing else). */
  async invitationLinkByToken(token: string): Promise<InvitationLinkState | null> {
    const rows = await this.ds.query<{ data: InvitationLinkCreated['data']; uses: number }[]>(
      'SELECT data, uses FROM commerce_invitation_links WHERE token = $1',
      [token],
    );
    return rows[0] ? { ...rows[0].data, uses: rows[0].uses } : null;
  }

  async invitationLink(communityId: string, linkId: string): Promise<InvitationLinkState | null> {
    const rows = await this.ds.query<{ data: InvitationLinkCreated['data']; uses: number }[]>(
      'SELECT data, uses FROM commerce_invitation_links WHERE community_id = $1 AND link_id = $2',
      [communityId, linkId],
    );
    return rows[0] ? { ...rows[0].data, uses: rows[0].uses } : null;
  }

  async redemption(communityId: string, redemptionId: string): Promise<InvitationRedemptionRecord | null> {
    const rows = await this.ds.query<
      {
        redemption_id: string;
        link_id: string;
        member_id: string;
        outcome: InvitationRedemptionRecord['outcome'];
      }[]
    >(
      'SELECT redemption_id, link_id, member_id, outcome FROM commerce_invitation_redemptions WHERE community_id = $1 AND redemption_id = $2',
      [communityId, redemptionId],
    );
    const r = rows[0];
    return r
      ? { redemptionId: r.redemption_id, linkId: r.link_id, memberId: r.member_id, outcome: r.outcome }
      : null;
  }

  async checkouts(communityId: string, memberId?: string): Promise<CheckoutRecord[]> {
    const rows = await this.ds.query<
      { data: CheckoutStarted['data']; completed_at: Date | null; expired_at: Date | null }[]
    >(
      `SELECT data, completed_at, expired_at FROM commerce_checkouts WHERE community_id = $1 AND ($2::text IS NULL OR member_id = $2)
        ORDER BY started_at, checkout_id`,
      [communityId, memberId ?? null],
    );
    return rows.map((r) => ({
      ...r.data,
      completedAt: r.completed_at ? r.completed_at.getTime() : null,
      expiredAt: r.expired_at ? r.expired_at.getTime() : null,
    }));
  }

  /**
   * The member's Stripe customer: what the membership projection linked first (`stripe_links`), else
   * what a completed checkout session of ours named.
   */
  async stripeCustomerId(communityId: string, memberId: string): Promise<string | null> {
    const rows = await this.ds.query<{ customer: string }[]>(
      `SELECT customer FROM (
         SELECT stripe_key AS customer, 1 AS rank FROM stripe_links
          WHERE community_id = $1 AND member_id = $2 AND stripe_key LIKE 'cus\\_%'
         UNION ALL
         SELECT stripe_customer_id, 2 FROM commerce_customers WHERE community_id = $1 AND member_id = $2
       ) c ORDER BY rank, customer LIMIT 1`,
      [communityId, memberId],
    );
    return rows[0]?.customer ?? null;
  }

  /** Our price ids of the subscriptions on which the member had a trial (from subscription metadata). */
  async trialedPriceIds(communityId: string, memberId: string): Promise<string[]> {
    const rows = await this.ds.query<{ price_id: string }[]>(
      'SELECT DISTINCT price_id FROM commerce_trials WHERE community_id = $1 AND member_id = $2 ORDER BY price_id',
      [communityId, memberId],
    );
    return rows.map((r) => r.price_id);
  }

  /** Has this member ever joined (membership facts) or completed one of our checkouts? */
  async isKnownMember(communityId: string, memberId: string): Promise<boolean> {
    const rows = await this.ds.query<unknown[]>(
      `SELECT 1 FROM member_states WHERE community_id = $1 AND member_id = $2
       UNION ALL
       SELECT 1 FROM commerce_checkouts WHERE community_id = $1 AND member_id = $2 AND completed_at IS NOT NULL
       UNION ALL
       SELECT 1 FROM commerce_customers WHERE community_id = $1 AND member_id = $2
       LIMIT 1`,
      [communityId, memberId],
    );
    return rows.length > 0;
  }
}

import {
  membershipView,
  type Catalog,
  type EpochMs,
  type MembershipEvent,
  type MembershipView,
} from '@gatehouse/domain';
import type { DataSource } from 'typeorm';
import type { AccessIndex } from '../access/access-index';
import { emptyMemberDoc, foldDoc, type MemberDoc } from './membership.projection';

export type MembershipRecord = MembershipView & {
  communityId: string;
  memberId: string;
  /** A renewal waits for the member to authenticate it (an Indian e-mandate, 3-D Secure). */
  paymentActionRequired: boolean;
};

/** An invoice asked for an action and has not been paid since. */
export function paymentActionRequired(doc: MemberDoc): boolean {
  return Object.values(doc.invoices).some(
    (i) => i.actionAt !== undefined && (i.paidAt === undefined || i.paidAt < i.actionAt),
  );
}

/** Reads of member states. `asOf` folds only the facts Stripe (or an admin) stated up to that instant. */
export class MembershipQuery {
  constructor(
    private readonly ds: DataSource,
    private readonly index?: AccessIndex,
  ) {}

  /** The catalog from the in-memory index only (no I/O), for hot paths. */
  catalogCached(communityId: string): Catalog | undefined {
    return this.index?.catalog(communityId);
  }

  async catalog(communityId: string): Promise<Catalog | null> {
    const cached = this.index?.catalog(communityId);
    if (cached) return cached;
    const rows = await this.ds.query<{ state: Catalog }[]>(
      'SELECT state FROM access_catalogs WHERE community_id = $1',
      [communityId],
    );
    return rows[0]?.state ?? null;
  }

  async doc(communityId: string, memberId: string, asOf?: EpochMs): Promise<MemberDoc> {
    if (asOf === undefined) {
      const rows = await this.ds.query<{ doc: MemberDoc }[]>(
        'SELECT doc FROM member_states WHERE community_id = $1 AND member_id = $2',
        [communityId, memberId],
      );
      return rows[0]?.doc ?? emptyMemberDoc();
    }
    const facts = await this.ds.query<{ fact: MembershipEvent }[]>(
      `SELECT fact FROM member_facts WHERE community_id = $1 AND member_id = $2 AND observed_at <= $3
        ORDER BY observed_at, event_id`,
      [communityId, memberId, new Date(asOf).toISOString()],
    );
    return facts.reduce((doc, f) => foldDoc(doc, f.fact), emptyMemberDoc());
  }

  async get(communityId: string, memberId: string, at: EpochMs, asOf?: EpochMs): Promise<MembershipRecord> {
    const [doc, catalog] = await Promise.all([
      this.doc(communityId, memberId, asOf),
      this.catalog(communityId),
    ]);
    return this.view(communityId, memberId, doc, catalog, asOf ?? at);
  }

  /** Many members at once (one query), for lists. */
  async many(
    communityId: string,
    memberIds: readonly string[],
    at: EpochMs,
  ): Promise<Map<string, MembershipRecord>> {
    const [rows, catalog] = await Promise.all([
      this.ds.query<{ member_id: string; doc: MemberDoc }[]>(
        'SELECT member_id, doc FROM member_states WHERE community_id = $1 AND member_id = ANY($2)',
        [communityId, [...memberIds]],
      ),
      this.catalog(communityId),
    ]);
    const docs = new Map(rows.map((r) => [r.member_id, r.doc]));
    return new Map(
      memberIds.map((m) => [m, this.view(communityId, m, docs.get(m) ?? emptyMemberDoc(), catalog, at)]),
    );
  }

  /** Stripe events no member could be found for yet (visible to admins as anomalies). */
  async unlinked(communityId: string): Promise<{ eventId: string; reason: string; keys: string[] }[]> {
    const rows = await this.ds.query<{ event_id: string; reason: string; keys: string[] }[]>(
      'SELECT event_id, reason, keys FROM stripe_unlinked WHERE community_id = $1 ORDER BY recorded_at, event_id',
      [communityId],
    );
    return rows.map((r) => ({ eventId: r.event_id, reason: r.reason, keys: r.keys }));
  }

  private view(
    communityId: string,
    memberId: string,
    doc: MemberDoc,
    catalog: Catalog | null,
    at: EpochMs,
  ): MembershipRecord {
    const { tiers, tierByRank, groups, events, prices, priceIdByStripePriceId, productByStripeProductId } =
      catalog ?? {
        tiers: {},
        tierByRank: {},
        groups: {},
        events: {},
        prices: {},
        priceIdByStripePriceId: {},
        productByStripeProductId: {},
      };
    const view = membershipView(
      doc.state,
      {
        ...(catalog?.community && { community: catalog.community }),
        tiers,
        tierByRank,
        groups,
        events,
        prices,
        priceIdByStripePriceId,
        productByStripeProductId,
      },
      at,
    );
    return { ...view, communityId, memberId, paymentActionRequired: paymentActionRequired(doc) };
  }
}

/**
 * Stripe events of every community parked because no member could be found for them, counted up
 * to `cap + 1` (a larger table is not read through for a gauge). Needs a connection that sees every
 * community (the projector's).
 */
export async function countUnlinkedStripeEvents(ds: DataSource, cap: number): Promise<number> {
  const [row] = await ds.query<{ n: number }[]>(
    'SELECT count(*)::int AS n FROM (SELECT 1 FROM stripe_unlinked LIMIT $1) parked',
    [cap + 1],
  );
  return row.n;
}

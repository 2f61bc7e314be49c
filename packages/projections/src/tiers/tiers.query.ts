import type { SubscriptionSnapshot } from '@gatehouse/domain';
import type { RecordedEvent } from '@gatehouse/ledger';
import type { DataSource } from 'typeorm';
import type { MemberDoc } from '../membership/membership.projection';

export type ProrationOutcomeRecord = {
  invoiceId: string;
  memberId: string | null;
  customerId: string | null;
  subscriptionId: string | null;
  fromStripePriceId: string | null;
  toStripePriceId: string | null;
  credit: number;
  charge: number;
  net: number;
  currency: string;
  effectiveAt: Date;
  previewMatched: boolean | null;
  /** The invoice event; `data` and `sequence` once the archive has it. */
  causedBy: RecordedEvent & { sequence?: number };
};

export type MemberMigration = {
  migrationId: string;
  kind: string;
  timing: string;
  subscriptionId: string;
  fromStripePriceId: string;
  toPriceId: string;
  toStripePriceId: string;
  effectiveAt: Date;
};

export type MigrationProgress = {
  migrationId: string;
  kind: string;
  scheduled: number;
  skipped: number;
  completedAt: Date | null;
};

/** Reads of the tiers read model; every lookup is scoped by community. */
export class TiersQuery {
  constructor(private readonly ds: DataSource) {}

  async outcomes(communityId: string, memberId?: string): Promise<ProrationOutcomeRecord[]> {
    const rows = await this.ds.query<Record<string, unknown>[]>(
      `SELECT o.*, le.data AS event_data, le.sequence AS event_sequence
         FROM proration_outcomes o LEFT JOIN ledger_events le ON le.id = o.caused_by->>'id'
        WHERE o.community_id = $1 AND ($2::text IS NULL OR o.member_id = $2)
        ORDER BY o.effective_at, o.invoice_id`,
      [communityId, memberId ?? null],
    );
    return rows.map((r) => ({
      invoiceId: r.invoice_id as string,
      memberId: r.member_id as string | null,
      customerId: r.customer_id as string | null,
      subscriptionId: r.subscription_id as string | null,
      fromStripePriceId: r.from_stripe_price_id as string | null,
      toStripePriceId: r.to_stripe_price_id as string | null,
      credit: r.credit as number,
      charge: r.charge as number,
      net: r.net as number,
      currency: r.currency as string,
      effectiveAt: r.effective_at as Date,
      previewMatched: r.preview_matched as boolean | null,
      causedBy: {
        ...(r.caused_by as Omit<RecordedEvent, 'data'>),
        data: r.event_data ?? null,
        ...(r.event_sequence !== null && { sequence: Number(r.event_sequence) }),
      },
    }));
  }

  /** Price migrations that concern this member, newest effective date last. */
  async memberMigrations(communityId: string, memberId: string): Promise<MemberMigration[]> {
    const rows = await this.ds.query<Record<string, unknown>[]>(
      `SELECT * FROM price_migration_members WHERE community_id = $1 AND member_id = $2 ORDER BY effective_at, migration_id`,
      [communityId, memberId],
    );
    return rows.map((r) => ({
      migrationId: r.migration_id as string,
      kind: r.kind as string,
      timing: r.timing as string,
      subscriptionId: r.subscription_id as string,
      fromStripePriceId: r.from_stripe_price_id as string,
      toPriceId: r.to_price_id as string,
      toStripePriceId: r.to_stripe_price_id as string,
      effectiveAt: r.effective_at as Date,
    }));
  }

  /** Subscriptions a migration has already switched or scheduled (a rerun skips them). */
  async migratedSubscriptions(communityId: string, migrationId: string): Promise<Set<string>> {
    const rows = await this.ds.query<{ subscription_id: string }[]>(
      'SELECT subscription_id FROM price_migration_members WHERE community_id = $1 AND migration_id = $2',
      [communityId, migrationId],
    );
    return new Set(rows.map((r) => r.subscription_id));
  }

  async progress(communityId: string, migrationId: string): Promise<MigrationProgress | null> {
    const rows = await this.ds.query<Record<string, unknown>[]>(
      'SELECT * FROM price_migrations WHERE community_id = $1 AND migration_id = $2',
      [communityId, migrationId],
    );
    const r = rows[0];
    return r
      ? {
          migrationId,
          kind: r.kind as string,
          scheduled: r.scheduled as number,
          skipped: r.skipped as number,
          completedAt: (r.completed_at as Date | null) ?? null,
        }
      : null;
  }

  /** Members whose latest view of a subscription is on one of these Stripe prices (from the membership read model). */
  async subscribersOf(
    communityId: string,
    stripePriceIds: readonly string[],
  ): Promise<{ memberId: string; subscription: SubscriptionSnapshot }[]> {
    const rows = await this.ds.query<{ member_id: string; doc: MemberDoc }[]>(
      `SELECT member_id, doc FROM member_states WHERE community_id = $1 ORDER BY member_id`,
      [communityId],
    );
    const wanted = new Set(stripePriceIds);
    return rows.flatMap((r) =>
      Object.values(r.doc.state.subscriptions)
        .filter((s) => wanted.has(s.latest.priceId))
        .map((s) => ({ memberId: r.member_id, subscription: s.latest })),
    );
  }
}

import { Column, Entity, PrimaryColumn } from 'typeorm';

/** What an invoice's proration lines came to, and whether the preview sent with the change agreed. */
@Entity({ name: 'proration_outcomes' })
export class ProrationOutcomeRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @PrimaryColumn({ name: 'invoice_id', type: 'text' })
  invoiceId!: string;

  @Column({ name: 'member_id', type: 'text', nullable: true })
  memberId!: string | null;

  @Column({ name: 'customer_id', type: 'text', nullable: true })
  customerId!: string | null;

  @Column({ name: 'subscription_id', type: 'text', nullable: true })
  subscriptionId!: string | null;

  @Column({ name: 'from_stripe_price_id', type: 'text', nullable: true })
  fromStripePriceId!: string | null;

  @Column({ name: 'to_stripe_price_id', type: 'text', nullable: true })
  toStripePriceId!: string | null;

  @Column({ type: 'integer' })
  credit!: number;

  @Column({ type: 'integer' })
  charge!: number;

  @Column({ type: 'integer' })
  net!: number;

  @Column({ type: 'text' })
  currency!: string;

  @Column({ name: 'effective_at', type: 'timestamptz' })
  effectiveAt!: Date;

  /** Null when no preview was issued with the same proration date. */
  @Column({ name: 'preview_matched', type: 'boolean', nullable: true })
  previewMatched!: boolean | null;

  @Column({ name: 'request_event_id', type: 'text', nullable: true })
  requestEventId!: string | null;

  /** The envelope (without data) of the invoice event that recorded it. */
  @Column({ name: 'caused_by', type: 'jsonb' })
  causedBy!: unknown;
}

/** One subscriber of a price migration: switched now, or at `effectiveAt` (their renewal). */
@Entity({ name: 'price_migration_members' })
export class PriceMigrationMemberRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @PrimaryColumn({ name: 'migration_id', type: 'text' })
  migrationId!: string;

  @PrimaryColumn({ name: 'subscription_id', type: 'text' })
  subscriptionId!: string;

  @Column({ name: 'member_id', type: 'text' })
  memberId!: string;

  @Column({ type: 'text' })
  kind!: string;

  @Column({ type: 'text' })
  timing!: string;

  @Column({ name: 'from_stripe_price_id', type: 'text' })
  fromStripePriceId!: string;

  @Column({ name: 'to_price_id', type: 'text' })
  toPriceId!: string;

  @Column({ name: 'to_stripe_price_id', type: 'text' })
  toStripePriceId!: string;

  @Column({ name: 'effective_at', type: 'timestamptz' })
  effectiveAt!: Date;

  @Column({ name: 'event_id', type: 'text' })
  eventId!: string;
}

export const tiersEntities = [ProrationOutcomeRow, PriceMigrationMemberRow];

import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One member of one community: the folded `MemberDoc` (membership state, invoice actions, email). */
@Entity({ name: 'member_states' })
export class MemberStateRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @PrimaryColumn({ name: 'member_id', type: 'text' })
  memberId!: string;

  @Column({ type: 'text', nullable: true })
  email!: string | null;

  // json, not jsonb: always read and written whole, and json is cheaper to write.
  @Column({ type: 'json' })
  doc!: unknown;

  /** Number of access changes written so far (the next change's ordinal). */
  @Column({ name: 'history_count', type: 'integer' })
  historyCount!: number;
}

/** Every translated fact applied to a member, for `membership(asOf)`. */
@Entity({ name: 'member_facts' })
export class MemberFactRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @PrimaryColumn({ name: 'member_id', type: 'text' })
  memberId!: string;

  @PrimaryColumn({ name: 'event_id', type: 'text' })
  eventId!: string;

  @Column({ name: 'observed_at', type: 'timestamptz' })
  observedAt!: Date;

  @Column({ type: 'json' })
  fact!: unknown;
}

/** What a Stripe id (`cus_`, `sub_`, `pi_`, `ch_`) or an `email:` key is known to belong to. First link wins. */
@Entity({ name: 'stripe_links' })
export class StripeLinkRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @PrimaryColumn({ name: 'stripe_key', type: 'text' })
  stripeKey!: string;

  @Column({ name: 'member_id', type: 'text' })
  memberId!: string;
}

/** A Stripe event no member could be found for yet; applied as soon as one of its keys is linked. */
@Entity({ name: 'stripe_unlinked' })
export class StripeUnlinkedRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @PrimaryColumn({ name: 'event_id', type: 'text' })
  eventId!: string;

  @Column({ type: 'text', array: true })
  keys!: string[];

  @Column({ type: 'json' })
  reading!: unknown;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ name: 'recorded_at', type: 'timestamptz' })
  recordedAt!: Date;

  @Column({ type: 'text' })
  reason!: string;
}

import { Column, Entity, PrimaryColumn } from 'typeorm';
import {
  MemberFactRow,
  MemberStateRow,
  StripeLinkRow,
  StripeUnlinkedRow,
} from '../membership/membership.row';

/**
 * One version of one access interval. Bitemporal: `[valid_from, valid_until)` is when access holds;
 * `[recorded_at, superseded_at)` is when the ledger believed it (null superseded_at = current belief).
 */
@Entity({ name: 'access_grants' })
export class AccessGrantRow {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ name: 'community_id', type: 'text' })
  communityId!: string;

  @Column({ name: 'member_id', type: 'text' })
  memberId!: string;

  @Column({ name: 'resource_kind', type: 'text' })
  resourceKind!: string;

  @Column({ name: 'resource_id', type: 'text', nullable: true })
  resourceId!: string | null;

  @Column({ type: 'text' })
  source!: string;

  @Column({ name: 'valid_from', type: 'timestamptz' })
  validFrom!: Date;

  @Column({ name: 'valid_until', type: 'timestamptz', nullable: true })
  validUntil!: Date | null;

  @Column({ type: 'boolean' })
  suspended!: boolean;

  @Column({ name: 'caused_by', type: 'text' })
  causedBy!: string;

  @Column({ name: 'recorded_at', type: 'timestamptz' })
  recordedAt!: Date;

  @Column({ name: 'superseded_at', type: 'timestamptz', nullable: true })
  supersededAt!: Date | null;
}

/** One row of a member's access history. */
@Entity({ name: 'access_changes' })
export class AccessChangeRow {
  @Column({ type: 'text' })
  id!: string;

  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @PrimaryColumn({ name: 'member_id', type: 'text' })
  memberId!: string;

  @PrimaryColumn({ type: 'integer' })
  ordinal!: number;

  @Column({ name: 'resource_kind', type: 'text' })
  resourceKind!: string;

  @Column({ name: 'resource_id', type: 'text', nullable: true })
  resourceId!: string | null;

  @Column({ type: 'text' })
  change!: string;

  @Column({ type: 'text' })
  source!: string;

  @Column({ name: 'effective_at', type: 'timestamptz' })
  effectiveAt!: Date;

  @Column({ name: 'recorded_at', type: 'timestamptz' })
  recordedAt!: Date;

  @Column({ name: 'valid_until', type: 'timestamptz', nullable: true })
  validUntil!: Date | null;

  @Column({ type: 'text', nullable: true })
  actor!: string | null;

  /** The ledger event behind the grant that changed. */
  @Column({ name: 'caused_by', type: 'text' })
  causedBy!: string;

  /** The ledger event whose arrival produced this change. */
  @Column({ name: 'event_id', type: 'text' })
  eventId!: string;
}

/** The catalog as the access projection folded it (kept apart so replay never depends on another projection's progress). */
@Entity({ name: 'access_catalogs' })
export class AccessCatalogRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @Column({ type: 'jsonb' })
  state!: unknown;
}

/** The TypeORM entities of the membership and access read models. */
export const membershipAccessEntities = [
  MemberStateRow,
  MemberFactRow,
  StripeLinkRow,
  StripeUnlinkedRow,
  AccessGrantRow,
  AccessChangeRow,
  AccessCatalogRow,
];

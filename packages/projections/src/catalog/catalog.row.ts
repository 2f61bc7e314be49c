import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** One community's catalog: settings, tiers, groups, events and prices, folded from admin facts. */
@Entity({ name: 'catalog_communities' })
export class CatalogRow {
  @PrimaryColumn({ name: 'community_id', type: 'text' })
  communityId!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text' })
  region!: string;

  @Index({ unique: true, where: 'stripe_account_id IS NOT NULL' })
  @Column({ name: 'stripe_account_id', type: 'text', nullable: true })
  stripeAccountId!: string | null;

  /** The domain's `Catalog` for this community. */
  @Column({ type: 'jsonb' })
  state!: unknown;

  /** Number of catalog facts folded so far. */
  @Column({ type: 'integer' })
  version!: number;
}

import { NotFoundError, type Catalog } from '@gatehouse/domain';
import type { DataSource } from 'typeorm';

/** Reads of the catalog read model. Every lookup is scoped by community. */
export class CatalogQuery {
  constructor(private readonly ds: DataSource) {}

  async get(communityId: string): Promise<Catalog | null> {
    const rows = await this.ds.query<{ state: Catalog }[]>(
      'SELECT state FROM catalog_communities WHERE community_id = $1',
      [communityId],
    );
    return rows[0]?.state ?? null;
  }

  /** The catalog of a community that exists, or NOT_FOUND. */
  async getOrThrow(communityId: string): Promise<Catalog> {
    const catalog = await this.get(communityId);
    if (!catalog?.community) throw new NotFoundError('Community not found');
    return catalog;
  }

  async exists(communityId: string): Promise<boolean> {
    const rows = await this.ds.query<unknown[]>('SELECT 1 FROM catalog_communities WHERE community_id = $1', [
      communityId,
    ]);
    return rows.length > 0;
  }

  /** The community that linked this Stripe (Connect) account, if any. */
  async communityForStripeAccount(stripeAccountId: string): Promise<string | null> {
    const rows = await this.ds.query<{ community_id: string }[]>(
      'SELECT community_id FROM catalog_communities WHERE stripe_account_id = $1',
      [stripeAccountId],
    );
    return rows[0]?.community_id ?? null;
  }

  async list(): Promise<
    { communityId: string; name: string; region: string; stripeAccountId: string | null }[]
  > {
    const rows = await this.ds.query<
      { community_id: string; name: string; region: string; stripe_account_id: string | null }[]
    >('SELECT community_id, name, region, stripe_account_id FROM catalog_communities ORDER BY community_id');
    return rows.map((r) => ({
      communityId: r.community_id,
      name: r.name,
      region: r.region,
      stripeAccountId: r.stripe_account_id,
    }));
  }
}

import {
  CATALOG_EVENT_TYPES,
  emptyCatalog,
  evolveCatalog,
  type Catalog,
  type CatalogEvent,
} from '@gatehouse/domain';
import type { RecordedEvent } from '@gatehouse/ledger';
import type { Projection, ProjectionTx } from '../runtime/projection';

// Member-level admin facts change no catalog row; the membership projection folds them.
const MEMBER_FACTS = new Set(['MemberJoined', 'ComplimentaryAccessGranted', 'ComplimentaryAccessRevoked']);
export const CATALOG_FACT_TYPES: readonly string[] = CATALOG_EVENT_TYPES.filter((t) => !MEMBER_FACTS.has(t));

type Loaded = { catalog: Catalog; version: number };

/** Folds admin catalog facts into one row per community (the domain `Catalog` as jsonb). */
export class CatalogProjection implements Projection {
  readonly name = 'catalog';
  readonly types = CATALOG_FACT_TYPES;
  readonly tables = ['catalog_communities'];

  async apply(tx: ProjectionTx, events: readonly RecordedEvent[]): Promise<void> {
    const ids = [...new Set(events.map((e) => e.communityId))];
    const rows = await tx.query<{ community_id: string; state: Catalog; version: number }>(
      'SELECT community_id, state, version FROM catalog_communities WHERE community_id = ANY($1)',
      [ids],
    );
    const loaded = new Map<string, Loaded>(
      rows.map((r) => [r.community_id, { catalog: r.state, version: r.version }]),
    );
    for (const event of events) {
      const current = loaded.get(event.communityId) ?? { catalog: emptyCatalog(), version: 0 };
      const fact = { type: event.type, data: event.data } as CatalogEvent;
      loaded.set(event.communityId, {
        catalog: evolveCatalog(current.catalog, fact),
        version: current.version + 1,
      });
    }
    for (const [communityId, { catalog, version }] of loaded) {
      const c = catalog.community;
      // A fact for a community that was never created has nothing to attach to.
      if (!c) continue;
      await tx.query(
        `INSERT INTO catalog_communities (community_id, name, region, stripe_account_id, state, version)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (community_id) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region,
           stripe_account_id = EXCLUDED.stripe_account_id, state = EXCLUDED.state, version = EXCLUDED.version`,
        [communityId, c.name, c.region, c.stripeAccountId ?? null, JSON.stringify(catalog), version],
      );
    }
  }
}

import type { DataSource } from 'typeorm';
import { PLATFORM_HOLD, type ReconcileWindowStore } from '@gatehouse/stripe';

/** One region's database, and whether it is the default region's (which keeps the platform's window). */
export type WindowRegion = { dataSource: DataSource; home: boolean };

const keyOf = (account: string | null) => account ?? PLATFORM_HOLD;

/**
 * The reconciler's windows in `stripe_reconcile_windows`, each kept in the database of the region
 * whose catalog links the account (the platform's in the default region's): a connected account's
 * id stays in its community's region. An account no region links is not kept; it is listed over a
 * first window until a community links it.
 */
export function postgresReconcileWindowStore(regions: readonly WindowRegion[]): ReconcileWindowStore {
  return {
    async read(accounts) {
      const keys = [...new Set(accounts.map(keyOf))];
      const found = await Promise.all(
        regions.map((r) =>
          r.dataSource.query<{ account: string; listed_from: Date }[]>(
            'SELECT account, listed_from FROM stripe_reconcile_windows WHERE account = ANY($1::text[])',
            [keys],
          ),
        ),
      );
      const out = new Map<string | null, number>();
      for (const { account, listed_from } of found.flat()) {
        const key = account === PLATFORM_HOLD ? null : account;
        out.set(key, Math.max(listed_from.getTime(), out.get(key) ?? 0));
      }
      return out;
    },
    async listed(accounts, startedMs) {
      const keys = [...new Set(accounts.map(keyOf))];
      if (keys.length === 0) return;
      await Promise.all(
        regions.map((r) =>
          r.dataSource.query(
            `INSERT INTO stripe_reconcile_windows AS w (account, listed_from)
             SELECT a, to_timestamp($2::double precision / 1000)
               FROM unnest($1::text[]) AS a
              WHERE (a = $3 AND $4)
                 OR EXISTS (SELECT 1 FROM catalog_communities c WHERE c.stripe_account_id = a)
             ON CONFLICT (account) DO UPDATE SET listed_from = greatest(w.listed_from, EXCLUDED.listed_from)`,
            [keys, startedMs, PLATFORM_HOLD, r.home],
          ),
        ),
      );
    },
  };
}

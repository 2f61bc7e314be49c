import type { DataSource } from 'typeorm';

/** Runs `fn` while no other caller holds the same Stripe account's lock. */
export type StripeAccountLock = <T>(accountId: string, fn: () => Promise<T>) => Promise<T>;

/**
 * A Stripe account's lock as a PostgreSQL advisory lock in `dataSource`'s database: callers that
 * share that database (every region of a server, every server of a deployment, which all use the
 * default region's database) link an account one at a time, so the second one finds it linked.
 * Each region's catalog keeps accounts unique only among its own communities.
 */
export function advisoryStripeAccountLock(dataSource: DataSource): StripeAccountLock {
  return async (accountId, fn) => {
    const session = dataSource.createQueryRunner();
    await session.connect();
    const key = `gatehouse:stripe-account:${accountId}`;
    try {
      await session.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      try {
        return await fn();
      } finally {
        // A broken connection has dropped the lock with its session.
        await session
          .query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key])
          .catch(() => undefined);
      }
    } finally {
      await session.release();
    }
  };
}

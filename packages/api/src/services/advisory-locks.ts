import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource, QueryRunner } from 'typeorm';

/**
 * A PostgreSQL session-level advisory lock on one key, in one database: the callers that share that
 * database (every region of a server, every server of a deployment and the command line, which all
 * use the default region's database) hold it one at a time. A connection that breaks drops the lock
 * with its session.
 */
export type AdvisoryLock = {
  /**
   * Runs `fn` holding the lock, waiting while another session holds it: `waiting` is told once when
   * it has to, with the holder when the database shows it. With a `signal`, the wait ends when it is
   * aborted (rejecting with its reason).
   */
  hold<T>(
    fn: () => Promise<T>,
    options?: { signal?: AbortSignal; waiting?: (holder: LockHolder | undefined) => void },
  ): Promise<T>;
  /** Runs `fn` holding the lock if no other session holds it; answers `{ held: false }` otherwise. */
  holdIfFree<T>(fn: () => Promise<T>): Promise<{ held: true; value: T } | { held: false }>;
};

/**
 * Who holds a lock: its session's `application_name` (the `as` of the holder's `advisoryLock`), and
 * since when (that session's last change of state).
 */
export type LockHolder = { as: string; since: Date };

/** How often a wait that can be stopped asks for the lock again. */
const RETRY_MS = 500;

const HOLDER_SQL = `SELECT a.application_name AS "as", a.state_change AS since
   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`;

/**
 * The lock on `key`. With `as`, a holder names itself (in its session's `application_name`, at most
 * 63 bytes) for those that wait: `gatehouse stripe reconcile on host-a, pid 4242`.
 */
export function advisoryLock(
  dataSource: DataSource,
  key: string,
  options: { as?: string } = {},
): AdvisoryLock {
  const inSession = async <T>(fn: (session: QueryRunner) => Promise<T>): Promise<T> => {
    const session = dataSource.createQueryRunner();
    await session.connect();
    try {
      if (options.as) await session.query(`SELECT set_config('application_name', $1, false)`, [options.as]);
      return await fn(session);
    } finally {
      if (options.as) await session.query('RESET application_name').catch(() => undefined);
      await session.release();
    }
  };
  const tryLock = async (session: QueryRunner): Promise<boolean> =>
    (await session.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key]))[0].ok === true;
  const holder = async (session: QueryRunner): Promise<LockHolder | undefined> => {
    const [row] = (await session.query(HOLDER_SQL, [key]).catch(() => [])) as {
      as: string | null;
      since: Date;
    }[];
    return row?.as ? { as: row.as, since: row.since } : undefined;
  };
  const holding = async <T>(session: QueryRunner, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } finally {
      // A broken connection has dropped the lock with its session.
      await session.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
    }
  };
  return {
    hold: (fn, { signal, waiting } = {}) =>
      inSession(async (session) => {
        if (!(await tryLock(session))) {
          waiting?.(await holder(session));
          if (!signal) await session.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
          else
            do {
              signal.throwIfAborted();
              await sleep(RETRY_MS, undefined, { signal }).catch(() => signal.throwIfAborted());
            } while (!(await tryLock(session)));
        }
        return holding(session, fn);
      }),
    holdIfFree: (fn) =>
      inSession(async (session) =>
        (await tryLock(session)) ? { held: true, value: await holding(session, fn) } : { held: false },
      ),
  };
}

/** Runs `fn` while no other caller holds the same Stripe account's lock. */
export type StripeAccountLock = <T>(accountId: string, fn: () => Promise<T>) => Promise<T>;

/**
 * A Stripe account's lock in `dataSource`'s database: an account is linked one at a time, so the
 * second caller finds it linked. Each region's catalog keeps accounts unique only among its own
 * communities.
 */
export function advisoryStripeAccountLock(dataSource: DataSource): StripeAccountLock {
  return (accountId, fn) => advisoryLock(dataSource, `gatehouse:stripe-account:${accountId}`).hold(fn);
}

/**
 * Who reads Stripe in bulk: the servers' reconcile interval runs, or operators' commands
 * (`gatehouse stripe reconcile`, `gatehouse stripe drift`).
 */
export type StripeBulkReader = 'server' | 'command';

/**
 * The lock of the runs that read Stripe in bulk, one of each kind at a time: the servers' interval
 * runs among themselves (a server that lost the projector lease during its run and the next one),
 * operators' commands among themselves. Each run keeps under its own rate
 * (`RECONCILE_REQUESTS_PER_SECOND`, 10 a second, by default), so a server's run beside a command's
 * stays at 20, under Stripe's 25 of test mode; and an operator's long run never holds back the
 * server's recovery of missed webhooks.
 */
export function stripeBulkReadLock(
  dataSource: DataSource,
  reader: StripeBulkReader,
  as: string,
): AdvisoryLock {
  return advisoryLock(dataSource, `gatehouse:stripe-bulk-read:${reader}`, {
    as: `${as} on ${hostname()}, pid ${process.pid}`,
  });
}

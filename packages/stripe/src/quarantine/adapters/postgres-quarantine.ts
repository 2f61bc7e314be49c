import { Pool, type PoolConfig } from 'pg';
import type { StripeEvent } from '../../stripe-event';
import type { QuarantineStore } from '../quarantine.port';

export type PostgresQuarantineOptions = {
  /** A connection string, or an existing pool (which `close()` then leaves open). */
  connectionString?: string;
  pool?: Pool;
  /** Settings of the pool made for `connectionString` (e.g. its `Client`). */
  poolConfig?: Omit<PoolConfig, 'connectionString'>;
  /** Table name; lowercase letters, digits and `_`. */
  table?: string;
};

/** What is held for one connected account. */
export type HeldAccount = {
  accountId: string;
  events: number;
  /** `created` of the oldest event held. */
  oldestCreated: Date;
  /** When the latest event was held. */
  lastHeldAt: Date;
};

/** Which held events: of these accounts only, created before this instant only. */
export type HeldFilter = { accountIds?: readonly string[]; createdBefore?: Date };

export class PostgresQuarantineStore implements QuarantineStore {
  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly table: string;

  constructor(options: PostgresQuarantineOptions) {
    if (!options.pool && !options.connectionString)
      throw new TypeError('PostgresQuarantineStore needs a pool or a connectionString');
    this.pool =
      options.pool ?? new Pool({ ...options.poolConfig, connectionString: options.connectionString });
    this.ownsPool = !options.pool;
    // An idle client losing its connection (a database restart) must not crash the process; the
    // next query reports the failure and the webhook answers 503.
    if (this.ownsPool) this.pool.on('error', () => undefined);
    this.table = options.table ?? 'stripe_quarantine';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.table)) throw new TypeError(`Invalid table name ${this.table}`);
  }

  async init(): Promise<void> {
    await this.pool.query(`CREATE TABLE IF NOT EXISTS ${this.table} (
      account_id text NOT NULL,
      event_id text NOT NULL,
      event_created timestamptz NOT NULL,
      event jsonb NOT NULL,
      held_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, event_id)
    )`);
    // The oldest hold, read for a gauge at every scrape, without reading the table.
    await this.pool.query(`CREATE INDEX IF NOT EXISTS ${this.table}_held_at ON ${this.table} (held_at)`);
  }

  /** When the event held longest was held, or null when nothing is held. */
  async oldestHeldAt(): Promise<Date | null> {
    const { rows } = await this.pool.query<{ at: Date | null }>(
      `SELECT min(held_at) AS at FROM ${this.table}`,
    );
    return rows[0].at;
  }

  async put(accountId: string, event: StripeEvent): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.table} (account_id, event_id, event_created, event) VALUES ($1, $2, to_timestamp($3), $4)
       ON CONFLICT (account_id, event_id) DO NOTHING`,
      [accountId, event.id, event.created, JSON.stringify(event)],
    );
  }

  async take(accountId: string): Promise<StripeEvent[]> {
    const { rows } = await this.pool.query<{ event: StripeEvent }>(
      `SELECT event FROM ${this.table} WHERE account_id = $1 ORDER BY event_created, event_id`,
      [accountId],
    );
    return rows.map((r) => r.event);
  }

  async discard(accountId: string, eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.pool.query(`DELETE FROM ${this.table} WHERE account_id = $1 AND event_id = ANY($2::text[])`, [
      accountId,
      [...eventIds],
    ]);
  }

  async heldAmong(accountIds: readonly string[]): Promise<string[]> {
    if (accountIds.length === 0) return [];
    // One probe of the key per account: the table may hold many events of accounts never linked.
    const { rows } = await this.pool.query<{ account_id: string }>(
      `SELECT a.account_id FROM unnest($1::text[]) AS a(account_id)
        WHERE EXISTS (SELECT 1 FROM ${this.table} q WHERE q.account_id = a.account_id)
        ORDER BY a.account_id`,
      [[...new Set(accountIds)]],
    );
    return rows.map((r) => r.account_id);
  }

  /**
   * Events held, counted up to `cap`: cheap at any size (accounts that never link keep theirs held,
   * and a gauge asks every few seconds).
   */
  async count(cap: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${this.table} LIMIT $1) x`,
      [Math.max(0, Math.floor(cap))],
    );
    return rows[0].n;
  }

  /**
   * Every account with events held, the longest waiting first; or only those of `filter.accountIds`,
   * counting only events created before `filter.createdBefore`.
   */
  async held(filter: HeldFilter = {}): Promise<HeldAccount[]> {
    const { rows } = await this.pool.query<{ account_id: string; events: number; oldest: Date; last: Date }>(
      `SELECT account_id, count(*)::int AS events, min(event_created) AS oldest, max(held_at) AS last
         FROM ${this.table}
        WHERE ($1::text[] IS NULL OR account_id = ANY($1)) AND ($2::timestamptz IS NULL OR event_created < $2)
        GROUP BY account_id ORDER BY min(held_at), account_id`,
      [filter.accountIds ? [...filter.accountIds] : null, filter.createdBefore ?? null],
    );
    return rows.map((r) => ({
      accountId: r.account_id,
      events: r.events,
      oldestCreated: r.oldest,
      lastHeldAt: r.last,
    }));
  }

  /**
   * Deletes the events held for `filter.accountIds` (created before `filter.createdBefore`, when
   * given), `batchSize` at a time. Each batch is deleted in a transaction that commits only after
   * `keep` has returned with its events (e.g. written to a file), so an event is never deleted
   * without having been kept; should `keep` fail, the batch stays held and the error is thrown.
   * Returns how many were deleted.
   */
  async drop(
    filter: HeldFilter & { accountIds: readonly string[] },
    options: { batchSize?: number; keep?: (events: StripeEvent[]) => Promise<void> } = {},
  ): Promise<number> {
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 1_000));
    let dropped = 0;
    for (;;) {
      const client = await this.pool.connect();
      let deleted: StripeEvent[];
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        // In key order, which the primary key serves without sorting what is left.
        const { rows } = await client.query<{ event: StripeEvent }>(
          `DELETE FROM ${this.table} q USING (
              SELECT account_id, event_id FROM ${this.table}
               WHERE account_id = ANY($1) AND ($2::timestamptz IS NULL OR event_created < $2)
               ORDER BY account_id, event_id LIMIT $3 FOR UPDATE) batch
            WHERE q.account_id = batch.account_id AND q.event_id = batch.event_id
            RETURNING q.event`,
          [[...filter.accountIds], filter.createdBefore ?? null, batchSize],
        );
        deleted = rows.map((r) => r.event);
        if (deleted.length > 0 && options.keep) await options.keep(deleted);
        await client.query('COMMIT');
      } catch (err) {
        // A connection that cannot even roll back goes, rather than back to the pool.
        await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
        throw err;
      } finally {
        client.release(broken);
      }
      dropped += deleted.length;
      if (deleted.length < batchSize) return dropped;
    }
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }
}

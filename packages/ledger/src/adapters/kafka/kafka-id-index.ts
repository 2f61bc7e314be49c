import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { toLedgerError } from '../postgres/postgres-errors';

export type IndexedId = { id: string; partition: number; offset: bigint };

/**
 * The arbiter of duplicate ids in the Kafka ledger: for each id, the (partition, offset) of the one
 * record readers deliver. Claims only ever move to a lower offset of the same partition, and readers
 * claim in offset order, so every reader delivers the same record.
 */
export class KafkaIdIndex {
  readonly table: string;
  private readonly pool: Pool;

  constructor(
    connectionString: string,
    prefix: string,
    poolConfig: Omit<PoolConfig, 'connectionString'> = {},
  ) {
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new RangeError(`Invalid ledger prefix: ${prefix}`);
    this.table = `${prefix}_kafka_ids`;
    this.pool = new Pool({ max: 20, connectionTimeoutMillis: 5_000, ...poolConfig, connectionString });
    this.pool.on('error', () => undefined);
  }

  async init(): Promise<void> {
    await this.run('init', async (c) => {
      await c.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`${this.table}:init`]);
      try {
        await c.query(`
          CREATE TABLE IF NOT EXISTS ${this.table} (
            id           text    PRIMARY KEY,
            community_id text    NOT NULL,
            partition    integer,
            "offset"     bigint
          );
          CREATE INDEX IF NOT EXISTS ${this.table}_community ON ${this.table} (community_id, "offset");`);
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`${this.table}:init`]);
      }
    });
  }

  /**
   * Reserve ids for producing, inside one transaction held open by `produce`: concurrent appenders
   * of the same id wait for it, then see its position. `produce` gets the ids to write and returns
   * where they landed; ids already known are returned with their position.
   */
  async reserveAndProduce(
    entries: readonly { id: string; communityId: string }[],
    produce: (ids: ReadonlySet<string>) => Promise<Map<string, { partition: number; offset: bigint }>>,
  ): Promise<{ known: Map<string, IndexedId>; produced: Map<string, IndexedId> }> {
    const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.run('append', async (c) => {
      await c.query('BEGIN');
      try {
        const reserved = await c.query<{ id: string }>(
          `INSERT INTO ${this.table} (id, community_id)
           SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (id) DO NOTHING RETURNING id`,
          [sorted.map((e) => e.id), sorted.map((e) => e.communityId)],
        );
        const fresh = new Set(reserved.rows.map((r) => r.id));
        const knownIds = sorted.filter((e) => !fresh.has(e.id)).map((e) => e.id);
        const known = new Map<string, IndexedId>();
        if (knownIds.length > 0) for (const r of await this.lookupWith(c, knownIds)) known.set(r.id, r);
        const produced = new Map<string, IndexedId>();
        if (fresh.size > 0) {
          const landed = await produce(fresh);
          const ids = [...landed.keys()];
          await c.query(
            `UPDATE ${this.table} AS k SET partition = v.partition, "offset" = v.off
               FROM unnest($1::text[], $2::int[], $3::bigint[]) AS v(id, partition, off) WHERE k.id = v.id`,
            [
              ids,
              ids.map((id) => landed.get(id)!.partition),
              ids.map((id) => landed.get(id)!.offset.toString()),
            ],
          );
          for (const [id, at] of landed) produced.set(id, { id, ...at });
        }
        await c.query('COMMIT');
        return { known, produced };
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * Claim records read from one partition (in offset order) and return the ids whose claimed record
   * is exactly the one given: those are delivered, the rest are duplicates.
   */
  async claim(
    partition: number,
    records: readonly { id: string; communityId: string; offset: bigint }[],
  ): Promise<Set<string>> {
    const first = new Map<string, { id: string; communityId: string; offset: bigint }>();
    for (const r of records) if (!first.has(r.id)) first.set(r.id, r);
    const rows = [...first.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const ids = rows.map((r) => r.id);
    return this.run('read', async (c) => {
      await c.query(
        `INSERT INTO ${this.table} AS k (id, community_id, partition, "offset")
         SELECT id, community_id, $3::int, off FROM unnest($1::text[], $2::text[], $4::bigint[]) AS v(id, community_id, off)
         ON CONFLICT (id) DO UPDATE SET partition = excluded.partition, "offset" = excluded."offset"
           WHERE k."offset" IS NULL OR (k.partition = excluded.partition AND k."offset" > excluded."offset")`,
        [ids, rows.map((r) => r.communityId), partition, rows.map((r) => r.offset.toString())],
      );
      const winners = new Set<string>();
      for (const r of await this.lookupWith(c, ids)) {
        const mine = first.get(r.id);
        if (mine && r.partition === partition && r.offset === mine.offset) winners.add(r.id);
      }
      return winners;
    });
  }

  /** The ids among `ids` with a record in the log (appended through the adapter, or already read). */
  async held(ids: readonly string[]): Promise<Set<string>> {
    return this.run(
      'holds',
      async (c) => new Set((await this.lookupWith(c, [...new Set(ids)])).map((r) => r.id)),
    );
  }

  /** The last claimed record of a community (appended through the adapter, or already read). */
  async lastOf(communityId: string): Promise<IndexedId | undefined> {
    return this.run('head', async (c) => {
      const { rows } = await c.query<{ id: string; partition: number; offset: string }>(
        `SELECT id, partition, "offset"::text AS offset FROM ${this.table}
          WHERE community_id = $1 AND "offset" IS NOT NULL ORDER BY "offset" DESC LIMIT 1`,
        [communityId],
      );
      return rows[0]
        ? { id: rows[0].id, partition: rows[0].partition, offset: BigInt(rows[0].offset) }
        : undefined;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async lookupWith(c: PoolClient, ids: string[]): Promise<IndexedId[]> {
    const { rows } = await c.query<{ id: string; partition: number; offset: string }>(
      `SELECT id, partition, "offset"::text AS offset FROM ${this.table} WHERE id = ANY($1::text[]) AND "offset" IS NOT NULL`,
      [ids],
    );
    return rows.map((r) => ({ id: r.id, partition: r.partition, offset: BigInt(r.offset) }));
  }

  private async run<T>(what: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toLedgerError(err, `Kafka id index ${what}`);
    }
    try {
      return await fn(client);
    } catch (err) {
      throw toLedgerError(err, `Kafka id index ${what}`);
    } finally {
      client.release();
    }
  }
}

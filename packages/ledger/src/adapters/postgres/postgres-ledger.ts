import { Client, Pool, type PoolClient, type PoolConfig } from 'pg';
import { assertCommunitiesExist, envelopeJson, prepareBatch, type CommunityExists } from '../../envelope';
import type {
  AppendResult,
  BatchHandler,
  EventSource,
  Ledger,
  NewEvent,
  Position,
  ReadOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
} from '../../ledger.port';
import { LedgerUnavailableError } from '../../ledger.errors';
import { runSubscription, Waker } from '../../subscription';
import { isPostgresUnavailable, refusedAsReadOnly, toLedgerError } from './postgres-errors';
import { compareCursors, LivePages } from './live-pages';
import { whenReadOnly } from './answer-deadline';
import {
  appendFunctionSql,
  initSql,
  legacyAppendFunctionSql,
  tableNames,
  type TableNames,
} from './postgres-ledger.sql';

export type PostgresLedgerOptions = {
  /** A connection string, or an existing pool (which `close()` then leaves open). */
  connectionString?: string;
  pool?: Pool;
  poolConfig?: Omit<PoolConfig, 'connectionString'>;
  /**
   * Prefix of the table, sequence, function and NOTIFY channel (`<prefix>_log`, ...), so several
   * regions can each keep their own ledger. Lowercase letters, digits and `_`.
   */
  prefix?: string;
  /** When given, appends for communities it denies are refused with `UnknownCommunityError`. */
  communityExists?: CommunityExists;
  /** Subscriptions poll this often when no NOTIFY arrives (ms). */
  pollIntervalMs?: number;
  /**
   * While subscribers listen, their connection is asked a trivial query this often (ms, default
   * 10 s), so that one gone silent (its host gone, nothing closed) is found out by the answer
   * deadline of the pool's client class (`clientWithAnswerDeadline`) and opened again; the
   * subscribers then read at once, as notifications may have been missed.
   */
  listenerCheckMs?: number;
  /** How long a read of every community waits for transactions open at its start to finish (ms). */
  readSettleMs?: number;
  /**
   * While events keep arriving (the last page had some, but less than a full batch), a subscription
   * waits this long before reading again, so it reads batches rather than one event at a time: each
   * batch costs its consumer a transaction. A quiet ledger is read as soon as an append is notified.
   * Default 20 ms; 0 reads at once.
   */
  busyLingerMs?: number;
  /**
   * Told when a subscription of every community has had events to deliver, all behind a transaction
   * still open, for `heldBackReportMs` (default 10 s), then at most once a minute while it lasts:
   * the transaction is named when the database shows it.
   */
  onHeldBack?: (report: HeldBackReport) => void;
  heldBackReportMs?: number;
  clock?: () => Date;
};

/** Subscribers of every community kept waiting by an open transaction (see `onHeldBack`). */
export type HeldBackReport = {
  /** How long the subscription has had nothing it could deliver while events were committed. */
  forMs: number;
  /** The oldest transaction with an id on the server, when it can be seen. */
  transaction: {
    /** null for a prepared transaction. */
    pid: number | null;
    database: string | null;
    state: string | null;
    startedAt: Date | null;
    /** Its last statement, cut at 300 characters (hidden without the pg_read_all_stats role). */
    query: string | null;
  } | null;
};

type Row = {
  tx: string;
  position: string;
  seq: string;
  id: string;
  community_id: string;
  type: string;
  subject: string | null;
  occurred_at: string;
  recorded_at: string;
  source: EventSource;
  actor: string | null;
  causation_id: string | null;
  correlation_id: string | null;
  schema_version: number;
  data: unknown;
};

/** Where a read stands; `seq` is the community sequence number when reading one community. */
type Cursor = { tx: string; position: string; seq?: string };

// Instants leave the database already in the envelope's spelling: parsing them into Dates costs more.
const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const COLUMNS = `l.tx::text AS tx, l.position::text AS position, l.community_seq::text AS seq, l.id, l.community_id, l.type,
  l.subject, to_char(l.occurred_at AT TIME ZONE 'UTC', ${ISO}) AS occurred_at,
  to_char(l.recorded_at AT TIME ZONE 'UTC', ${ISO}) AS recorded_at, l.source, l.actor, l.causation_id, l.correlation_id,
  l.schema_version, l.data`;

const NOTIFY_EVERY_MS = 5;
const HELD_BACK_RETRY_MS = 20;
/** A report of subscribers held back is repeated at most this often. */
const HELD_BACK_REPEAT_MS = 60_000;
/** Attempts of an append refused as read-only, each on another connection (see `query`). */
const READ_ONLY_ATTEMPTS = 4;
/** Without a listening connection, a subscription reads (and tries to listen) at least this often. */
const UNHEARD_POLL_MS = 1_000;

const ORIGIN: Cursor = { tx: '0', position: '0', seq: '0' };

function formatPosition(tx: string, position: string): Position {
  return `${tx}.${position}`;
}

function parsePosition(p: Position): Cursor {
  const m = /^(\d+)\.(\d+)$/.exec(p);
  if (!m) throw new RangeError(`Not a PostgreSQL ledger position: ${p}`);
  return { tx: m[1], position: m[2] };
}

function toEvent(r: Row): RecordedEvent {
  return {
    id: r.id,
    type: r.type,
    communityId: r.community_id,
    subject: r.subject,
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
    source: r.source,
    actor: r.actor,
    causationId: r.causation_id,
    correlationId: r.correlation_id,
    schemaVersion: r.schema_version,
    data: r.data,
    position: formatPosition(r.tx, r.position),
  };
}

/**
 * The ledger in one PostgreSQL table. Positions are `<xid>.<position>`: the writing transaction's id,
 * then a sequence number. Appends of one community are serialized by a transaction-level advisory
 * lock taken before the transaction gets its id, so inside a community the xid order is the commit
 * order. Readers of every community only pass transactions older than every open one
 * (`pg_snapshot_xmin`), so an event whose transaction commits late is never skipped.
 */
export class PostgresLedger implements Ledger {
  readonly kind = 'postgres' as const;
  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly names: TableNames;
  private readonly clock: () => Date;
  private readonly pollIntervalMs: number;
  private readonly readSettleMs: number;
  private readonly busyLingerMs: number;
  private listener: Client | undefined;
  private listening: Promise<void> | undefined;
  private listenerCheck: NodeJS.Timeout | undefined;
  private readonly listenerCheckMs: number;
  private readonly wakers = new Set<Waker>();
  private notifying: Promise<void> | undefined;
  private notifyAgain = false;
  private closed = false;
  /** Settled rows lately read by this process's subscriptions, shared among them. */
  private subscriptions = 0;
  /** When subscribers were last told to be held back (ms), shared by this instance's subscriptions. */
  private heldBackReportedAt = Number.NEGATIVE_INFINITY;
  /** The `data` column's type, read by `init` or by the first append. */
  private dataType: Promise<'json' | 'jsonb'> | undefined;
  private readonly livePages = new LivePages<Row>((after, limit) =>
    this.page(after, { limit, bound: 'live' }),
  );

  constructor(private readonly options: PostgresLedgerOptions) {
    if (options.pool) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      if (!options.connectionString) throw new TypeError('PostgresLedger needs a connectionString or a pool');
      this.pool = new Pool({
        connectionTimeoutMillis: 5_000,
        max: 20,
        ...options.poolConfig,
        connectionString: options.connectionString,
      });
      // An idle client losing its connection must not crash the process; the next query reports it.
      this.pool.on('error', () => undefined);
      this.ownsPool = true;
    }
    this.names = tableNames(options.prefix ?? 'ledger');
    this.clock = options.clock ?? (() => new Date());
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.listenerCheckMs = options.listenerCheckMs ?? 10_000;
    this.readSettleMs = options.readSettleMs ?? 1_000;
    this.busyLingerMs = options.busyLingerMs ?? 20;
  }

  /** The table holding the events (e.g. for analysts' SQL). */
  get tableName(): string {
    return this.names.log;
  }

  async init(): Promise<void> {
    const client = await this.connect('init');
    try {
      // Serialize concurrent init() calls: CREATE ... IF NOT EXISTS is not race-free.
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`${this.names.log}:init`]);
      try {
        await client.query(initSql(this.names));
        const dataType = await this.readDataType(client);
        await client.query(
          dataType === 'jsonb' ? legacyAppendFunctionSql(this.names) : appendFunctionSql(this.names),
        );
        this.dataType = Promise.resolve(dataType);
        await this.preferLz4(client);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`${this.names.log}:init`]);
      }
    } catch (err) {
      throw toLedgerError(err, 'init');
    } finally {
      client.release();
    }
  }

  /**
   * The type of the log's `data` column: `json` since the log keeps the text it is given; a log
   * created before that has `jsonb`, and keeps it until its owner converts it (a table rewrite:
   * `ALTER TABLE <prefix>_log ALTER COLUMN data TYPE json`, then a restart).
   */
  private async readDataType(client: Pick<PoolClient, 'query'>): Promise<'json' | 'jsonb'> {
    const { rows } = await client.query<{ type: string }>(
      `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = $1::regclass AND attname = 'data'`,
      [this.names.log],
    );
    return rows[0]?.type === 'jsonb' ? 'jsonb' : 'json';
  }

  /**
   * Payloads are a few kilobytes of JSON, so PostgreSQL compresses them on every append: lz4 does it
   * several times faster than the default pglz. Servers built without lz4 keep the default.
   */
  private async preferLz4(client: PoolClient): Promise<void> {
    const { rows } = await client.query<{ compression: string | null }>(
      `SELECT attcompression::text AS compression FROM pg_attribute
        WHERE attrelid = $1::regclass AND attname = 'data'`,
      [this.names.log],
    );
    if (rows[0]?.compression === 'l') return;
    try {
      await client.query(`ALTER TABLE ${this.names.log} ALTER COLUMN data SET COMPRESSION lz4`);
    } catch (err) {
      if ((err as { code?: string }).code !== '0A000') throw err; // feature_not_supported: no lz4 here
    }
  }

  async append(events: NewEvent[]): Promise<AppendResult[]> {
    if (events.length === 0) return [];
    const { envelopes, json } = prepareBatch(events, this.clock());
    await assertCommunitiesExist(envelopes, this.options.communityExists);
    this.dataType ??= (async () => {
      try {
        return await this.readDataType(this.pool);
      } catch (err) {
        this.dataType = undefined;
        throw toLedgerError(err, 'append');
      }
    })();
    const legacy = (await this.dataType) === 'jsonb';
    const { rows } = await this.query<{ id: string; tx: string; position: string; appended: boolean }>(
      'append',
      `SELECT out_id AS id, out_tx::text AS tx, out_position::text AS position, out_appended AS appended
         FROM ${this.names.appendFn}(${legacy ? '$1::jsonb' : '$1::json, $2::json, $3::text[], $4::text[]'})`,
      legacy
        ? [`[${json.map(envelopeJson).join(',')}]`]
        : [
            `[${json.map((j) => j.meta).join(',')}]`,
            `[${json.map((j) => j.data).join(',')}]`,
            envelopes.map((e) => e.id),
            [...new Set(envelopes.map((e) => e.communityId))],
          ],
      { writeAgain: true },
    );
    if (rows.some((r) => r.appended)) this.notifyAppended();
    return rows.map((r) => ({ id: r.id, position: formatPosition(r.tx, r.position), appended: r.appended }));
  }

  async *read(options: ReadOptions = {}): AsyncIterable<RecordedEvent> {
    const pageSize = options.pageSize ?? 1_000;
    const bound = options.communityId === undefined ? await this.settledBound() : undefined;
    let cursor = options.after ? parsePosition(options.after) : ORIGIN;
    for (;;) {
      const rows = await this.page(cursor, { ...options, limit: pageSize, bound });
      for (const r of rows) yield toEvent(r);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      cursor = { tx: last.tx, position: last.position, seq: last.seq };
    }
  }

  subscribe(consumer: string, options: SubscribeOptions, handler: BatchHandler): Subscription {
    const maxBatch = options.maxBatch ?? 500;
    let cursor = options.after ? parsePosition(options.after) : ORIGIN;
    let waker: Waker | undefined;
    const reader = `${consumer}#${++this.subscriptions}`;
    return runSubscription(
      async (state) => {
        waker = state.waker;
        this.wakers.add(waker);
        await this.listen().catch(() => undefined);
        /** Since when every event after the cursor has been held back (ms), if it is. */
        let heldSince: number | undefined;
        while (!state.stopped) {
          let rows: Row[];
          try {
            rows = await this.livePage(cursor, options, maxBatch, reader);
          } catch (err) {
            // A database that went away comes back: keep polling; anything else ends the subscription.
            if (!isPostgresUnavailable(err) && !(err instanceof LedgerUnavailableError)) throw err;
            await state.waker.wait(this.pollIntervalMs);
            continue;
          }
          if (rows.length > 0) {
            heldSince = undefined;
            await handler(rows.map(toEvent));
            const last = rows[rows.length - 1];
            cursor = { tx: last.tx, position: last.position, seq: last.seq };
            if (rows.length === maxBatch) continue;
            if (this.busyLingerMs > 0 && !state.stopped) {
              await new Promise((r) => setTimeout(r, this.busyLingerMs));
              continue;
            }
          }
          if (state.stopped) break;
          if (!this.listener) await this.listen().catch(() => undefined);
          // Events committed but held back behind an open transaction: look again soon, a NOTIFY
          // for them has already been spent.
          const heldBack =
            options.communityId === undefined &&
            (await this.existsAfter(cursor, options.types).catch(() => false));
          if (heldBack) {
            const now = Date.now();
            heldSince ??= now;
            this.heldBackFor(now - heldSince);
          } else heldSince = undefined;
          await state.waker.wait(
            heldBack
              ? HELD_BACK_RETRY_MS
              : this.listener
                ? this.pollIntervalMs
                : Math.min(this.pollIntervalMs, UNHEARD_POLL_MS),
          );
        }
      },
      () => {
        if (waker) this.wakers.delete(waker);
        this.livePages.forget(reader);
      },
    );
  }

  /** Tells `onHeldBack`, naming the transaction that holds the subscribers back, if it is time to. */
  private heldBackFor(forMs: number): void {
    const { onHeldBack } = this.options;
    const now = Date.now();
    if (
      !onHeldBack ||
      forMs < (this.options.heldBackReportMs ?? 10_000) ||
      now - this.heldBackReportedAt < HELD_BACK_REPEAT_MS
    )
      return;
    this.heldBackReportedAt = now;
    void this.oldestTransaction()
      .catch(() => null)
      .then((transaction) => onHeldBack({ forMs, transaction }))
      // A listener's own failure must not end the process as an unhandled rejection.
      .catch(() => undefined);
  }

  /** The oldest transaction holding an id on the server (the one readers of every community wait for). */
  private async oldestTransaction(): Promise<HeldBackReport['transaction']> {
    const { rows } = await this.pool.query<{
      pid: number | null;
      database: string | null;
      state: string | null;
      started_at: Date | null;
      query: string | null;
    }>(
      `SELECT pid, database, state, started_at, query FROM (
         SELECT pid, datname AS database, state, xact_start AS started_at, left(query, 300) AS query,
                age(backend_xid) AS age
           FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
         UNION ALL
         SELECT NULL, database, 'prepared', prepared, 'PREPARE TRANSACTION ' || quote_literal(gid), age(transaction)
           FROM pg_prepared_xacts
       ) t ORDER BY age DESC LIMIT 1`,
    );
    const r = rows[0];
    return r
      ? { pid: r.pid, database: r.database, state: r.state, startedAt: r.started_at, query: r.query }
      : null;
  }

  /**
   * The last event of a community, or of the whole log among the transactions older than every open
   * one: an append still in flight always sorts after the head, so reading after it misses nothing.
   */
  async head(communityId?: string): Promise<Position | null> {
    const { rows } =
      communityId === undefined
        ? await this.query<Cursor>(
            'head',
            `SELECT tx::text AS tx, position::text AS position FROM ${this.names.log} l
              WHERE l.tx < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY l.tx DESC, l.position DESC LIMIT 1`,
          )
        : await this.query<Cursor>(
            'head',
            `SELECT tx::text AS tx, position::text AS position FROM ${this.names.log} l
              WHERE community_id = $1 ORDER BY l.community_seq DESC LIMIT 1`,
            [communityId],
          );
    return rows[0] ? formatPosition(rows[0].tx, rows[0].position) : null;
  }

  async countAfter(after: Position | undefined, cap: number): Promise<number> {
    const cursor = after ? parsePosition(after) : ORIGIN;
    // Through the (tx, position) key. Every committed event is counted, also one a reader cannot
    // pass yet because an older transaction is still open: it has yet to be read all the same (a
    // projector held back that way shows as behind, not as caught up).
    const { rows } = await this.query<{ n: number }>(
      'count',
      `SELECT count(*)::int AS n FROM (
         SELECT 1 FROM ${this.names.log} l WHERE (l.tx, l.position) > ($1::xid8, $2::bigint) LIMIT $3) x`,
      [cursor.tx, cursor.position, Math.max(0, Math.floor(cap))],
    );
    return rows[0].n;
  }

  async holds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.query<{ id: string }>(
      'holds',
      `SELECT id FROM ${this.names.log} WHERE id = ANY($1::text[])`,
      [[...new Set(ids)]],
    );
    return new Set(rows.map((r) => r.id));
  }

  comparePositions(a: Position, b: Position): number {
    return compareCursors(parsePosition(a), parsePosition(b));
  }

  advance(checkpoint: Position | undefined, event: RecordedEvent): Position {
    if (checkpoint === undefined) return event.position;
    return this.comparePositions(checkpoint, event.position) >= 0 ? checkpoint : event.position;
  }

  async ping(): Promise<void> {
    await this.query('ping', 'SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.livePages.clear();
    for (const w of this.wakers) w.wake();
    await this.notifying;
    const listener = this.listener;
    this.listener = undefined;
    clearInterval(this.listenerCheck);
    await listener?.end().catch(() => undefined);
    if (this.ownsPool) await this.pool.end();
  }

  /**
   * Wake subscribers (of every instance) after a commit. Not a NOTIFY inside the append: that holds
   * PostgreSQL's global notify lock through the commit's flush and serializes every append. Wake-ups
   * are coalesced (at most one per NOTIFY_EVERY_MS); a lost one is covered by polling.
   */
  private notifyAppended(): void {
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    this.notifying = (async () => {
      do {
        this.notifyAgain = false;
        await new Promise((r) => setTimeout(r, NOTIFY_EVERY_MS));
        await this.pool.query('SELECT pg_notify($1, $2)', [this.names.channel, '']).catch(() => undefined);
      } while (this.notifyAgain && !this.closed);
      this.notifying = undefined;
    })();
  }

  private async connect(what: string) {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw toLedgerError(err, what);
    }
  }

  /**
   * One statement on the pool; a failure that may pass reported as `LedgerUnavailableError`. With
   * `writeAgain`, a write refused as read-only is made again: it wrote nothing, and the pool closes
   * its connection (`clientWithAnswerDeadline`), which may be one of several left on a primary fenced
   * after a failover, so a later attempt reaches the new primary on a connection opened since (at
   * most `READ_ONLY_ATTEMPTS` in all).
   */
  private async query<T extends object>(
    what: string,
    sql: string,
    params?: unknown[],
    { writeAgain = false } = {},
  ) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<T & import('pg').QueryResultRow>(sql, params);
      } catch (err) {
        if (writeAgain && refusedAsReadOnly(err) && attempt < READ_ONLY_ATTEMPTS) continue;
        throw toLedgerError(err, what);
      }
    }
  }

  /**
   * Upper bound (exclusive xid) for a read of every community: waits briefly for the transactions
   * open at the start to finish, so a reader sees what was appended before it started.
   */
  private async settledBound(): Promise<string> {
    const deadline = Date.now() + this.readSettleMs;
    const { rows } = await this.query<{ xmax: string; xmin: string }>(
      'read',
      'SELECT pg_snapshot_xmax(s)::text AS xmax, pg_snapshot_xmin(s)::text AS xmin FROM pg_current_snapshot() s',
    );
    const target = BigInt(rows[0].xmax);
    let xmin = rows[0].xmin;
    while (BigInt(xmin) < target && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      const next = await this.query<{ xmin: string }>(
        'read',
        'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin',
      );
      xmin = next.rows[0].xmin;
    }
    return xmin;
  }

  private livePage(
    cursor: Cursor,
    o: { communityId?: string; types?: readonly string[] },
    limit: number,
    reader: string,
  ): Promise<Row[]> {
    if (o.communityId === undefined && o.types === undefined)
      return this.livePages.page(cursor, limit, reader);
    return this.page(cursor, { ...o, limit, bound: 'live' });
  }

  private async page(
    after: Cursor,
    o: { communityId?: string; types?: readonly string[]; limit: number; bound: string | 'live' | undefined },
  ): Promise<Row[]> {
    const params: unknown[] = [o.limit];
    const where: string[] = [];
    let order: string;
    if (o.communityId !== undefined) {
      // One community in its own sequence: appends of a community are serialized, so it is final.
      params.push(o.communityId, await this.communitySeq(o.communityId, after));
      where.push('l.community_id = $2', 'l.community_seq > $3::bigint');
      order = 'l.community_seq';
    } else {
      params.push(after.tx, after.position);
      where.push('(l.tx, l.position) > ($2::xid8, $3::bigint)');
      order = 'l.tx, l.position';
      if (o.bound === 'live') {
        // Only transactions older than every open one: nothing can still commit below them.
        where.push('l.tx < pg_snapshot_xmin(pg_current_snapshot())');
      } else if (o.bound !== undefined) {
        params.push(o.bound);
        where.push(`l.tx < $${params.length}::xid8`);
      }
    }
    if (o.types) {
      params.push(o.types);
      where.push(`l.type = ANY($${params.length}::text[])`);
    }
    const { rows } = await this.query<Row>(
      'read',
      `SELECT ${COLUMNS} FROM ${this.names.log} l WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT $1`,
      params,
    );
    return rows;
  }

  private async existsAfter(after: Cursor, types: readonly string[] | undefined): Promise<boolean> {
    // In log order from the cursor, so the index answers it however long the log (a plan that
    // filtered a scan of the table cost a full read of the log each time nothing was there).
    const { rows } = await this.query<{ found: number }>(
      'read',
      `SELECT 1 AS found FROM ${this.names.log} l WHERE (l.tx, l.position) > ($1::xid8, $2::bigint)
         ${types ? 'AND l.type = ANY($3::text[])' : ''} ORDER BY l.tx, l.position LIMIT 1`,
      types ? [after.tx, after.position, types] : [after.tx, after.position],
    );
    return rows.length > 0;
  }

  /** The community sequence number at or before a position (the position's own when it is the community's). */
  private async communitySeq(communityId: string, after: Cursor): Promise<string> {
    if (after.seq !== undefined) return after.seq;
    const own = await this.query<{ seq: string; community_id: string }>(
      'read',
      `SELECT community_seq::text AS seq, community_id FROM ${this.names.log} WHERE tx = $1::xid8 AND position = $2::bigint`,
      [after.tx, after.position],
    );
    if (own.rows[0]?.community_id === communityId) return own.rows[0].seq;
    const before = await this.query<{ seq: string }>(
      'read',
      `SELECT coalesce(max(community_seq), 0)::text AS seq FROM ${this.names.log}
        WHERE community_id = $1 AND (tx, position) <= ($2::xid8, $3::bigint)`,
      [communityId, after.tx, after.position],
    );
    return before.rows[0].seq;
  }

  private listen(): Promise<void> {
    if (this.closed || this.listener) return Promise.resolve();
    this.listening ??= (async () => {
      // The pool's client class: with an answer deadline, a silent connection is found out.
      const ClientClass = (this.pool as unknown as { Client?: typeof Client }).Client ?? Client;
      const client = new ClientClass({
        connectionString: this.options.connectionString ?? this.poolConnectionString(),
      });
      client.on('notification', () => {
        for (const w of this.wakers) w.wake();
      });
      const lost = () => {
        client.end().catch(() => undefined);
        if (this.listener !== client) return;
        this.listener = undefined;
        clearInterval(this.listenerCheck);
        // Appends notified meanwhile were missed: read now (and listen again).
        for (const w of this.wakers) w.wake();
      };
      client.on('error', lost);
      // On a read-only server (a primary fenced after a failover) it would hear none of the appends
      // made on the new primary, and answer its checks all the same: subscriptions would then read
      // only at each poll. PostgreSQL 14 and later say so as the session opens and when it changes.
      whenReadOnly(client, lost);
      try {
        await client.connect();
        await client.query(`LISTEN ${this.names.channel}`);
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      if (this.closed) {
        await client.end();
        return;
      }
      this.listener = client;
      let asking = false;
      this.listenerCheck = setInterval(() => {
        if (asking) return;
        asking = true;
        client
          .query('SELECT 1')
          .catch(lost)
          .finally(() => {
            asking = false;
          });
      }, this.listenerCheckMs);
      this.listenerCheck.unref();
    })().finally(() => {
      this.listening = undefined;
    });
    return this.listening;
  }

  private poolConnectionString(): string | undefined {
    return (this.pool as unknown as { options?: { connectionString?: string } }).options?.connectionString;
  }
}

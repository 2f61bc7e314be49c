import { createHash, randomBytes } from 'node:crypto';
import { readOnlySession, whenReadOnly, withDeadline, type Position } from '@gatehouse/ledger';
import type { Notification, Pool, PoolClient } from 'pg';
import pino, { type Logger } from 'pino';
import type { DataSource } from 'typeorm';

/**
 * What the projecting server tells the others on the same read models, in the transaction of the
 * batch it describes (PostgreSQL delivers a notification only when its transaction commits, and in
 * commit order): the communities a projection has passed, the members and catalogs whose access
 * changed, and that a rebuilt projection was swapped in.
 */
export type PeerMessage =
  | { t: 'progress'; p: string; l: [communityId: string, position: Position][] }
  | { t: 'access'; m: [communityId: string, memberId: string][]; c: string[] }
  /** A projection was rebuilt and swapped in: what it read is in the tables, not in messages. */
  | { t: 'reload' };

/** PostgreSQL refuses payloads of 8,000 bytes and more. */
const MAX_PAYLOAD_BYTES = 7_900;

/** One message as payloads under PostgreSQL's limit, its lists split across them in order. */
export function peerPayloads(message: PeerMessage): string[] {
  const whole = JSON.stringify(message);
  if (Buffer.byteLength(whole) <= MAX_PAYLOAD_BYTES) return [whole];
  const out: string[] = [];
  const split = <T>(items: readonly T[], build: (part: T[]) => PeerMessage) => {
    let part: T[] = [];
    let size = Buffer.byteLength(JSON.stringify(build([])));
    for (const item of items) {
      const bytes = Buffer.byteLength(JSON.stringify(item)) + 1;
      if (part.length > 0 && size + bytes > MAX_PAYLOAD_BYTES) {
        out.push(JSON.stringify(build(part)));
        part = [];
        size = Buffer.byteLength(JSON.stringify(build([])));
      }
      part.push(item);
      size += bytes;
    }
    if (part.length > 0) out.push(JSON.stringify(build(part)));
  };
  if (message.t === 'progress') split(message.l, (l) => ({ t: 'progress', p: message.p, l }));
  else if (message.t === 'access') {
    split(message.c, (c) => ({ t: 'access', m: [], c }));
    split(message.m, (m) => ({ t: 'access', m, c: [] }));
  }
  return out;
}

export type LeaseRole = 'leading' | 'following' | 'disconnected';

export type LeaseHandlers = {
  /** This server now holds the lease: it projects. */
  lead(): Promise<void>;
  /** The lease was lost with its connection: stop projecting. */
  lose(): Promise<void>;
  /** A message from the projecting server (only while following), one at a time, in commit order. */
  message(message: PeerMessage): Promise<void>;
  /** Following again after the connection broke: messages sent meanwhile were missed. */
  resync(): Promise<void>;
};

/** Answers in a row, from a lease that may not lead, that no server projects before it warns. */
const UNPROJECTED_WARNING = 3;

/** The advisory lock of the lease of the read models in schema `$1`. */
const LEASE_KEY = `hashtextextended('gatehouse:projector:' || $1, 0)`;

// An advisory lock on one bigint key shows as its high and low halves, with objsubid 1.
const HOLDER_SQL = `SELECT l.pid FROM pg_locks l
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND ((l.classid::int8 << 32) | l.objid::int8) = ${LEASE_KEY}`;

/**
 * The session holding the lease if it has been idle longer than `$2` seconds: a projecting server's
 * lease session answers a query every fifth of that, so one idle that long is gone (its host died,
 * or the network to it) though PostgreSQL still holds its lock: it sees no closed connection, and its
 * TCP keepalive would take hours.
 */
const STALE_HOLDER_SQL = `SELECT a.pid, extract(epoch FROM now() - a.state_change)::float8 AS idle
  FROM pg_stat_activity a
  WHERE a.pid = (${HOLDER_SQL}) AND a.state = 'idle' AND a.state_change < now() - make_interval(secs => $2)`;

/**
 * A lease session's `application_name`: `gatehouse-lease <read models> <l|f> <server> <retryMs>`,
 * `l` for a server that may lead and `f` for one that only follows, so that the servers of the same
 * read models can see one another waiting in `pg_stat_activity`.
 */
const LEASE_APPLICATION = 'gatehouse-lease';

/**
 * The longest interval at which another server that may lead asks for the lease of the read models
 * named `$1` (0 when there is none), other than the server `$2` (a session of its own that lost its
 * connection may still be listed).
 */
const OTHERS_ASKING_SQL = `SELECT coalesce(max(CASE WHEN split_part(application_name, ' ', 5) ~ '^[0-9]{1,9}$'
    THEN split_part(application_name, ' ', 5)::int END), 0) AS retry_ms
  FROM pg_stat_activity
  WHERE datname = current_database() AND pid <> pg_backend_pid()
    AND split_part(application_name, ' ', 1) = '${LEASE_APPLICATION}'
    AND split_part(application_name, ' ', 2) = $1 AND split_part(application_name, ' ', 3) = 'l'
    AND split_part(application_name, ' ', 4) <> $2`;

/**
 * The database session (backend pid) holding the projector lease of this data source's read models,
 * or null. Ending it (`pg_terminate_backend`) moves the projecting to another server.
 */
export async function projectorLeaseHolder(ds: DataSource): Promise<number | null> {
  const rows = await ds.query<{ pid: number }[]>(HOLDER_SQL, [
    (await ds.query<{ schema: string }[]>('SELECT current_schema() AS schema'))[0].schema,
  ]);
  return rows[0]?.pid ?? null;
}

/**
 * One projecting server per set of read models. Every server that opens them asks for the lease, a
 * PostgreSQL advisory lock held by a connection of its own; the one that gets it projects, the others
 * follow what it commits through LISTEN on the same connection (so they answer `canAccess` and wait
 * for their own writes alike) and ask again every `retryMs`. A server that stops or dies drops the
 * lock with its connection, and a follower takes over; the server whose connection broke, back,
 * leaves the others two of their intervals to ask first (it asks at once when no other server may
 * lead), so that the lease moves rather than going back to the server that just lost it. The server
 * that projects queries its lease session every fifth of `staleMs`; when its database stops
 * answering for half of it, it stops projecting; and when that session has been idle for `staleMs`
 * (the server's host died, or the network to it), the others end the session, which drops the
 * lock. A session whose server says it is read-only (a primary fenced after a failover, a standby:
 * see `readOnlySession`) is never used for the lease, and one that becomes so counts as broken. A
 * lease started with `lead: false` never asks: its server only follows.
 */
export class ProjectorLease {
  private readonly log: Logger;
  private readonly retryMs: number;
  private readonly staleMs: number;
  private readonly mayLead: boolean;
  private schema = '';
  /** `readModels`, worked out once. */
  private schemaName = '';
  private client: PoolClient | null = null;
  private handlers: LeaseHandlers | null = null;
  private state: LeaseRole = 'disconnected';
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private everConnected = false;
  /** A lease that may not lead: how many times in a row it found no server projecting. */
  private unprojected = 0;
  /** Ending a silent holder's session failed once already (it is said once). */
  private cannotEnd = false;
  /** The last session it opened was on a read-only server (said once until one is not). */
  private openedReadOnly = false;
  /** This server's name among the lease sessions (see `LEASE_APPLICATION`). */
  private readonly instance = randomBytes(4).toString('hex');
  /** It lost the lease with its connection: when back, the others ask first. */
  private yieldNext = false;
  /** Messages and role changes, one after another. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ds: DataSource,
    options: {
      log?: Logger;
      retryMs?: number;
      /** False: never ask for the lease, only follow (a server kept off projecting). Default true. */
      lead?: boolean;
      /** A lease session idle this long has lost its server (default 15 s). */
      staleMs?: number;
    } = {},
  ) {
    this.log = options.log ?? pino({ name: 'projector-lease' });
    this.retryMs = options.retryMs ?? 2_000;
    this.staleMs = options.staleMs ?? 15_000;
    this.mayLead = options.lead ?? true;
  }

  /** The notification channel of these read models (their schema in this database). */
  get channel(): string {
    return `gatehouse_projector_${this.readModels}`;
  }

  /** A short name of these read models (their schema), the same on every server. */
  private get readModels(): string {
    if (!this.schemaName) throw new Error('the projector lease has not been started');
    return this.schemaName;
  }

  role(): LeaseRole {
    return this.state;
  }

  isLeader(): boolean {
    return this.state === 'leading';
  }

  /** Connects and asks for the lease once; resolves leading or following. */
  async start(handlers: LeaseHandlers): Promise<void> {
    this.handlers = handlers;
    const [{ schema }] = await this.ds.query<{ schema: string }[]>('SELECT current_schema() AS schema');
    this.schema = schema;
    this.schemaName = createHash('sha256').update(schema).digest('hex').slice(0, 16);
    await this.connect();
    await this.chain;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.chain;
    const client = this.client;
    this.client = null;
    if (this.state === 'leading') await this.handlers?.lose();
    this.state = 'disconnected';
    if (client) {
      // Ending the session drops the lock and the LISTEN with it.
      client.release(true);
    }
  }

  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(step).catch((err: unknown) => {
      this.log.error({ err }, 'projector lease: a step failed');
    });
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let client: PoolClient | null = null;
    try {
      client = await (this.ds.driver as unknown as { master: Pool }).master.connect();
      client.on('notification', (n: Notification) => this.received(n));
      const broken = client;
      client.on('error', (err) => this.broke(broken, err));
      client.on('end', () => this.broke(broken, new Error('connection ended')));
      whenReadOnly(client, () => this.broke(broken, new ReadOnlyLeaseSessionError()));
      const name = [
        LEASE_APPLICATION,
        this.readModels,
        this.mayLead ? 'l' : 'f',
        this.instance,
        this.retryMs,
      ];
      await client.query(`SELECT set_config('application_name', $1, false)`, [name.join(' ')]);
      await client.query(`LISTEN "${this.channel}"`);
      // A session on a read-only server (a primary fenced after a failover, a standby) is on a
      // server the others may no longer reach: a lock there is no lease, and what is told on the
      // new primary never arrives there. PostgreSQL 14 and later say so when the session opens,
      // and with the answer to a query after the setting changed (a connection the pool had kept).
      if (readOnlySession(client)) throw new ReadOnlyLeaseSessionError();
      if (this.stopped) {
        client.release(true);
        return;
      }
      this.client = client;
    } catch (err) {
      client?.release(true);
      if (!(err instanceof ReadOnlyLeaseSessionError))
        this.log.warn({ err }, 'projector lease: cannot connect; trying again');
      else if (!this.openedReadOnly)
        this.log.warn({ err }, 'projector lease: the database is read-only here; trying again');
      this.openedReadOnly = err instanceof ReadOnlyLeaseSessionError;
      this.schedule();
      return;
    }
    if (this.openedReadOnly) this.log.info('projector lease: the database takes writes again');
    this.openedReadOnly = false;
    const resumed = this.everConnected;
    this.everConnected = true;
    this.state = 'following';
    if (resumed) this.enqueue(() => this.handlers!.resync());
    if (this.yieldNext) {
      this.yieldNext = false;
      const othersMs = await this.othersAsking(this.client);
      if (othersMs > 0) {
        this.log.info('projector lease: another server asks for it; this one waits before asking again');
        return this.schedule(2 * othersMs);
      }
    }
    await this.tryLead();
  }

  /** The longest interval at which another server that may lead asks for the lease; 0 if none. */
  private async othersAsking(client: PoolClient): Promise<number> {
    try {
      const { rows } = await this.answered(
        client.query<{ retry_ms: number }>(OTHERS_ASKING_SQL, [this.readModels, this.instance]),
      );
      return rows[0].retry_ms;
    } catch (err) {
      this.broke(client, err);
      return 0;
    }
  }

  private async tryLead(): Promise<void> {
    const client = this.client;
    if (this.stopped || !client || this.state !== 'following') return;
    if (!this.mayLead) return this.watchLeader(client);
    let acquired = false;
    try {
      const [row] = (
        await this.answered(
          client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LEASE_KEY}) AS ok`, [this.schema]),
        )
      ).rows;
      acquired = row.ok;
    } catch (err) {
      this.broke(client, err);
      return;
    }
    if (acquired && this.client === client && !this.stopped) {
      // Its own messages would only be delivered back to it, one per batch.
      await client.query(`UNLISTEN "${this.channel}"`).catch((err: unknown) => this.broke(client, err));
      if (this.client !== client) return;
      this.state = 'leading';
      this.log.info('projector lease taken: this server projects');
      this.enqueue(() => this.handlers!.lead());
      this.schedule(this.staleMs / 5);
      return;
    }
    await this.endStaleHolder(client);
    this.schedule();
  }

  /** While leading: the lease session answers, or this server stops projecting. */
  private async heartbeat(client: PoolClient): Promise<void> {
    try {
      await this.answered(client.query('SELECT 1'));
    } catch (err) {
      this.broke(client, err);
      return;
    }
    if (this.client === client && this.state === 'leading') this.schedule(this.staleMs / 5);
  }

  /**
   * A query on the lease session, given half of `staleMs` to answer: a silent connection (no answer,
   * nothing closed) counts as broken, on a projecting server and on the others alike.
   */
  private answered<T>(query: Promise<T>): Promise<T> {
    const ms = this.staleMs / 2;
    return withDeadline(
      query,
      ms,
      () => new Error(`the database did not answer the lease session within ${ms / 1000} s`),
    );
  }

  /** Ends the session of a projecting server that is gone (see `STALE_HOLDER_SQL`). */
  private async endStaleHolder(client: PoolClient): Promise<void> {
    try {
      const stale = (
        await client.query<{ pid: number; idle: number }>(STALE_HOLDER_SQL, [
          this.schema,
          this.staleMs / 1000,
        ])
      ).rows;
      for (const { pid, idle } of stale) {
        await client.query('SELECT pg_terminate_backend($1)', [pid]);
        this.log.warn(
          { pid, idleSeconds: Math.round(idle) },
          'the projecting server stopped answering: its lease session ended, so that another server projects',
        );
      }
    } catch (err) {
      // Said once, not at every attempt (ending another role's session needs pg_signal_backend).
      if (this.cannotEnd) return;
      this.cannotEnd = true;
      this.log.warn(
        { err },
        'projector lease: cannot end the session of a projecting server that stopped answering',
      );
    }
  }

  /**
   * A server that may not lead asks, as often as the others ask for the lease, whether any server
   * holds it: nothing is projected while none does, so it says so, once, when three answers in a row
   * found none (a handover between servers that may lead takes less), and once it is over.
   */
  private async watchLeader(client: PoolClient): Promise<void> {
    let held: boolean;
    try {
      held = (await this.answered(client.query(HOLDER_SQL, [this.schema]))).rows.length > 0;
    } catch (err) {
      this.broke(client, err);
      return;
    }
    if (held) {
      if (this.unprojected >= UNPROJECTED_WARNING) this.log.info('a server projects these read models again');
      this.unprojected = 0;
      await this.endStaleHolder(client);
    } else if (++this.unprojected === UNPROJECTED_WARNING) {
      this.log.warn(
        'no server projects these read models: webhooks and changes are kept in the ledger but not projected until a server with GATEHOUSE_PROJECTOR=on runs',
      );
    }
    this.schedule();
  }

  private schedule(delayMs = this.retryMs): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const client = this.client;
      if (!client) void this.connect();
      else if (this.state === 'leading') void this.heartbeat(client);
      else void this.tryLead();
    }, delayMs);
    this.timer.unref();
  }

  private received(n: Notification): void {
    if (this.state !== 'following' || n.channel !== this.channel || !n.payload) return;
    let message: PeerMessage;
    try {
      message = JSON.parse(n.payload) as PeerMessage;
    } catch {
      return;
    }
    this.enqueue(() => this.handlers!.message(message));
  }

  private broke(client: PoolClient, err: unknown): void {
    if (this.client !== client) return;
    this.client = null;
    client.release(true);
    const wasLeading = this.state === 'leading';
    this.state = 'disconnected';
    this.log.warn({ err, wasLeading }, 'projector lease: connection lost; connecting again');
    if (wasLeading) {
      this.yieldNext = true;
      this.enqueue(() => this.handlers!.lose());
    }
    this.schedule();
  }
}

/** The lease session's server said it is read-only: a fenced primary or a standby. */
class ReadOnlyLeaseSessionError extends Error {
  constructor() {
    super(
      'the database server says this session is read-only (a primary fenced after a failover, or a standby)',
    );
    this.name = 'ReadOnlyLeaseSessionError';
  }
}

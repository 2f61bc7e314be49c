import {
  setAnswerDeadline,
  type Ledger,
  type Position,
  type RecordedEvent,
  type Subscription,
} from '@gatehouse/ledger';
import pino, { type Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';
import type { Projection, ProjectionTx } from './projection';
import { peerPayloads, type PeerMessage, type ProjectorLease } from './projector-lease';
import { CheckpointConflictError, ProjectorNotLeadingError, isInfrastructureError } from './projector.errors';

export type ProjectorOptions = {
  dataSource: DataSource;
  ledger: Ledger;
  projections: readonly Projection[];
  logger?: Logger;
  /** Largest batch applied in one transaction. */
  maxBatch?: number;
  /** Backoff after an infrastructure error: doubles from `initialMs` up to `maxMs`, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Subscription consumer name = prefix + projection name. */
  consumerPrefix?: string;
  /**
   * Shared read models: only the server holding the lease projects (and rebuilds); each live batch
   * tells the others what it passed and changed, in its own transaction.
   */
  lease?: ProjectorLease;
  /**
   * A batch's session that sits idle inside its transaction this long is ended by PostgreSQL
   * (`idle_in_transaction_session_timeout`): its server lost the database midway, and the checkpoint
   * row it locked must not hold up the server that projects next. Default 15 s; a batch's own pauses
   * between statements are milliseconds.
   */
  abandonedBatchMs?: number;
};

/** Read-your-writes target: an appended event's community and position, or event ids. */
export type WaitTarget = { communityId: string; position: Position } | { eventIds: readonly string[] };

export type ProjectionLag = {
  projection: string;
  behind: number;
  capped: boolean;
  checkpoint: Position | null;
};

export type RebuildReport = { projection: string; events: number; seconds: number };

/** Progress of a rebuild: events replayed so far into the named projection's shadow tables. */
export type RebuildProgress = { projection: string; events: number };

export type ProjectionStatus = {
  projection: string;
  running: boolean;
  checkpoint: Position | null;
  applied: number;
  batches: number;
  anomalies: number;
  lastError: string | null;
};

type Runner = {
  projection: Projection;
  types: ReadonlySet<string> | null;
  checkpoint: Position | null;
  lastByCommunity: Map<string, Position>;
  /**
   * On a following server, the projecting server's checkpoint as read before the access index was
   * last reloaded: what it covers is in the index even when the progress telling it was missed.
   */
  followed: Position | null;
  subscription: Subscription | null;
  loop: Promise<void> | null;
  stopping: boolean;
  wake: (() => void) | null;
  applied: number;
  batches: number;
  anomalies: number;
  lastError: string | null;
};

type BatchTarget = {
  /** Shadow schema searched before the live one (rebuilds). */
  shadowSchema?: string;
  /** Checkpoint move to write in the same transaction (live runs). */
  checkpoint?: { expected: Position | null; next: Position | null };
  /** Each community's last event in the batch, for the other servers (live runs with a lease). */
  passed?: [string, Position][];
};

const RECENT_IDS = 100_000;

/**
 * How every batch's transaction runs, as select-list items (they ride on a statement the batch sends
 * anyway). Read models are derived: a batch lost with the last moments before a database crash goes
 * with its checkpoint (one transaction) and is applied again from the ledger, so the commit need not
 * wait for its WAL to reach the disk. And a batch reads what it needs by key: with sequential scans
 * priced out, the planner probes the indexes even where a table's statistics are stale, instead of
 * reading a whole table of members into a hash for a few hundred keys (tables no index serves are
 * still scanned).
 */
export const BATCH_SETTINGS = `set_config('synchronous_commit', 'off', true), set_config('enable_seqscan', 'off', true)`;

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function txOf(manager: EntityManager, told?: PeerMessage[]): ProjectionTx {
  return {
    manager,
    query: <T>(sql: string, params?: readonly unknown[]) =>
      manager.query(sql, params ? [...params] : undefined) as Promise<T[]>,
    ...(told && { tellPeers: (message: PeerMessage) => void told.push(message) }),
  };
}

function reasonOf(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 2000);
  return String(err).slice(0, 2000);
}

/**
 * Runs projections against the ledger: each projection has its own subscription and checkpoint;
 * each batch's rows and checkpoint commit in one transaction, so a crash anywhere replays the
 * batch instead of double-applying it.
 */
export class Projector {
  private readonly ds: DataSource;
  private readonly ledger: Ledger;
  private readonly log: Logger;
  private readonly maxBatch: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly consumerPrefix: string;
  private readonly runners = new Map<string, Runner>();
  private readonly recent = new Map<string, { communityId: string; position: Position }>();
  private readonly listeners = new Set<() => void>();
  private readonly lease: ProjectorLease | undefined;
  /** `BATCH_SETTINGS` and the time after which PostgreSQL ends an abandoned batch. */
  private readonly batchSettings: string;

  constructor(options: ProjectorOptions) {
    this.lease = options.lease;
    const abandonedMs = Math.round(options.abandonedBatchMs ?? 15_000);
    if (!(abandonedMs > 0)) throw new RangeError('abandonedBatchMs must be positive');
    this.batchSettings = `${BATCH_SETTINGS}, set_config('idle_in_transaction_session_timeout', '${abandonedMs}', true)`;
    this.ds = options.dataSource;
    this.ledger = options.ledger;
    this.log = options.logger ?? pino({ name: 'projector' });
    this.maxBatch = options.maxBatch ?? 2000;
    this.backoff = options.backoff ?? { initialMs: 100, maxMs: 10_000 };
    this.consumerPrefix = options.consumerPrefix ?? 'projection:';
    for (const projection of options.projections) {
      if (this.runners.has(projection.name)) throw new Error(`Duplicate projection name: ${projection.name}`);
      this.runners.set(projection.name, {
        projection,
        types: projection.types ? new Set(projection.types) : null,
        checkpoint: null,
        lastByCommunity: new Map(),
        followed: null,
        subscription: null,
        loop: null,
        stopping: false,
        wake: null,
        applied: 0,
        batches: 0,
        anomalies: 0,
        lastError: null,
      });
    }
  }

  /** Starts every projection (or the named ones) that is not running yet. */
  start(names?: readonly string[]): void {
    for (const runner of this.selected(names)) {
      if (runner.loop) continue;
      runner.stopping = false;
      runner.loop = this.run(runner);
    }
  }

  /** Stops the named projections (default: all) after their current batch. */
  async stop(names?: readonly string[]): Promise<void> {
    await Promise.all(
      this.selected(names).map(async (runner) => {
        runner.stopping = true;
        runner.wake?.();
        await runner.subscription?.stop().catch(() => undefined);
        await runner.loop;
        runner.loop = null;
      }),
    );
  }

  status(): ProjectionStatus[] {
    return [...this.runners.values()].map((r) => ({
      projection: r.projection.name,
      running: r.loop !== null,
      checkpoint: r.checkpoint,
      applied: r.applied,
      batches: r.batches,
      anomalies: r.anomalies,
      lastError: r.lastError,
    }));
  }

  /**
   * Waits until every projection has passed the target (read-your-writes after an append).
   * Resolves true when passed, false after `timeoutMs`. Event ids are known once delivered to
   * this projector; for events appended before it started, wait on a position.
   */
  waitFor(target: WaitTarget, timeoutMs: number): Promise<boolean> {
    if (this.passed(target)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!this.passed(target)) return;
        cleanup();
        resolve(true);
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(false);
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /**
   * Waits until every projection has applied these appends to one community (read-your-writes),
   * also when another server projects: its progress arrives through `observe`.
   */
  waitForAppended(
    communityId: string,
    results: readonly { position: Position }[],
    timeoutMs: number,
  ): Promise<boolean> {
    if (results.length === 0) return Promise.resolve(true);
    const last = results
      .map((r) => r.position)
      .reduce((a, b) => (this.ledger.comparePositions(a, b) >= 0 ? a : b));
    return this.waitFor({ communityId, position: last }, timeoutMs);
  }

  /** Progress of the projecting server (a peer message), for a server that follows it. */
  observe(message: Extract<PeerMessage, { t: 'progress' }>): void {
    const runner = this.runners.get(message.p);
    if (!runner) return;
    for (const [communityId, position] of message.l) {
      const known = runner.lastByCommunity.get(communityId);
      if (known === undefined || this.ledger.comparePositions(known, position) < 0)
        runner.lastByCommunity.set(communityId, position);
    }
    for (const listener of [...this.listeners]) listener();
  }

  /**
   * For a server that follows, after its connection to the projecting one broke: the progress told
   * meanwhile was missed, so `reload` rebuilds what the messages would have updated (the access
   * index) and the stored checkpoints, read before it, release the waiters whose appends they cover.
   */
  async resync(reload: () => Promise<void>): Promise<void> {
    const stored = new Map<Runner, Position | null>();
    for (const runner of this.runners.values())
      stored.set(runner, await this.storedCheckpoint(runner.projection.name));
    await reload();
    for (const [runner, checkpoint] of stored) if (checkpoint !== null) runner.followed = checkpoint;
    for (const listener of [...this.listeners]) listener();
  }

  /** Events in the ledger after each projection's checkpoint, counted up to `cap`. */
  async lag(cap = 10_000): Promise<ProjectionLag[]> {
    const out: ProjectionLag[] = [];
    for (const runner of this.runners.values()) {
      const checkpoint = runner.loop
        ? runner.checkpoint
        : await this.storedCheckpoint(runner.projection.name);
      // Counted by the ledger, not read: a health check must stay cheap when the projector is behind.
      const behind = await this.ledger.countAfter(checkpoint ?? undefined, cap + 1);
      out.push({
        projection: runner.projection.name,
        behind: Math.min(behind, cap),
        capped: behind > cap,
        checkpoint,
      });
    }
    return out;
  }

  /**
   * Rebuilds projections from position zero into a shadow schema, then swaps the rows in one
   * transaction together with the checkpoint. The live projection is paused meanwhile and resumes
   * from the rebuilt checkpoint.
   */
  async rebuild(name?: string, onProgress?: (p: RebuildProgress) => void): Promise<RebuildReport[]> {
    if (this.lease && !this.lease.isLeader()) throw new ProjectorNotLeadingError();
    const reports: RebuildReport[] = [];
    for (const runner of this.selected(name === undefined ? undefined : [name])) {
      const wasRunning = runner.loop !== null;
      await this.stop([runner.projection.name]);
      try {
        reports.push(await this.rebuildOne(runner, onProgress));
      } finally {
        if (wasRunning) this.start([runner.projection.name]);
      }
    }
    return reports;
  }

  private selected(names?: readonly string[]): Runner[] {
    if (!names) return [...this.runners.values()];
    return names.map((n) => {
      const r = this.runners.get(n);
      if (!r) throw new Error(`Unknown projection: ${n}`);
      return r;
    });
  }

  private passedOne(communityId: string, position: Position): boolean {
    for (const runner of this.runners.values()) {
      const last = runner.lastByCommunity.get(communityId);
      if (last !== undefined && this.ledger.comparePositions(last, position) >= 0) continue;
      if (runner.followed !== null && this.covers(runner.followed, communityId, position)) continue;
      return false;
    }
    return true;
  }

  /** Does a checkpoint (over every community) include this community's position? */
  private covers(checkpoint: Position, communityId: string, position: Position): boolean {
    // Folding the position in leaves a checkpoint that already has it unchanged.
    const folded = this.ledger.advance(checkpoint, { communityId, position } as RecordedEvent);
    return this.ledger.comparePositions(folded, checkpoint) === 0;
  }

  private passed(target: WaitTarget): boolean {
    if ('eventIds' in target) {
      return target.eventIds.every((id) => {
        const at = this.recent.get(id);
        return at !== undefined && this.passedOne(at.communityId, at.position);
      });
    }
    return this.passedOne(target.communityId, target.position);
  }

  private async run(runner: Runner): Promise<void> {
    const name = runner.projection.name;
    let failures = 0;
    while (!runner.stopping) {
      try {
        runner.checkpoint = await this.loadCheckpoint(name);
        const sub = this.ledger.subscribe(
          this.consumerPrefix + name,
          { after: runner.checkpoint ?? undefined, maxBatch: this.maxBatch },
          async (events) => {
            await this.handleBatch(runner, events);
            failures = 0;
          },
        );
        runner.subscription = sub;
        if (runner.stopping) await sub.stop();
        await sub.done;
        runner.subscription = null;
        if (runner.stopping) break;
        throw new Error('Subscription ended without being stopped');
      } catch (err) {
        runner.subscription = null;
        if (runner.stopping) break;
        failures++;
        runner.lastError = reasonOf(err);
        const delay =
          Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (failures - 1)) *
          (0.5 + Math.random() / 2);
        this.log.error(
          { err, projection: name, failures, retryInMs: Math.round(delay) },
          'projector stopped; retrying',
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          runner.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        runner.wake = null;
      }
    }
  }

  private async loadCheckpoint(name: string): Promise<Position | null> {
    await this.ds.query(
      `INSERT INTO projection_checkpoints (name, position) VALUES ($1, NULL) ON CONFLICT (name) DO NOTHING`,
      [name],
    );
    const rows: { position: string | null }[] = await this.ds.query(
      `SELECT position FROM projection_checkpoints WHERE name = $1`,
      [name],
    );
    return rows[0]?.position ?? null;
  }

  private async storedCheckpoint(name: string): Promise<Position | null> {
    const rows: { position: string | null }[] = await this.ds.query(
      `SELECT position FROM projection_checkpoints WHERE name = $1`,
      [name],
    );
    return rows[0]?.position ?? null;
  }

  private async handleBatch(runner: Runner, events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    let next: Position | undefined = runner.checkpoint ?? undefined;
    for (const e of events) next = this.ledger.advance(next, e);
    const checkpoint = { expected: runner.checkpoint, next: next ?? null };
    let passed: [string, Position][] | undefined;
    if (this.lease) {
      const last = new Map<string, Position>();
      for (const e of events) last.set(e.communityId, e.position);
      passed = [...last];
    }
    const applied = await this.applyBatch(runner, events, { checkpoint, passed });
    runner.checkpoint = checkpoint.next;
    runner.applied += applied.applied;
    runner.anomalies += applied.anomalies;
    runner.batches++;
    runner.lastError = null;
    for (const e of events) {
      runner.lastByCommunity.set(e.communityId, e.position);
      this.recent.delete(e.id);
      this.recent.set(e.id, { communityId: e.communityId, position: e.position });
    }
    while (this.recent.size > RECENT_IDS) this.recent.delete(this.recent.keys().next().value as string);
    for (const listener of [...this.listeners]) listener();
  }

  /**
   * One transaction: the whole batch at once; if the projection rejects it, the batch again event by
   * event behind savepoints, recording each rejected event as an anomaly. Infrastructure errors
   * propagate (nothing committed).
   */
  private async applyBatch(
    runner: Runner,
    events: readonly RecordedEvent[],
    target: BatchTarget,
  ): Promise<{ applied: number; anomalies: number }> {
    const { projection } = runner;
    const relevant = runner.types ? events.filter((e) => runner.types!.has(e.type)) : events;
    try {
      await this.ds.transaction(async (manager) => {
        const told = this.toldList(target);
        await this.enter(manager, projection.name, target);
        if (relevant.length > 0) await projection.apply(txOf(manager, told), relevant);
        await this.leave(manager, projection.name, target, told);
      });
      return { applied: relevant.length, anomalies: 0 };
    } catch (err) {
      if (isInfrastructureError(err)) throw err;
      this.log.warn(
        { projection: projection.name, err: reasonOf(err) },
        'batch rejected; applying event by event',
      );
    }
    let anomalies = 0;
    await this.ds.transaction(async (manager) => {
      anomalies = 0;
      // What a rolled-back event told is told anyway: a follower reloads it and finds it unchanged.
      const told = this.toldList(target);
      await this.enter(manager, projection.name, target);
      const tx = txOf(manager, told);
      for (const e of relevant) {
        await manager.query('SAVEPOINT projection_event');
        try {
          await projection.apply(tx, [e]);
          await manager.query('RELEASE SAVEPOINT projection_event');
        } catch (err) {
          if (isInfrastructureError(err)) throw err;
          await manager.query('ROLLBACK TO SAVEPOINT projection_event');
          anomalies++;
          const reason = reasonOf(err);
          await manager.query(
            `INSERT INTO projection_anomalies (projection, event_id, position, reason)
             VALUES ($1, $2, $3, $4) ON CONFLICT (projection, event_id) DO NOTHING`,
            [projection.name, e.id, e.position, reason],
          );
          this.log.warn(
            { projection: projection.name, eventId: e.id, position: e.position, type: e.type, reason },
            'event skipped: anomaly recorded',
          );
        }
      }
      await this.leave(manager, projection.name, target, told);
    });
    return { applied: relevant.length - anomalies, anomalies };
  }

  private async enter(manager: EntityManager, name: string, target: BatchTarget): Promise<void> {
    // With a checkpoint, the settings ride on the statement that locks it (one round trip less).
    if (!target.checkpoint) await manager.query(`SELECT ${this.batchSettings}`);
    if (target.shadowSchema) {
      const [{ schema }] = (await manager.query('SELECT current_schema() AS schema')) as { schema: string }[];
      await manager.query(
        `SET LOCAL search_path TO ${quoteIdent(target.shadowSchema)}, ${quoteIdent(schema)}`,
      );
    }
    if (target.checkpoint) {
      const rows = (await manager.query(
        `SELECT position, ${this.batchSettings} FROM projection_checkpoints WHERE name = $1 FOR UPDATE`,
        [name],
      )) as {
        position: string | null;
      }[];
      if (rows.length === 0) await manager.query(`SELECT ${this.batchSettings}`);
      const actual = rows[0]?.position ?? null;
      if (actual !== target.checkpoint.expected)
        throw new CheckpointConflictError(name, target.checkpoint.expected, actual);
    }
  }

  /** Where a live batch of a projector with a lease collects what it tells the other servers. */
  private toldList(target: BatchTarget): PeerMessage[] | undefined {
    return this.lease && target.passed ? [] : undefined;
  }

  private async leave(
    manager: EntityManager,
    name: string,
    target: BatchTarget,
    told?: PeerMessage[],
  ): Promise<void> {
    if (!target.checkpoint) return;
    if (!told || !this.lease) {
      await manager.query(
        `UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1`,
        [name, target.checkpoint.next],
      );
      return;
    }
    // The notifications ride on the checkpoint's statement; they are delivered when this commits.
    told.push({ t: 'progress', p: name, l: target.passed ?? [] });
    await manager.query(
      `WITH told AS (SELECT pg_notify($3, payload) FROM unnest($4::text[]) AS payload)
       UPDATE projection_checkpoints SET position = $2, updated_at = now()
        WHERE name = $1 AND (SELECT count(*) FROM told) >= 0`,
      [name, target.checkpoint.next, this.lease.channel, told.flatMap(peerPayloads)],
    );
  }

  private async rebuildOne(
    runner: Runner,
    onProgress?: (p: RebuildProgress) => void,
  ): Promise<RebuildReport> {
    const started = process.hrtime.bigint();
    const name = runner.projection.name;
    const [{ live }] = (await this.ds.query('SELECT current_schema() AS live')) as { live: string }[];
    const shadow = `rebuild_${name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${Date.now().toString(36)}`;
    const s = quoteIdent(shadow);
    const l = quoteIdent(live);
    await this.ds.query(`CREATE SCHEMA ${s}`);
    try {
      for (const table of runner.projection.tables) {
        await this.ds.query(
          `CREATE TABLE ${s}.${quoteIdent(table)} (LIKE ${l}.${quoteIdent(table)} INCLUDING ALL)`,
        );
      }
      let checkpoint: Position | undefined;
      let count = 0;
      const lastByCommunity = new Map<string, Position>();
      let batch: RecordedEvent[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        await this.applyBatch(runner, batch, { shadowSchema: shadow });
        batch = [];
        onProgress?.({ projection: name, events: count });
      };
      for await (const e of this.ledger.read({ pageSize: this.maxBatch })) {
        checkpoint = this.ledger.advance(checkpoint, e);
        lastByCommunity.set(e.communityId, e.position);
        batch.push(e);
        count++;
        if (batch.length >= this.maxBatch) await flush();
      }
      await flush();
      // The swap copies rather than renames, so the live tables keep the constraint and index
      // names their migrations gave them; readers see the old rows until this commits.
      await this.ds.transaction(async (manager) => {
        // Waiting for the tables' readers and copying whole tables may keep the database silent
        // for longer than a query is otherwise given (GATEHOUSE_DATABASE_TIMEOUT_SECONDS).
        const connection: unknown = await manager.queryRunner?.connect();
        const limit = setAnswerDeadline(connection, 0);
        try {
          for (const table of runner.projection.tables) {
            await manager.query(`LOCK TABLE ${l}.${quoteIdent(table)} IN ACCESS EXCLUSIVE MODE`);
          }
          for (const table of runner.projection.tables) {
            const t = quoteIdent(table);
            await manager.query(`TRUNCATE ${l}.${t}`);
            await manager.query(`INSERT INTO ${l}.${t} OVERRIDING SYSTEM VALUE SELECT * FROM ${s}.${t}`);
          }
        } finally {
          if (limit !== undefined) setAnswerDeadline(connection, limit);
        }
        await manager.query(
          `INSERT INTO ${l}.projection_checkpoints (name, position, updated_at) VALUES ($1, $2, now())
           ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`,
          [name, checkpoint ?? null],
        );
        // The replay told nobody: the other servers read the swapped tables again.
        if (this.lease) {
          const told: PeerMessage[] = [{ t: 'reload' }, { t: 'progress', p: name, l: [...lastByCommunity] }];
          await manager.query('SELECT count(pg_notify($1, payload)) FROM unnest($2::text[]) AS payload', [
            this.lease.channel,
            told.flatMap(peerPayloads),
          ]);
        }
      });
      runner.checkpoint = checkpoint ?? null;
      for (const [community, position] of lastByCommunity) runner.lastByCommunity.set(community, position);
      for (const listener of [...this.listeners]) listener();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.log.info({ projection: name, events: count, seconds }, 'projection rebuilt');
      return { projection: name, events: count, seconds };
    } finally {
      await this.ds.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    }
  }
}

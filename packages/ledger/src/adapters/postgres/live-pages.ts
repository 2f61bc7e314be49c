/** A place in the log: the writing transaction, then the sequence number. */
export type LogCursor = { readonly tx: string; readonly position: string };

type Run<R> = {
  /** The place just before `rows[0]`. */
  start: string;
  rows: R[];
  /** Absolute index of `rows[0]`: indexes in `at` stay valid when the front is trimmed. */
  first: number;
  /** Row key → absolute index. */
  at: Map<string, number>;
  used: number;
};

const keyOf = (c: LogCursor): string => `${c.tx}.${c.position}`;

/** Log order of two places: negative when `a` comes first. */
export function compareCursors(a: LogCursor, b: LogCursor): number {
  const tx = BigInt(a.tx) - BigInt(b.tx);
  if (tx !== 0n) return tx < 0n ? -1 : 1;
  const pos = BigInt(a.position) - BigInt(b.position);
  return pos === 0n ? 0 : pos < 0n ? -1 : 1;
}

/**
 * Settled rows of the log lately read by one process's subscriptions, kept as contiguous runs in log
 * order. The consumers of a process (each projection has its own) follow one another along the log
 * at different speeds; a consumer anywhere inside a run is served from memory, and one at a run's end
 * reads on from the database and extends the run, so each row is read and parsed about once however
 * far apart the consumers are. Rows every registered consumer has passed are let go; beyond that
 * the least recently used rows go once `maxRows` are kept.
 *
 * Sound because a read after cursor `c` returns every settled row from `c` up to its last row: rows
 * of the log never change, and nothing can still commit below the settled bound, so a run never
 * misses a row that a fresh read would return. Identical reads in flight at once share one query.
 */
export class LivePages<R extends LogCursor> {
  private readonly runs: Run<R>[] = [];
  private readonly inFlight = new Map<string, Promise<R[]>>();
  /** Where each consumer last asked from. */
  private readonly consumers = new Map<string, LogCursor>();
  private tick = 0;

  constructor(
    private readonly read: (after: LogCursor, limit: number) => Promise<R[]>,
    private readonly maxRows = 5_000,
    private readonly maxRuns = 4,
  ) {}

  /** Rows kept now (for tests and metrics). */
  get size(): number {
    return this.runs.reduce((n, r) => n + r.rows.length, 0);
  }

  /**
   * Up to `limit` rows after `after`, in log order: the settled ones, as a read would return them.
   * A `consumer` named here has passed `after`, and is waited for until it is `forget`-ten.
   */
  async page(after: LogCursor, limit: number, consumer?: string): Promise<R[]> {
    if (consumer !== undefined) {
      this.consumers.set(consumer, { tx: after.tx, position: after.position });
      this.trimPassed();
    }
    const key = keyOf(after);
    const hit = this.find(key);
    if (!hit) return this.fetch(after, key, limit);
    hit.run.used = ++this.tick;
    const cached = hit.run.rows.slice(hit.offset, hit.offset + limit);
    if (cached.length === limit) return cached;
    // The run ends inside this page: the rest from the database, which extends the run. A whole page
    // is read, so the consumers arriving at this end one after another share one read of it.
    const from = cached.length > 0 ? cached[cached.length - 1] : after;
    const more = await this.fetch(from, keyOf(from), limit);
    return cached.length > 0 ? cached.concat(more.slice(0, limit - cached.length)) : more;
  }

  /** A consumer that stopped: rows are no longer kept for it. */
  forget(consumer: string): void {
    this.consumers.delete(consumer);
    this.trimPassed();
  }

  clear(): void {
    this.runs.length = 0;
    this.consumers.clear();
  }

  /** Lets go of the rows at or before the slowest consumer's cursor. */
  private trimPassed(): void {
    let slowest: LogCursor | undefined;
    for (const c of this.consumers.values()) if (!slowest || compareCursors(c, slowest) < 0) slowest = c;
    if (!slowest) return;
    for (const run of [...this.runs]) {
      let drop = 0;
      while (drop < run.rows.length && compareCursors(run.rows[drop], slowest) <= 0) drop++;
      this.dropFront(run, drop);
    }
  }

  private dropFront(run: Run<R>, drop: number): void {
    if (drop === 0) return;
    const gone = run.rows.splice(0, drop);
    for (const row of gone) run.at.delete(keyOf(row));
    run.first += drop;
    run.start = keyOf(gone[gone.length - 1]);
    if (run.rows.length === 0) this.runs.splice(this.runs.indexOf(run), 1);
  }

  private find(key: string): { run: Run<R>; offset: number } | undefined {
    for (const run of this.runs) {
      if (run.start === key) return { run, offset: 0 };
      const i = run.at.get(key);
      if (i !== undefined) return { run, offset: i - run.first + 1 };
    }
    return undefined;
  }

  private fetch(after: LogCursor, key: string, limit: number): Promise<R[]> {
    const flightKey = `${key}|${limit}`;
    const pending = this.inFlight.get(flightKey);
    if (pending) return pending;
    const rows = this.read(after, limit).then(
      (r) => {
        this.inFlight.delete(flightKey);
        this.keep(key, r);
        return r;
      },
      (err: unknown) => {
        this.inFlight.delete(flightKey);
        throw err;
      },
    );
    this.inFlight.set(flightKey, rows);
    return rows;
  }

  /** Adds rows read after `start` to the run ending there, or as a new run. */
  private keep(start: string, rows: R[]): void {
    if (rows.length === 0) return;
    let run = this.runs.find((r) => this.endOf(r) === start);
    if (!run) {
      // Rows already kept (two consumers read overlapping pages): nothing new to keep.
      if (this.find(start)) return;
      run = { start, rows: [], first: 0, at: new Map(), used: 0 };
      this.runs.push(run);
    }
    run.used = ++this.tick;
    for (const row of rows) {
      run.at.set(keyOf(row), run.first + run.rows.length);
      run.rows.push(row);
    }
    // A run that now reaches another's start continues into it.
    const next = this.runs.find((r) => r !== run && r.start === this.endOf(run));
    if (next) {
      for (const row of next.rows) {
        run.at.set(keyOf(row), run.first + run.rows.length);
        run.rows.push(row);
      }
      this.runs.splice(this.runs.indexOf(next), 1);
    }
    this.evict();
  }

  private endOf(run: Run<R>): string {
    return run.rows.length > 0 ? keyOf(run.rows[run.rows.length - 1]) : run.start;
  }

  /** Least recently used runs go first: whole runs beyond `maxRuns`, then rows from their front. */
  private evict(): void {
    const byUse = () => [...this.runs].sort((a, b) => a.used - b.used);
    while (this.runs.length > this.maxRuns) this.runs.splice(this.runs.indexOf(byUse()[0]), 1);
    let excess = this.size - this.maxRows;
    for (const run of byUse()) {
      if (excess <= 0) break;
      const drop = Math.min(excess, run.rows.length);
      this.dropFront(run, drop);
      excess -= drop;
    }
  }
}

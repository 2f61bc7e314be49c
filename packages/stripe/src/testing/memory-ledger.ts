import type {
  AppendResult,
  Ledger,
  NewEvent,
  Position,
  ReadOptions,
  RecordedEvent,
  Subscription,
} from '@gatehouse/ledger';

const pad = (n: number): Position => String(n).padStart(12, '0');

/**
 * A small in-memory `Ledger` for unit tests: idempotent by id, one global order. `failNext(n, err)`
 * makes the next n appends throw, to test what callers do when the store is down.
 */
export class MemoryLedger implements Ledger {
  readonly kind = 'postgres' as const;
  readonly events: RecordedEvent[] = [];
  /** Every call to `append`, as given. */
  readonly appendCalls: NewEvent[][] = [];
  private failures: { remaining: number; error: Error } = { remaining: 0, error: new Error('ledger down') };

  constructor(private readonly clock: () => Date = () => new Date(Date.UTC(2026, 0, 1))) {}

  failNext(times: number, error: Error = new Error('ledger down')): void {
    this.failures = { remaining: times, error };
  }

  async init(): Promise<void> {}

  async append(events: NewEvent[]): Promise<AppendResult[]> {
    this.appendCalls.push(events);
    // Yield first, so concurrent callers really interleave.
    await Promise.resolve();
    if (this.failures.remaining > 0) {
      this.failures.remaining--;
      throw this.failures.error;
    }
    return events.map((e) => {
      const id = e.id ?? `mem-${this.events.length + 1}`;
      const existing = this.events.find((r) => r.id === id);
      if (existing) return { id, position: existing.position, appended: false };
      const recorded: RecordedEvent = {
        id,
        type: e.type,
        communityId: e.communityId,
        subject: e.subject ?? null,
        occurredAt: new Date(e.occurredAt).toISOString(),
        recordedAt: this.clock().toISOString(),
        source: e.source,
        actor: e.actor ?? null,
        causationId: e.causationId ?? null,
        correlationId: e.correlationId ?? null,
        schemaVersion: e.schemaVersion ?? 1,
        data: structuredClone(e.data),
        position: pad(this.events.length + 1),
      };
      this.events.push(recorded);
      return { id, position: recorded.position, appended: true };
    });
  }

  async *read(options: ReadOptions = {}): AsyncIterable<RecordedEvent> {
    for (const e of [...this.events]) {
      if (options.communityId && e.communityId !== options.communityId) continue;
      if (options.after && e.position <= options.after) continue;
      if (options.types && !options.types.includes(e.type)) continue;
      yield e;
    }
  }

  /** Every call to `holds`, as given. */
  readonly holdsCalls: string[][] = [];

  async holds(ids: readonly string[]): Promise<Set<string>> {
    this.holdsCalls.push([...ids]);
    const wanted = new Set(ids);
    return new Set(this.events.filter((e) => wanted.has(e.id)).map((e) => e.id));
  }

  async countAfter(after: Position | undefined, cap: number): Promise<number> {
    return Math.min(cap, this.events.filter((e) => !after || e.position > after).length);
  }

  subscribe(): Subscription {
    throw new Error('MemoryLedger does not support subscriptions');
  }

  async head(communityId?: string): Promise<Position | null> {
    const mine = this.events.filter((e) => !communityId || e.communityId === communityId);
    return mine.length ? mine[mine.length - 1].position : null;
  }

  comparePositions(a: Position, b: Position): number {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  advance(checkpoint: Position | undefined, event: RecordedEvent): Position {
    return checkpoint && checkpoint > event.position ? checkpoint : event.position;
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

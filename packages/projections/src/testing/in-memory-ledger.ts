import { randomUUID } from 'node:crypto';
import type {
  AppendResult,
  BatchHandler,
  Ledger,
  NewEvent,
  Position,
  ReadOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
} from '@gatehouse/ledger';

function positionOf(n: number): Position {
  return String(n).padStart(12, '0');
}

/**
 * A Ledger held in memory, for projection tests and benchmarks that must not depend on an adapter.
 * Positions are one global counter (zero-padded), so any two compare.
 */
export class InMemoryLedger implements Ledger {
  readonly kind = 'postgres' as const;
  private readonly events: RecordedEvent[] = [];
  private readonly byId = new Map<string, RecordedEvent>();
  private readonly waiters = new Set<() => void>();
  private clock: () => Date;

  constructor(options: { clock?: () => Date } = {}) {
    this.clock = options.clock ?? (() => new Date());
  }

  async init(): Promise<void> {}

  async append(events: NewEvent[]): Promise<AppendResult[]> {
    const recordedAt = this.clock().toISOString();
    const out = events.map((e) => {
      const id = e.id ?? randomUUID();
      const seen = this.byId.get(id);
      if (seen) return { id, position: seen.position, appended: false };
      const recorded: RecordedEvent = {
        id,
        type: e.type,
        communityId: e.communityId,
        subject: e.subject ?? null,
        occurredAt: e.occurredAt,
        recordedAt,
        source: e.source,
        actor: e.actor ?? null,
        causationId: e.causationId ?? null,
        correlationId: e.correlationId ?? null,
        schemaVersion: e.schemaVersion ?? 1,
        data: e.data,
        position: positionOf(this.events.length + 1),
      };
      this.events.push(recorded);
      this.byId.set(id, recorded);
      return { id, position: recorded.position, appended: true };
    });
    for (const w of [...this.waiters]) w();
    return out;
  }

  /** Appends already-recorded events verbatim (e.g. to replay a duplicate delivery). */
  appendRecorded(events: RecordedEvent[]): void {
    for (const e of events) this.events.push({ ...e, position: positionOf(this.events.length + 1) });
    for (const w of [...this.waiters]) w();
  }

  private matches(e: RecordedEvent, o: { communityId?: string; types?: readonly string[] }): boolean {
    return (
      (o.communityId === undefined || e.communityId === o.communityId) &&
      (!o.types || o.types.includes(e.type))
    );
  }

  private indexAfter(after: Position | undefined): number {
    return after === undefined ? 0 : Number(after);
  }

  async *read(options: ReadOptions = {}): AsyncIterable<RecordedEvent> {
    for (let i = this.indexAfter(options.after); i < this.events.length; i++) {
      const e = this.events[i];
      if (this.matches(e, options)) yield e;
    }
  }

  async holds(ids: readonly string[]): Promise<Set<string>> {
    const wanted = new Set(ids);
    return new Set(this.events.filter((e) => wanted.has(e.id)).map((e) => e.id));
  }

  async countAfter(after: Position | undefined, cap: number): Promise<number> {
    return Math.min(cap, Math.max(0, this.events.length - this.indexAfter(after)));
  }

  subscribe(_consumer: string, options: SubscribeOptions, handler: BatchHandler): Subscription {
    let stopped = false;
    let wake: () => void = () => undefined;
    const maxBatch = options.maxBatch ?? 500;
    const done = (async () => {
      let next = this.indexAfter(options.after);
      while (!stopped) {
        if (next >= this.events.length) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            this.waiters.add(resolve);
          });
          this.waiters.delete(wake);
          continue;
        }
        const end = Math.min(this.events.length, next + maxBatch);
        const batch = this.events.slice(next, end).filter((e) => this.matches(e, options));
        next = end;
        if (batch.length > 0) await handler(batch);
      }
    })();
    return {
      done,
      stop: async () => {
        stopped = true;
        wake();
        await done.catch(() => undefined);
      },
    };
  }

  async head(communityId?: string): Promise<Position | null> {
    for (let i = this.events.length - 1; i >= 0; i--) {
      if (communityId === undefined || this.events[i].communityId === communityId)
        return this.events[i].position;
    }
    return null;
  }

  comparePositions(a: Position, b: Position): number {
    return Number(a) - Number(b);
  }

  advance(_checkpoint: Position | undefined, event: RecordedEvent): Position {
    return event.position;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

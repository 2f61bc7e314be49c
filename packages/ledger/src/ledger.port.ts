// The Ledger port: the append-only log of facts that everything else in Gatehouse is derived from.
// Adapters: PostgreSQL (adapters/postgres, the embedded default) and Kafka (adapters/kafka).

export type EventSource = 'stripe' | 'admin' | 'system' | 'migration';

/** The envelope every ledger event travels in. Times are ISO-8601 strings in UTC. */
export type EventEnvelope<TData = unknown> = {
  /** Stripe's `evt_…` for Stripe facts, otherwise a UUIDv7. Unique across the ledger. */
  id: string;
  type: string;
  /** Partition key: total order is guaranteed per community. */
  communityId: string;
  /** The member or Stripe object the fact is about, when there is one. */
  subject: string | null;
  /** When it happened at the source (Stripe's `created`, the admin's request time). */
  occurredAt: string;
  /** When the ledger accepted it. */
  recordedAt: string;
  source: EventSource;
  actor: string | null;
  causationId: string | null;
  correlationId: string | null;
  schemaVersion: number;
  data: TData;
};

/** What a caller appends: `id` defaults to a new UUIDv7, `recordedAt` is set by the ledger. */
export type NewEvent<TData = unknown> = Omit<
  EventEnvelope<TData>,
  'id' | 'recordedAt' | 'schemaVersion' | 'subject' | 'actor' | 'causationId' | 'correlationId'
> & {
  id?: string;
  schemaVersion?: number;
  subject?: string | null;
  actor?: string | null;
  causationId?: string | null;
  correlationId?: string | null;
};

/**
 * A position in the log, opaque to callers. Positions of one community are totally ordered;
 * compare them only with `Ledger.comparePositions`. The string form is stable and can be stored.
 */
export type Position = string;

/** A recorded event and where it sits in the log. */
export type RecordedEvent<TData = unknown> = EventEnvelope<TData> & { position: Position };

export type AppendResult = {
  id: string;
  position: Position;
  /** False when the id was already in the ledger: nothing new was written, `position` is the original. */
  appended: boolean;
};

export type ReadOptions = {
  /** Only this community's events (otherwise: every community's). */
  communityId?: string;
  /** Exclusive: events strictly after this position. Omitted = from the beginning. */
  after?: Position;
  types?: readonly string[];
  /** Page size of the underlying reads. */
  pageSize?: number;
};

export type SubscribeOptions = {
  /** Exclusive start position, owned and stored by the caller (e.g. a projection checkpoint). */
  after?: Position;
  communityId?: string;
  types?: readonly string[];
  /** Largest batch handed to the handler at once. */
  maxBatch?: number;
};

/**
 * The handler of a subscription receives batches in log order. The subscription only moves on when
 * the returned promise resolves; a rejection stops the subscription and is reported by `done`.
 */
export type BatchHandler = (events: RecordedEvent[]) => Promise<void>;

export interface Subscription {
  /** Resolves when stopped; rejects with the handler's or the adapter's error. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export interface Ledger {
  readonly kind: 'postgres' | 'kafka';
  /** Create tables / topics when missing. Idempotent. */
  init(): Promise<void>;
  /** Append events; duplicates (by id) report their original position and are not written again. */
  append(events: NewEvent[]): Promise<AppendResult[]>;
  /** Read events in log order, as an async stream fetched in pages. */
  read(options?: ReadOptions): AsyncIterable<RecordedEvent>;
  /** Deliver events after `options.after` in batches, then keep delivering new ones until stopped. */
  subscribe(consumer: string, options: SubscribeOptions, handler: BatchHandler): Subscription;
  /**
   * The position of the last event (of one community, or of the whole log), or null when empty.
   * Reading or subscribing after it yields every event appended later, also by appends in flight.
   */
  head(communityId?: string): Promise<Position | null>;
  /**
   * How many events of the whole log a reader after `after` (a checkpoint from `advance`) has yet to
   * read, counted up to `cap`: cheap enough for a health check, with no payload read. Committed
   * events a reader cannot pass yet (PostgreSQL: behind a transaction still open) are counted.
   */
  countAfter(after: Position | undefined, cap: number): Promise<number>;
  /**
   * The ids among `ids` that the ledger holds, in any community: what a caller that has many events
   * in hand (a reconciliation) need not append again. An append still in flight may be missed.
   */
  holds(ids: readonly string[]): Promise<Set<string>>;
  /**
   * Order of two positions of the same community: negative when a precedes b, 0 when equal,
   * positive when a follows b.
   */
  comparePositions(a: Position, b: Position): number;
  /**
   * Fold an event's position into a checkpoint covering every community (for PostgreSQL the event's
   * position; for Kafka one offset per partition). Subscribers store the result and pass it back as
   * `after` to resume without loss or repeat.
   */
  advance(checkpoint: Position | undefined, event: RecordedEvent): Position;
  /** Is the backing store reachable? (used by /readyz) */
  ping(): Promise<void>;
  close(): Promise<void>;
}

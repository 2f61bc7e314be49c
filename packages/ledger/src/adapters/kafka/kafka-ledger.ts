import { Kafka, logLevel, Partitioners, type Admin, type Producer } from 'kafkajs';
import type { PoolConfig } from 'pg';
import { assertCommunitiesExist, envelopeJson, prepareBatch, type CommunityExists } from '../../envelope';
import { withDeadline } from '../../deadline';
import { LedgerError, LedgerUnavailableError } from '../../ledger.errors';
import type {
  AppendResult,
  BatchHandler,
  EventEnvelope,
  Ledger,
  NewEvent,
  Position,
  ReadOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
} from '../../ledger.port';
import { runSubscription, type Waker } from '../../subscription';
import { KafkaIdIndex } from './kafka-id-index';
import { JudgedRecords } from './judged-records';
import { readPartitions, retriable, type PartitionRead, type RawRecord } from './kafka-partition-reader';
import {
  advanceOffsets,
  compareOffsets,
  formatOffsets,
  formatPosition,
  parseOffsets,
  type Offsets,
} from './kafka-positions';

export type KafkaLedgerOptions = {
  brokers: string[];
  /** PostgreSQL connection string of the id index that makes readers see each id once. */
  databaseUrl: string;
  /** Settings of the id index's connection pool (e.g. its `Client`). */
  poolConfig?: Omit<PoolConfig, 'connectionString'>;
  /** One topic per region. */
  topic?: string;
  partitions?: number;
  replicationFactor?: number;
  /** Prefix of the id index table (`<prefix>_kafka_ids`). */
  prefix?: string;
  clientId?: string;
  communityExists?: CommunityExists;
  /** Per request; a broker that does not answer fails an append within a few of these. */
  requestTimeoutMs?: number;
  clock?: () => Date;
};

const SEND_CHUNK_BYTES = 4 * 1024 * 1024;
/** Pause before a subscription's read the broker ended begins again. */
const RESUBSCRIBE_MS = 500;

/**
 * The ledger as one Kafka topic keyed by community (so a community lives in one partition, in
 * order). Kafka cannot refuse a duplicate id, so a PostgreSQL id index decides which record of an
 * id readers deliver: the first in log order. See the package README.
 */
export class KafkaLedger implements Ledger {
  readonly kind = 'kafka' as const;
  readonly topic: string;
  private readonly kafka: Kafka;
  private readonly index: KafkaIdIndex;
  /** Records decoded and judged by the id index, shared by this instance's readers. */
  private readonly judged: JudgedRecords<RecordedEvent>;
  private readonly clock: () => Date;
  private readonly requestTimeoutMs: number;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private producer: Promise<Producer> | undefined;
  private admin: Promise<Admin> | undefined;
  private partitionCount: number | undefined;
  private readonly running = new Set<Subscription>();

  constructor(private readonly options: KafkaLedgerOptions) {
    this.topic = options.topic ?? 'gatehouse.ledger.v1';
    this.requestTimeoutMs = options.requestTimeoutMs ?? 3_000;
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'gatehouse-ledger',
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: this.requestTimeoutMs,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    this.index = new KafkaIdIndex(options.databaseUrl, options.prefix ?? 'ledger', options.poolConfig);
    this.judged = new JudgedRecords<RecordedEvent>(
      (partition, r) => ({
        ...(JSON.parse(r.value.toString('utf8')) as EventEnvelope),
        position: formatPosition(partition, r.offset),
      }),
      (partition, rows) => this.index.claim(partition, rows),
    );
    this.clock = options.clock ?? (() => new Date());
  }

  /**
   * Creates the topic when missing and waits until its partitions are known. A topic just created
   * can be missing from a broker's metadata for a moment (the broker answers
   * UNKNOWN_TOPIC_OR_PARTITION, or has no leader yet), also inside `createTopics`' own wait for
   * leaders: both steps are asked again for up to `TOPIC_READY_MS` rather than failing the start.
   * Any other answer fails at once. (Creating an existing topic is a no-op.)
   */
  async init(): Promise<void> {
    await this.index.init();
    const deadline = Date.now() + TOPIC_READY_MS;
    for (;;) {
      try {
        await this.kafkaCall('init', async () => {
          const admin = await this.adminClient();
          await admin.createTopics({
            waitForLeaders: true,
            topics: [
              {
                topic: this.topic,
                numPartitions: this.options.partitions ?? 6,
                replicationFactor: this.options.replicationFactor ?? 1,
                configEntries: [
                  { name: 'cleanup.policy', value: 'delete' },
                  { name: 'retention.ms', value: '-1' },
                  // a batch of events of one partition travels as one record batch
                  { name: 'max.message.bytes', value: String(8 * 1024 * 1024) },
                ],
              },
            ],
          });
          await this.partitions();
        });
        return;
      } catch (err) {
        if (Date.now() >= deadline || !topicNotReadyYet(err)) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async append(events: NewEvent[]): Promise<AppendResult[]> {
    if (events.length === 0) return [];
    const { envelopes, json } = prepareBatch(events, this.clock());
    await assertCommunitiesExist(envelopes, this.options.communityExists);
    const jsonOf = new Map(envelopes.map((e, i) => [e, envelopeJson(json[i])]));
    const partitions = await this.kafkaCall('append', () => this.partitions());
    const firstOf = new Map<string, EventEnvelope>();
    for (const e of envelopes) if (!firstOf.has(e.id)) firstOf.set(e.id, e);

    const { known, produced } = await this.index.reserveAndProduce(
      [...firstOf.values()].map((e) => ({ id: e.id, communityId: e.communityId })),
      (ids) =>
        this.kafkaCall('append', () =>
          this.produce(
            [...firstOf.values()].filter((e) => ids.has(e.id)),
            partitions,
            jsonOf,
          ),
        ),
    );
    return envelopes.map((e) => {
      const mine = produced.get(e.id);
      if (mine && firstOf.get(e.id) === e)
        return { id: e.id, position: formatPosition(mine.partition, mine.offset), appended: true };
      const original = mine ?? known.get(e.id);
      if (!original) throw new LedgerUnavailableError(`Kafka ledger lost track of event ${e.id}`);
      return { id: e.id, position: formatPosition(original.partition, original.offset), appended: false };
    });
  }

  read(options: ReadOptions = {}): AsyncIterable<RecordedEvent> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      [Symbol.asyncIterator]: () => self.readIterator(options),
    };
  }

  /**
   * Delivers as the PostgreSQL adapter does through an outage: a read the broker ended (kafkajs gave
   * up on it as one that may pass) begins again from the last offsets delivered, after a pause, until
   * stopped; the handler's own errors and any other end the subscription.
   */
  subscribe(_consumer: string, options: SubscribeOptions, handler: BatchHandler): Subscription {
    const maxBatch = options.maxBatch ?? 500;
    const sub = runSubscription(
      async (state) => {
        let partitions: number | undefined;
        /** The next offset to deliver, per partition read. */
        let next: Map<number, bigint> | undefined;
        let handlerError: unknown;
        while (!state.stopped) {
          try {
            partitions ??= await this.kafkaCall('subscribe', () => this.partitions());
            next ??= this.startOffsets(partitions, options.after, options.communityId);
            const at = next;
            const reader = readPartitions(this.kafka, {
              topic: this.topic,
              partitionCount: partitions,
              start: new Map(at),
              onRecords: async (partition, records) => {
                const events = await this.deliverable(partition, records, options);
                for (let i = 0; i < events.length; i += maxBatch) {
                  if (state.stopped) throw new StoppedSignal();
                  await handler(events.slice(i, i + maxBatch)).catch((err: unknown) => {
                    handlerError = err;
                    throw err;
                  });
                }
                at.set(partition, records[records.length - 1].offset + 1n);
              },
            });
            await this.untilStopped(reader, state);
            return;
          } catch (err) {
            if (state.stopped || err === handlerError || !mayPass(err)) throw this.wrap(err, 'subscribe');
            await state.waker.wait(RESUBSCRIBE_MS);
          }
        }
      },
      () => {
        this.running.delete(sub);
      },
    );
    this.running.add(sub);
    return sub;
  }

  /** Waits for a read to end, stopping it once the subscription is stopped; a stop is no error. */
  private async untilStopped(
    reader: PartitionRead,
    state: { readonly stopped: boolean; waker: Waker },
  ): Promise<void> {
    let ended = false;
    const stopWatch = (async () => {
      while (!state.stopped && !ended) await state.waker.wait(1_000);
      await reader.stop();
    })();
    try {
      await reader.done;
    } catch (err) {
      if (!(err instanceof StoppedSignal)) throw err;
    } finally {
      ended = true;
      state.waker.wake();
      await stopWatch;
    }
  }

  async head(communityId?: string): Promise<Position | null> {
    if (communityId !== undefined) {
      const last = await this.index.lastOf(communityId);
      return last ? formatPosition(last.partition, last.offset) : null;
    }
    const ends = await this.highWatermarks();
    const offsets: Offsets = new Map();
    for (const [p, high] of ends) if (high > 0n) offsets.set(p, high - 1n);
    return offsets.size > 0 ? formatOffsets(offsets) : null;
  }

  async holds(ids: readonly string[]): Promise<Set<string>> {
    return ids.length === 0 ? new Set() : this.index.held(ids);
  }

  async countAfter(after: Position | undefined, cap: number): Promise<number> {
    // Offsets are dense per partition: the records still to read are the distance to each end.
    const read = after ? parseOffsets(after) : new Map<number, bigint>();
    const ends = await this.kafkaCall('count', async () => {
      const admin = await this.adminClient();
      return admin.fetchTopicOffsets(this.topic);
    });
    let n = 0n;
    for (const { partition, low, high } of ends) {
      const next = read.has(partition) ? read.get(partition)! + 1n : BigInt(low);
      const start = next > BigInt(low) ? next : BigInt(low);
      if (BigInt(high) > start) n += BigInt(high) - start;
    }
    const limit = BigInt(Math.max(0, Math.floor(cap)));
    return Number(n < limit ? n : limit);
  }

  comparePositions(a: Position, b: Position): number {
    return compareOffsets(a, b);
  }

  advance(checkpoint: Position | undefined, event: RecordedEvent): Position {
    return advanceOffsets(checkpoint, event.position);
  }

  async ping(): Promise<void> {
    await this.kafkaCall('ping', async () => {
      const client = this.adminClient();
      const admin = await client;
      // A limit of the ledger's own as well, met as an unanswered request is.
      await withDeadline(admin.describeCluster(), this.requestTimeoutMs, () => {
        this.leftUnanswered(client);
        return new LedgerUnavailableError(
          `Kafka describeCluster timed out after ${this.requestTimeoutMs} ms`,
        );
      });
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.running].map((s) => s.stop()));
    const producer = this.producer;
    const admin = this.admin;
    this.producer = undefined;
    this.admin = undefined;
    await Promise.all([
      producer?.then((p) => p.disconnect()).catch(() => undefined),
      admin?.then((a) => a.disconnect()).catch(() => undefined),
    ]);
    await this.index.close();
    this.judged.clear();
  }

  /** The partition a community's events go to: kafkajs's default (murmur2, Java-compatible). */
  partitionOf(communityId: string, partitions: number): number {
    return this.partitioner({
      topic: this.topic,
      partitionMetadata: Array.from({ length: partitions }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        replicas: [0],
        isr: [0],
        partitionErrorCode: 0,
      })),
      message: { key: communityId, value: null },
    });
  }

  private async *readIterator(options: ReadOptions): AsyncGenerator<RecordedEvent> {
    const partitions = await this.kafkaCall('read', () => this.partitions());
    const start = this.startOffsets(partitions, options.after, options.communityId);
    const ends = await this.highWatermarks();
    const end = new Map([...start.keys()].map((p) => [p, ends.get(p) ?? 0n]));
    const queue: RecordedEvent[][] = [];
    let wake: (() => void) | undefined;
    let space: (() => void) | undefined;
    let finished = false;
    let failure: unknown;
    const reader = readPartitions(this.kafka, {
      topic: this.topic,
      partitionCount: partitions,
      start,
      end,
      onRecords: async (partition, records) => {
        const events = await this.deliverable(partition, records, options);
        if (events.length === 0) return;
        queue.push(events);
        wake?.();
        // backpressure: hold the consumer while the reader is behind
        while (queue.length > 4 && !finished) await new Promise<void>((r) => (space = r));
      },
    });
    reader.done.then(
      () => {
        finished = true;
        wake?.();
      },
      (err: unknown) => {
        failure = err;
        finished = true;
        wake?.();
      },
    );
    try {
      for (;;) {
        const batch = queue.shift();
        if (batch) {
          space?.();
          for (const e of batch) yield e;
          continue;
        }
        if (finished) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      if (failure) throw this.wrap(failure, 'read');
    } finally {
      finished = true;
      space?.();
      await reader.stop();
    }
  }

  /** Decode, keep the records the id index names, then apply the community and type filters. */
  private async deliverable(
    partition: number,
    records: RawRecord[],
    options: { communityId?: string; types?: readonly string[] },
  ): Promise<RecordedEvent[]> {
    const judged = await this.judged.judge(partition, records);
    const types = options.types ? new Set(options.types) : undefined;
    const seen = new Set<string>();
    const out: RecordedEvent[] = [];
    for (const { event, delivered } of judged) {
      if (!delivered || seen.has(event.id)) continue;
      seen.add(event.id);
      if (options.communityId !== undefined && event.communityId !== options.communityId) continue;
      if (types && !types.has(event.type)) continue;
      // Readers share the decoded event: each gets its own envelope object.
      out.push({ ...event });
    }
    return out;
  }

  private startOffsets(
    partitions: number,
    after: Position | undefined,
    communityId: string | undefined,
  ): Map<number, bigint> {
    const from = after ? parseOffsets(after) : new Map<number, bigint>();
    const chosen =
      communityId !== undefined
        ? [this.partitionOf(communityId, partitions)]
        : Array.from({ length: partitions }, (_, p) => p);
    return new Map(chosen.map((p) => [p, (from.get(p) ?? -1n) + 1n]));
  }

  private async produce(
    envelopes: EventEnvelope[],
    partitions: number,
    jsonOf: ReadonlyMap<EventEnvelope, string>,
  ): Promise<Map<string, { partition: number; offset: bigint }>> {
    const producer = await this.producerClient();
    const landed = new Map<string, { partition: number; offset: bigint }>();
    let chunk: { envelope: EventEnvelope; value: string; partition: number }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const sent = chunk;
      chunk = [];
      bytes = 0;
      const metadata = await producer.send({
        topic: this.topic,
        acks: -1,
        timeout: this.requestTimeoutMs,
        messages: sent.map((m) => ({ key: m.envelope.communityId, value: m.value, partition: m.partition })),
      });
      const base = new Map(metadata.map((m) => [m.partition, BigInt(m.baseOffset ?? '-1')]));
      // the messages of one partition form one record batch, in the order given
      const nth = new Map<number, bigint>();
      for (const m of sent) {
        const i = nth.get(m.partition) ?? 0n;
        nth.set(m.partition, i + 1n);
        const b = base.get(m.partition);
        if (b === undefined || b < 0n)
          throw new LedgerUnavailableError(`Kafka did not report where partition ${m.partition} was written`);
        landed.set(m.envelope.id, { partition: m.partition, offset: b + i });
      }
    };
    for (const envelope of envelopes) {
      const value = jsonOf.get(envelope) ?? JSON.stringify(envelope);
      if (bytes + value.length > SEND_CHUNK_BYTES) await flush();
      chunk.push({ envelope, value, partition: this.partitionOf(envelope.communityId, partitions) });
      bytes += value.length;
    }
    await flush();
    return landed;
  }

  private async partitions(): Promise<number> {
    if (this.partitionCount !== undefined) return this.partitionCount;
    const admin = await this.adminClient();
    const meta = await admin.fetchTopicMetadata({ topics: [this.topic] });
    const count = meta.topics[0]?.partitions.length ?? 0;
    if (count === 0)
      throw new NoPartitionsYet(`Kafka topic ${this.topic} has no partitions (init() not run?)`);
    this.partitionCount = count;
    return count;
  }

  private async highWatermarks(): Promise<Map<number, bigint>> {
    return this.kafkaCall('read', async () => {
      const admin = await this.adminClient();
      const offsets = await admin.fetchTopicOffsets(this.topic);
      return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    });
  }

  private producerClient(): Promise<Producer> {
    if (this.producer) return this.producer;
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    const made: Promise<Producer> = producer.connect().then(() => producer);
    producer.on(producer.events.REQUEST_TIMEOUT, () => this.leftUnanswered(made));
    this.producer = made;
    made.catch(() => this.producer === made && (this.producer = undefined));
    return made;
  }

  private adminClient(): Promise<Admin> {
    if (this.admin) return this.admin;
    const admin = this.kafka.admin({ retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 } });
    const made: Promise<Admin> = admin.connect().then(() => admin);
    admin.on(admin.events.REQUEST_TIMEOUT, () => this.leftUnanswered(made));
    this.admin = made;
    made.catch(() => this.admin === made && (this.admin = undefined));
    return made;
  }

  /**
   * A request of a client in use went unanswered: the clients go at once (`dropClients`), not when
   * the call fails, which KafkaJS holds back while it retries on the same connection, a timeout each.
   */
  private leftUnanswered(client: Promise<unknown>): void {
    if (client === this.producer || client === this.admin) this.dropClients();
  }

  private async kafkaCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.wrap(err, what);
    }
  }

  /**
   * A request Kafka left unanswered may have gone on a connection that a failover left open and
   * silent (the broker's host gone, nothing closed): KafkaJS times the request out but keeps the
   * connection, and every later request on it would wait as long, until TCP gives up (a quarter of
   * an hour by default). The producer and the admin client are let go, so that the next call makes
   * new ones, with new connections; what was under way on them fails, as it would have anyway.
   */
  private dropClients(): void {
    const producer = this.producer;
    const admin = this.admin;
    this.producer = undefined;
    this.admin = undefined;
    void producer?.then((p) => p.disconnect()).catch(() => undefined);
    void admin?.then((a) => a.disconnect()).catch(() => undefined);
  }

  private wrap(err: unknown, what: string): unknown {
    if (err instanceof LedgerError) return err;
    const name = typeof err === 'object' && err !== null ? String((err as { name?: unknown }).name) : '';
    if (
      name.startsWith('KafkaJS') ||
      /timed out|ECONNREFUSED|broker/i.test(String((err as { message?: unknown })?.message))
    ) {
      return new LedgerUnavailableError(
        `Kafka ledger unavailable (${what}): ${String((err as { message?: unknown }).message)}`,
        err,
      );
    }
    return err;
  }
}

/** A failure the broker coming back may end: kafkajs's retriable ones, an unavailable ledger. */
function mayPass(err: unknown): boolean {
  return retriable(err) || err instanceof LedgerUnavailableError;
}

/** How long `init()` waits for a topic it created (or found) to show in the brokers' metadata. */
const TOPIC_READY_MS = 30_000;

function topicNotReadyYet(err: unknown): boolean {
  if (err instanceof NoPartitionsYet) return true;
  // KafkaJS wraps the broker's answer (retries exceeded → protocol error), and so does the ledger.
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (type === 'UNKNOWN_TOPIC_OR_PARTITION' || type === 'LEADER_NOT_AVAILABLE') return true;
  }
  return false;
}

class NoPartitionsYet extends LedgerUnavailableError {}

class StoppedSignal extends Error {}

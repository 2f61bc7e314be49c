import { randomUUID } from 'node:crypto';
import type { Batch, Consumer, Kafka } from 'kafkajs';

export type RawRecord = { partition: number; offset: bigint; value: Buffer | null };

export type PartitionReadOptions = {
  topic: string;
  partitionCount: number;
  /** Next offset to read, per partition read. */
  start: Map<number, bigint>;
  /** Exclusive end per partition; omitted = follow the log until stopped. */
  end?: Map<number, bigint>;
  /** Called with consecutive records of one partition, in offset order; awaited before the next. */
  onRecords: (partition: number, records: RawRecord[]) => Promise<void>;
  maxWaitTimeInMs?: number;
};

export type PartitionRead = { done: Promise<void>; stop(): Promise<void> };

/** Pause before a new consumer takes over from one that crashed. */
const RESTART_MS = 500;

/** What kafkajs starts a crashed consumer again after: a failure it expects to pass. */
export function retriable(err: unknown): boolean {
  let cause = err;
  while ((cause as { cause?: unknown } | null)?.cause) cause = (cause as { cause: unknown }).cause;
  return (
    (err as { name?: unknown } | null)?.name === 'KafkaJSNumberOfRetriesExceeded' ||
    (cause as { retriable?: unknown } | null)?.retriable === true
  );
}

/** The consumer groups of one topic's reads start with this (each read has a group of its own). */
export function readerGroupPrefix(topic: string): string {
  return `gatehouse-ledger-reader-${topic}-`;
}

/**
 * Reads chosen partitions from caller-owned offsets. kafkajs only reads through a consumer group, so
 * each read joins a throwaway group, seeks to the caller's offsets on joining and never relies on
 * committed offsets. Records before a partition's start are dropped, should any arrive.
 *
 * A consumer one of whose requests goes unanswered is given up for a new one, which joins a group
 * on new connections and reads on from where delivery got to. kafkajs times the request out but
 * keeps its connection and asks again on it: after a failover that leaves the old connections open
 * and silent, its retries and its leaving the group would each wait out the request timeout first
 * (five of them with our settings) before it started afresh.
 */
export function readPartitions(kafka: Kafka, o: PartitionReadOptions): PartitionRead {
  const next = new Map(o.start);
  const pending = new Set([...next.keys()].filter((p) => !o.end || (o.end.get(p) ?? 0n) > next.get(p)!));
  /** The consumer reading now; those given up disconnect on their own. */
  let consumer: Consumer | undefined;
  let stopped = false;
  let settle!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
  });
  let finished = false;
  let outcome: unknown;
  // kafkajs, asked to disconnect while `run` is still joining the group, finishes joining afterwards
  // and keeps fetching with nothing left to stop it (the process cannot exit): until the setup has
  // returned, a finish only marks the read, and the setup disconnects when it is done.
  let settingUp = true;
  // One batch at a time across consumers: one given up may still be delivering when the next one
  // has records; they wait for it, and what it delivered is skipped by the offsets.
  let delivering: Promise<unknown> = Promise.resolve();
  const close = () => {
    const c = consumer;
    // disconnect from outside the eachBatch callback: kafkajs waits for the running batch to end
    setImmediate(() => {
      void (c ? c.disconnect().catch(() => undefined) : Promise.resolve()).then(() => settle(outcome));
    });
  };
  const finish = async (err?: unknown) => {
    if (finished) return;
    finished = true;
    stopped = true;
    outcome = err;
    if (!settingUp) close();
  };

  if (o.end && pending.size === 0) {
    settingUp = false;
    void finish();
    return { done, stop: async () => undefined };
  }

  /** Hands a batch's records from the read offsets on to the caller; true when there were any. */
  const deliver = async (from: Consumer, batch: Batch): Promise<boolean> => {
    if (stopped || consumer !== from) return false;
    const partition = batch.partition;
    const start = next.get(partition);
    if (start === undefined) return false;
    const limit = o.end?.get(partition);
    const records: RawRecord[] = [];
    for (const m of batch.messages) {
      const offset = BigInt(m.offset);
      if (offset < start) continue;
      if (limit !== undefined && offset >= limit) break;
      records.push({ partition, offset, value: m.value });
    }
    if (records.length > 0) {
      try {
        await o.onRecords(partition, records);
      } catch (err) {
        // never throw into kafkajs: it would retry the batch
        await finish(err);
        return false;
      }
      next.set(partition, records[records.length - 1].offset + 1n);
    }
    if (limit !== undefined && next.get(partition)! >= limit) {
      pending.delete(partition);
      if (pending.size === 0) await finish();
    }
    return records.length > 0;
  };

  /** Gives a consumer up for a new one: at once, or after `RESTART_MS` (kafkajs's crash). */
  const replace = (c: Consumer, pause: boolean): void => {
    if (stopped || consumer !== c) return;
    void c.disconnect().catch(() => undefined);
    if (!pause) return begin(false);
    consumer = undefined;
    settingUp = false;
    setTimeout(() => {
      if (!stopped) begin(false);
    }, RESTART_MS);
  };

  const begin = (first: boolean): void => {
    settingUp = true;
    let restartable = false;
    const c = kafka.consumer({
      groupId: readerGroupPrefix(o.topic) + randomUUID(),
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: o.maxWaitTimeInMs ?? (o.end ? 50 : 200),
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      retry: {
        retries: 3,
        initialRetryTime: 100,
        maxRetryTime: 1_000,
        // kafkajs would start the consumer again in its group; a broker that restarted meanwhile
        // still counts the member from before in, and holds the rejoin until that one's session
        // times out. A new consumer, in a new group, is let in at once.
        restartOnFailure: async () => {
          restartable = true;
          return false;
        },
      },
    });
    consumer = c;
    let running = false;
    /** Set once it is to be given up; acted on when `run` has returned (see `settingUp`). */
    let giveUp: 'unanswered' | 'crashed' | undefined;
    c.on(c.events.REQUEST_TIMEOUT, () => {
      giveUp ??= 'unanswered';
      if (running) replace(c, false);
    });
    c.on(c.events.CRASH, ({ payload }) => {
      if (stopped || consumer !== c) return;
      if (!restartable) return void finish(payload.error);
      giveUp = 'crashed';
      if (running) replace(c, true);
    });
    // Offsets and pauses belong to kafkajs's group state, which it builds as it joins: each join
    // sets them, before its first fetch.
    c.on(c.events.GROUP_JOIN, () => {
      if (stopped || consumer !== c) return;
      try {
        const others = Array.from({ length: o.partitionCount }, (_, p) => p).filter((p) => !next.has(p));
        if (others.length > 0) c.pause([{ topic: o.topic, partitions: others }]);
        for (const [partition, offset] of next)
          c.seek({ topic: o.topic, partition, offset: offset.toString() });
      } catch (err) {
        void finish(err);
      }
    });
    void (async () => {
      try {
        await c.connect();
        if (stopped) return;
        await c.subscribe({ topic: o.topic, fromBeginning: true });
        if (stopped) return;
        await c.run({
          autoCommit: false,
          partitionsConsumedConcurrently: 1,
          eachBatch: async ({ batch, heartbeat }) => {
            const turn = delivering.then(() => deliver(c, batch));
            delivering = turn.catch(() => undefined);
            if (await turn) await heartbeat().catch(() => undefined);
          },
        });
        running = true;
        if (giveUp) replace(c, giveUp === 'crashed');
      } catch (err) {
        // A read that could not start fails; one under way waits for the broker, as kafkajs did.
        if (!first && retriable(err)) replace(c, true);
        else await finish(err);
      } finally {
        if (consumer === c) {
          settingUp = false;
          if (finished) close();
        }
      }
    })();
  };
  begin(true);

  return {
    done,
    async stop() {
      await finish();
      await done.catch(() => undefined);
    },
  };
}

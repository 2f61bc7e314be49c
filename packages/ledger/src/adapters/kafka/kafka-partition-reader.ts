import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';

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

/** The consumer groups of one topic's reads start with this (each read has a group of its own). */
export function readerGroupPrefix(topic: string): string {
  return `gatehouse-ledger-reader-${topic}-`;
}

/**
 * Reads chosen partitions from caller-owned offsets. kafkajs only reads through a consumer group, so
 * each read joins a throwaway group, seeks to the caller's offsets on joining and never relies on
 * committed offsets. Records before a partition's start are dropped, should any arrive.
 */
export function readPartitions(kafka: Kafka, o: PartitionReadOptions): PartitionRead {
  const next = new Map(o.start);
  const pending = new Set([...next.keys()].filter((p) => !o.end || (o.end.get(p) ?? 0n) > next.get(p)!));
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

  void (async () => {
    try {
      consumer = kafka.consumer({
        groupId: readerGroupPrefix(o.topic) + randomUUID(),
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: o.maxWaitTimeInMs ?? (o.end ? 50 : 200),
        sessionTimeout: 10_000,
        heartbeatInterval: 1_000,
        retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
      });
      const joined = consumer;
      // Offsets and pauses belong to kafkajs's group state, which it builds anew each time it starts:
      // `run` can also return with none (a start that crashed, on a topic whose group coordinator
      // is not ready yet, is retried later). Each join sets them, before its first fetch.
      joined.on(joined.events.GROUP_JOIN, () => {
        if (stopped) return;
        try {
          const others = Array.from({ length: o.partitionCount }, (_, p) => p).filter((p) => !next.has(p));
          if (others.length > 0) joined.pause([{ topic: o.topic, partitions: others }]);
          for (const [partition, offset] of next)
            joined.seek({ topic: o.topic, partition, offset: offset.toString() });
        } catch (err) {
          void finish(err);
        }
      });
      await consumer.connect();
      if (stopped) return;
      await consumer.subscribe({ topic: o.topic, fromBeginning: true });
      if (stopped) return;
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, heartbeat }) => {
          if (stopped) return;
          const partition = batch.partition;
          const from = next.get(partition);
          if (from === undefined) return;
          const limit = o.end?.get(partition);
          const records: RawRecord[] = [];
          for (const m of batch.messages) {
            const offset = BigInt(m.offset);
            if (offset < from) continue;
            if (limit !== undefined && offset >= limit) break;
            records.push({ partition, offset, value: m.value });
          }
          if (records.length > 0) {
            try {
              await o.onRecords(partition, records);
            } catch (err) {
              // never throw into kafkajs: it would retry the batch
              await finish(err);
              return;
            }
            next.set(partition, records[records.length - 1].offset + 1n);
            await heartbeat().catch(() => undefined);
          }
          if (limit !== undefined && next.get(partition)! >= limit) {
            pending.delete(partition);
            if (pending.size === 0) await finish();
          }
        },
      });
    } catch (err) {
      await finish(err);
    } finally {
      settingUp = false;
      if (finished) close();
    }
  })();

  return {
    done,
    async stop() {
      await finish();
      await done.catch(() => undefined);
    },
  };
}

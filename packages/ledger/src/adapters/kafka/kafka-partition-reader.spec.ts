import type { Kafka } from 'kafkajs';
import { readPartitions, type RawRecord } from './kafka-partition-reader';

const NOT_RUNNING = 'Consumer group was not initialized, consumer#run must be called first';

/**
 * A stand-in for a kafkajs consumer whose first start crashes (as it does while a new topic's group
 * coordinator is not ready): `run` returns with no group state, and kafkajs starts it again later.
 * Seeks and pauses need the group state, as in kafkajs; records are fetched from the sought offset.
 */
function crashingOnFirstStart(log: Map<number, string[]>) {
  const joinListeners: (() => void)[] = [];
  let group: { seeks: Map<number, number>; paused: Set<number> } | null = null;
  let disconnected = false;
  const calls: string[] = [];
  const consumer = {
    events: { GROUP_JOIN: 'consumer.group_join' },
    on(event: string, listener: () => void) {
      if (event === 'consumer.group_join') joinListeners.push(listener);
    },
    async connect() {},
    async subscribe() {},
    async run({ eachBatch }: { eachBatch: (p: unknown) => Promise<void> }) {
      calls.push('run');
      setTimeout(() => {
        if (disconnected) return;
        calls.push('restarted');
        group = { seeks: new Map(), paused: new Set() };
        for (const l of joinListeners) l();
        void (async () => {
          for (const [partition, values] of log) {
            if (disconnected || group!.paused.has(partition)) continue;
            const from = group!.seeks.get(partition) ?? 0;
            const messages = values
              .slice(from)
              .map((v, i) => ({ offset: String(from + i), value: Buffer.from(v) }));
            await eachBatch({ batch: { partition, messages }, heartbeat: async () => undefined });
          }
        })();
      }, 20);
    },
    pause(topics: { partitions: number[] }[]) {
      if (!group) throw new Error(NOT_RUNNING);
      for (const p of topics[0].partitions) group.paused.add(p);
    },
    seek({ partition, offset }: { partition: number; offset: string }) {
      if (!group) throw new Error(NOT_RUNNING);
      calls.push(`seek ${partition}:${offset}`);
      group.seeks.set(partition, Number(offset));
    },
    async disconnect() {
      disconnected = true;
    },
  };
  return { kafka: { consumer: () => consumer } as unknown as Kafka, calls };
}

describe('readPartitions', () => {
  it('reads from the caller’s offsets when kafkajs started its consumer again after a crash', async () => {
    const log = new Map([
      [0, Array.from({ length: 10 }, (_, i) => `p0-${i}`)],
      [1, Array.from({ length: 5 }, (_, i) => `p1-${i}`)],
    ]);
    const fake = crashingOnFirstStart(log);
    const read: RawRecord[] = [];
    const reader = readPartitions(fake.kafka, {
      topic: 't',
      partitionCount: 2,
      start: new Map([[0, 3n]]),
      end: new Map([[0, 10n]]),
      onRecords: async (_partition, records) => {
        read.push(...records);
      },
    });
    await reader.done;
    expect(read.map((r) => `${r.partition}:${r.offset}:${r.value?.toString()}`)).toEqual(
      Array.from({ length: 7 }, (_, i) => `0:${i + 3}:p0-${i + 3}`),
    );
    expect(fake.calls).toEqual(['run', 'restarted', 'seek 0:3']);
  });
});

/**
 * Stand-ins for kafkajs consumers on connections a failover leaves hanging: each one joins, fetches
 * one batch from its sought offset up to what the log holds then, and fetches nothing more; the test
 * tells a consumer that a request of its timed out.
 */
function hangingAfterOneBatch(log: string[]) {
  const consumers: {
    seeks: number[];
    disconnected: boolean;
    timeOut: () => void;
  }[] = [];
  const kafka = {
    consumer() {
      const listeners = new Map<string, (() => void)[]>();
      const me = { seeks: [] as number[], disconnected: false, timeOut: () => undefined as void };
      me.timeOut = () => listeners.get('consumer.network.request_timeout')?.forEach((l) => l());
      consumers.push(me);
      return {
        events: { GROUP_JOIN: 'consumer.group_join', REQUEST_TIMEOUT: 'consumer.network.request_timeout' },
        on(event: string, listener: () => void) {
          listeners.set(event, [...(listeners.get(event) ?? []), listener]);
        },
        async connect() {},
        async subscribe() {},
        async run({ eachBatch }: { eachBatch: (p: unknown) => Promise<void> }) {
          setImmediate(() => {
            listeners.get('consumer.group_join')?.forEach((l) => l());
            const from = me.seeks[me.seeks.length - 1] ?? 0;
            const messages = log
              .slice(from)
              .map((v, i) => ({ offset: String(from + i), value: Buffer.from(v) }));
            void eachBatch({ batch: { partition: 0, messages }, heartbeat: async () => undefined });
          });
        },
        pause() {},
        seek({ offset }: { offset: string }) {
          me.seeks.push(Number(offset));
        },
        async disconnect() {
          me.disconnected = true;
        },
      };
    },
  };
  return { kafka: kafka as unknown as Kafka, consumers };
}

describe('readPartitions when a request goes unanswered', () => {
  it('reads on with a new consumer from where delivery got to, each record once and in order', async () => {
    const log = Array.from({ length: 5 }, (_, i) => `r${i}`);
    const fake = hangingAfterOneBatch(log);
    const read: string[] = [];
    let release!: () => void;
    const firstBatchHeld = new Promise<void>((resolve) => (release = resolve));
    let batches = 0;
    const reader = readPartitions(fake.kafka, {
      topic: 't',
      partitionCount: 1,
      start: new Map([[0, 0n]]),
      onRecords: async (_partition, records) => {
        if (batches++ === 0) await firstBatchHeld;
        read.push(...records.map((r) => `${r.offset}:${r.value?.toString()}`));
      },
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.consumers).toHaveLength(1);
    // More is written; the first consumer, still handing over its batch, times out.
    log.push('r5', 'r6');
    fake.consumers[0].timeOut();
    expect(fake.consumers).toHaveLength(2);
    expect(fake.consumers[0].disconnected).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    // The new consumer joined from the read offsets; its batch waits for the one being delivered.
    expect(fake.consumers[1].seeks).toEqual([0]);
    expect(read).toEqual([]);
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(read).toEqual(['0:r0', '1:r1', '2:r2', '3:r3', '4:r4', '5:r5', '6:r6']);
    // A late timeout of the consumer given up changes nothing.
    fake.consumers[0].timeOut();
    expect(fake.consumers).toHaveLength(2);
    await reader.stop();
    expect(fake.consumers[1].disconnected).toBe(true);
  });
});

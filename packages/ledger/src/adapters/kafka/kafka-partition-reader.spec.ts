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

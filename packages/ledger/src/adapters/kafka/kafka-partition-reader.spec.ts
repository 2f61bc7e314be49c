import type { Kafka } from 'kafkajs';
import { readPartitions, type RawRecord } from './kafka-partition-reader';

type Behaviour =
  /** Joins, fetches one batch from its sought offset up to what the log holds then, then nothing. */
  | 'one batch'
  /** Its start crashes on a failure kafkajs would start it again after (it asks `restartOnFailure`). */
  | 'crashes, retriable'
  /** Its start crashes on a failure kafkajs would not start it again after. */
  | 'crashes, fatal'
  /** Cannot connect (kafkajs gave up its retries). */
  | 'cannot connect';

const EVENTS = {
  GROUP_JOIN: 'consumer.group_join',
  REQUEST_TIMEOUT: 'consumer.network.request_timeout',
  CRASH: 'consumer.crash',
};

/**
 * Stand-ins for kafkajs consumers, one behaviour per consumer made. Seeks and pauses need the group
 * state, as in kafkajs, which a consumer has once it joined; records are fetched from the sought
 * offset. The test can tell a consumer that a request of its timed out.
 */
function fakeKafka(log: string[], behaviours: Behaviour[]) {
  const consumers: { seeks: number[]; disconnected: boolean; timeOut: () => void }[] = [];
  const kafka = {
    consumer(config: { retry: { restartOnFailure: (e: Error) => Promise<boolean> } }) {
      const behaviour = behaviours[consumers.length] ?? 'one batch';
      const listeners = new Map<string, ((e: unknown) => void)[]>();
      const emit = (event: string, e?: unknown) => listeners.get(event)?.forEach((l) => l(e));
      let joined = false;
      const me = {
        seeks: [] as number[],
        disconnected: false,
        timeOut: () => emit(EVENTS.REQUEST_TIMEOUT),
      };
      consumers.push(me);
      const needsGroup = () => {
        if (!joined) throw new Error('Consumer group was not initialized, consumer#run must be called first');
      };
      return {
        events: EVENTS,
        on(event: string, listener: (e: unknown) => void) {
          listeners.set(event, [...(listeners.get(event) ?? []), listener]);
        },
        async connect() {
          if (behaviour === 'cannot connect')
            throw Object.assign(new Error('Connection error'), { name: 'KafkaJSNumberOfRetriesExceeded' });
        },
        async subscribe() {},
        async run({ eachBatch }: { eachBatch: (p: unknown) => Promise<void> }) {
          if (behaviour === 'crashes, retriable' || behaviour === 'crashes, fatal') {
            const error = new Error('The group coordinator is not available');
            if (behaviour === 'crashes, retriable') await config.retry.restartOnFailure(error);
            me.disconnected = true;
            emit(EVENTS.CRASH, { payload: { error, restart: false } });
            return;
          }
          setImmediate(() => {
            if (me.disconnected) return;
            joined = true;
            emit(EVENTS.GROUP_JOIN);
            const from = me.seeks[me.seeks.length - 1] ?? 0;
            const messages = log
              .slice(from)
              .map((v, i) => ({ offset: String(from + i), value: Buffer.from(v) }));
            void eachBatch({ batch: { partition: 0, messages }, heartbeat: async () => undefined });
          });
        },
        pause() {
          needsGroup();
        },
        seek({ offset }: { offset: string }) {
          needsGroup();
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

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const shown = (records: RawRecord[]) => records.map((r) => `${r.offset}:${r.value?.toString()}`);

describe('readPartitions', () => {
  it('makes a new consumer when kafkajs would start a crashed one again, and reads from the caller’s offsets', async () => {
    const log = Array.from({ length: 10 }, (_, i) => `r${i}`);
    const fake = fakeKafka(log, ['crashes, retriable', 'one batch']);
    const read: RawRecord[] = [];
    const reader = readPartitions(fake.kafka, {
      topic: 't',
      partitionCount: 1,
      start: new Map([[0, 3n]]),
      end: new Map([[0, 10n]]),
      onRecords: async (_partition, records) => void read.push(...records),
    });
    await reader.done;
    expect(shown(read)).toEqual(Array.from({ length: 7 }, (_, i) => `${i + 3}:r${i + 3}`));
    expect(fake.consumers.map((c) => c.seeks)).toEqual([[], [3]]);
  });

  it('fails the read on a crash kafkajs would not start it again after', async () => {
    const fake = fakeKafka(['r0'], ['crashes, fatal']);
    const reader = readPartitions(fake.kafka, {
      topic: 't',
      partitionCount: 1,
      start: new Map([[0, 0n]]),
      onRecords: async () => undefined,
    });
    await expect(reader.done).rejects.toThrow('The group coordinator is not available');
    expect(fake.consumers).toHaveLength(1);
  });

  it('fails a read that cannot connect; one under way waits for the broker', async () => {
    const failing = readPartitions(fakeKafka(['r0'], ['cannot connect']).kafka, {
      topic: 't',
      partitionCount: 1,
      start: new Map([[0, 0n]]),
      onRecords: async () => undefined,
    });
    await expect(failing.done).rejects.toThrow('Connection error');

    const log = ['r0', 'r1'];
    const fake = fakeKafka(log, ['one batch', 'cannot connect', 'cannot connect', 'one batch']);
    const read: RawRecord[] = [];
    const reader = readPartitions(fake.kafka, {
      topic: 't',
      partitionCount: 1,
      start: new Map([[0, 0n]]),
      onRecords: async (_partition, records) => void read.push(...records),
    });
    await tick();
    log.push('r2');
    fake.consumers[0].timeOut();
    await tick(1_500);
    expect(fake.consumers).toHaveLength(4);
    expect(fake.consumers[3].seeks).toEqual([2]);
    expect(shown(read)).toEqual(['0:r0', '1:r1', '2:r2']);
    await reader.stop();
  });

  it('reads on with a new consumer when a request goes unanswered, each record once and in order', async () => {
    const log = Array.from({ length: 5 }, (_, i) => `r${i}`);
    const fake = fakeKafka(log, []);
    const read: RawRecord[] = [];
    let release!: () => void;
    const firstBatchHeld = new Promise<void>((resolve) => (release = resolve));
    let batches = 0;
    const reader = readPartitions(fake.kafka, {
      topic: 't',
      partitionCount: 1,
      start: new Map([[0, 0n]]),
      onRecords: async (_partition, records) => {
        if (batches++ === 0) await firstBatchHeld;
        read.push(...records);
      },
    });
    await tick();
    expect(fake.consumers).toHaveLength(1);
    // More is written; the first consumer, still handing over its batch, times out.
    log.push('r5', 'r6');
    fake.consumers[0].timeOut();
    expect(fake.consumers).toHaveLength(2);
    expect(fake.consumers[0].disconnected).toBe(true);
    await tick();
    // The new consumer joined from the read offsets; its batch waits for the one being delivered.
    expect(fake.consumers[1].seeks).toEqual([0]);
    expect(read).toEqual([]);
    release();
    await tick();
    expect(shown(read)).toEqual(['0:r0', '1:r1', '2:r2', '3:r3', '4:r4', '5:r5', '6:r6']);
    // A late timeout of the consumer given up changes nothing.
    fake.consumers[0].timeOut();
    expect(fake.consumers).toHaveLength(2);
    await reader.stop();
    expect(fake.consumers[1].disconnected).toBe(true);
  });
});

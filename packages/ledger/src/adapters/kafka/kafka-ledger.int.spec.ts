import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { createTestDatabase, describeKafka, type TestDatabase } from '@test/support';
import { ledgerContract } from '../../ledger.contract';
import { LedgerUnavailableError } from '../../ledger.errors';
import type { Ledger, RecordedEvent } from '../../ledger.port';
import { KafkaLedger, type KafkaLedgerOptions } from './kafka-ledger';
import { readerGroupPrefix } from './kafka-partition-reader';

jest.setTimeout(120_000);

describeKafka('KafkaLedger', (brokers) => {
  let db: TestDatabase;
  const open: Ledger[] = [];
  const run = randomBytes(4).toString('hex');
  let n = 0;

  beforeAll(async () => {
    db = await createTestDatabase('ledgerk');
  });

  afterAll(async () => {
    await Promise.all(open.map((l) => l.close()));
    await db.drop();
  });

  function names() {
    n++;
    return { topic: `gatehouse.ledger.test.${run}.${n}`, prefix: `k_${run}_${n}` };
  }

  async function openLedger(
    o: Partial<KafkaLedgerOptions> & { topic: string; prefix: string },
  ): Promise<KafkaLedger> {
    const ledger = new KafkaLedger({ brokers, databaseUrl: db.url, partitions: 3, ...o });
    open.push(ledger);
    await ledger.init();
    return ledger;
  }

  async function collect(it: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    for await (const e of it) out.push(e);
    return out;
  }

  ledgerContract('kafka', async () => {
    const where = names();
    const ledger = await openLedger(where);
    return {
      ledger,
      reopen: () => openLedger(where),
      dispose: async () => undefined,
    };
  });

  const event = (communityId: string, id: string, n: number) => ({
    id,
    type: 'TierDefined',
    communityId,
    source: 'admin' as const,
    occurredAt: '2026-01-01T00:00:00.000Z',
    data: { n },
  });

  it('shows readers a record produced twice straight to the topic once, the first in log order', async () => {
    const where = names();
    const ledger = await openLedger(where);
    const [appended] = await ledger.append([event('c-dup', 'evt_appended', 1)]);

    const raw = new Kafka({ clientId: 'test-raw', brokers, logLevel: logLevel.NOTHING }).producer();
    await raw.connect();
    const recorded = (id: string, n: number) => ({
      key: 'c-dup',
      value: JSON.stringify({
        ...event('c-dup', id, n),
        subject: null,
        recordedAt: '2026-01-01T00:00:00.000Z',
        actor: null,
        causationId: null,
        correlationId: null,
        schemaVersion: 1,
      }),
    });
    // a copy of an appended event, then an event no appender ever saw, twice
    await raw.send({
      topic: where.topic,
      messages: [recorded('evt_appended', 2), recorded('evt_raw', 3), recorded('evt_raw', 4)],
    });
    await raw.disconnect();

    const [first, second] = await Promise.all([
      collect(ledger.read()),
      collect(ledger.read({ communityId: 'c-dup' })),
    ]);
    for (const seen of [first, second]) {
      expect(seen.map((e) => [e.id, e.data])).toEqual([
        ['evt_appended', { n: 1 }],
        ['evt_raw', { n: 3 }],
      ]);
      expect(seen[0].position).toBe(appended.position);
    }
    const restarted = await openLedger(where);
    const again = await collect(restarted.read());
    expect(again.map((e) => e.position)).toEqual(first.map((e) => e.position));
    // the raw duplicate is now known: appending it again is a no-op at the first record's position
    const [repeat] = await ledger.append([event('c-dup', 'evt_raw', 5)]);
    expect(repeat).toEqual({ id: 'evt_raw', position: first[1].position, appended: false });
  });

  it('leaves no consumer behind when a subscription stops while it is still joining', async () => {
    const where = names();
    const ledger = await openLedger(where);
    await ledger.append([event('c-stop', 'evt_stop', 1)]);
    // Stopped at once and at several points of the join (connect, subscribe, run).
    for (const delayMs of [0, 0, 5, 20, 50, 100, 200, 400]) {
      const sub = ledger.subscribe(`stopper-${delayMs}`, {}, async () => undefined);
      await new Promise((r) => setTimeout(r, delayMs));
      await sub.stop();
      await sub.done.catch(() => undefined);
    }
    const admin = new Kafka({ clientId: 'test-groups', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      // A consumer left running keeps its group's membership (and its process alive); one that
      // joined as it was told to leave is dropped by the broker after the session timeout (10 s).
      await new Promise((r) => setTimeout(r, 13_000));
      const { groups } = await admin.listGroups();
      const mine = groups.map((g) => g.groupId).filter((g) => g.startsWith(readerGroupPrefix(where.topic)));
      const described = mine.length ? (await admin.describeGroups(mine)).groups : [];
      expect(described.filter((g) => g.members.length > 0).map((g) => g.groupId)).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  it('puts a community in the partition kafkajs would choose for its key', async () => {
    const where = names();
    const ledger = await openLedger(where);
    const [r] = await ledger.append([event('community-42', 'evt_p', 1)]);
    expect(r.position.split(':')[0]).toBe(String(ledger.partitionOf('community-42', 3)));
  });

  it('reports an unreachable broker as LedgerUnavailableError within seconds, never as success', async () => {
    const ledger = new KafkaLedger({
      brokers: ['127.0.0.1:1'],
      databaseUrl: db.url,
      topic: 'nowhere',
      prefix: `k_${run}_down`,
    });
    const started = Date.now();
    try {
      await expect(ledger.append([event('c', 'evt_down', 1)])).rejects.toThrow(LedgerUnavailableError);
      await expect(ledger.ping()).rejects.toThrow(LedgerUnavailableError);
    } finally {
      await ledger.close();
    }
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

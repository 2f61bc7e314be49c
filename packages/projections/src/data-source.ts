import type { Client } from 'pg';
import { DataSource, type LoggerOptions } from 'typeorm';
import { LedgerEventRow } from './archive/ledger-event.row';
import { membershipAccessEntities } from './access/access.row';
import { CatalogRow } from './catalog/catalog.row';
import { migrations } from './migrations';
import { ProjectionAnomalyRow } from './runtime/projection-anomaly.row';
import { ProjectionCheckpointRow } from './runtime/projection-checkpoint.row';
import { tiersEntities } from './tiers/tiers.row';

export type DataSourceConfig = {
  url: string;
  /** PostgreSQL schema holding the read models (default: the server's search_path, i.e. `public`). */
  schema?: string;
  logging?: LoggerOptions;
  poolSize?: number;
  /**
   * The pg client class its pool makes connections with, e.g. `clientWithAnswerDeadline(ms)` from
   * `@gatehouse/ledger`, so that a query on a connection that went silent fails rather than waits.
   */
  client?: typeof Client;
  /** How long a query waits for a connection from the pool, a new one opened included (default: no limit). */
  connectTimeoutMs?: number;
};

export const readModelEntities = [
  ProjectionCheckpointRow,
  ProjectionAnomalyRow,
  LedgerEventRow,
  CatalogRow,
  ...membershipAccessEntities,
  ...tiersEntities,
];

const MIGRATIONS_TABLE = 'read_model_migrations';
// Any constant shared by every process that migrates the same database.
const MIGRATION_LOCK_KEY = 7_215_004_311;

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A TypeORM data source for the read models. Never `synchronize`: the schema comes from migrations. */
export function createDataSource(config: DataSourceConfig): DataSource {
  return new DataSource({
    type: 'postgres',
    url: config.url,
    schema: config.schema,
    entities: readModelEntities,
    migrations,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    logging: config.logging ?? false,
    poolSize: config.poolSize ?? 10,
    connectTimeoutMS: config.connectTimeoutMs,
    applicationName: 'gatehouse-projections',
    // Plain SQL on hot paths uses unqualified table names, so the connection's search_path must
    // point at the same schema TypeORM uses.
    extra: {
      ...(config.schema && { options: `-c search_path=${quoteIdent(config.schema)}` }),
      ...(config.client && { Client: config.client }),
    },
  });
}

async function withDataSource<T>(config: DataSourceConfig, fn: (ds: DataSource) => Promise<T>): Promise<T> {
  // No answer deadline: a migration's DDL (an index built on a large table) may work long in silence.
  const ds = createDataSource({ ...config, poolSize: 2, client: undefined });
  await ds.initialize();
  try {
    if (config.schema) {
      // Two processes creating the same schema at once: IF NOT EXISTS still races in the catalog.
      await ds
        .query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(config.schema)}`)
        .catch((err: { driverError?: { code?: string } }) => {
          if (err.driverError?.code !== '23505') throw err;
        });
    }
    return await fn(ds);
  } finally {
    await ds.destroy();
  }
}

/**
 * Applies pending read-model migrations and returns their names (empty when up to date).
 * Concurrent callers are serialised by an advisory lock, so two processes booting together is safe.
 */
export async function runMigrations(
  url: string,
  options: Omit<DataSourceConfig, 'url'> = {},
): Promise<string[]> {
  return withDataSource({ ...options, url }, async (ds) => {
    const lock = ds.createQueryRunner();
    await lock.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const applied = await ds.runMigrations({ transaction: 'each' });
      return applied.map((m) => m.name);
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      await lock.release();
    }
  });
}

/** Names of migrations not yet applied to the database at `url` (empty when up to date). */
export async function pendingMigrations(
  url: string,
  options: Omit<DataSourceConfig, 'url'> = {},
): Promise<string[]> {
  return withDataSource({ ...options, url }, pendingMigrationsOf);
}

/**
 * Names of migrations not yet applied, through an initialised data source of `createDataSource`
 * and its pool (for /readyz, which a new connection per call would make costly to ask).
 */
export async function pendingMigrationsOf(ds: DataSource): Promise<string[]> {
  const tables = await ds.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM pg_tables WHERE tablename = $1 AND schemaname = current_schema()`,
    [MIGRATIONS_TABLE],
  );
  const done = new Set<string>();
  if (tables[0].n > 0) {
    const rows = await ds.query<{ name: string }[]>(`SELECT name FROM ${MIGRATIONS_TABLE}`);
    for (const r of rows) done.add(r.name);
  }
  return ds.migrations.map((m) => m.name ?? m.constructor.name).filter((n) => !done.has(n));
}

import { escapeLiteral } from 'pg';
import {
  DataSource,
  type DataSourceOptions,
  type EntityManager,
  type ObjectLiteral,
  type QueryRunner,
} from 'typeorm';
import { createDataSource, type DataSourceConfig } from '../data-source';
import { APP_ROLE, withSessionSettings } from './row-level-security';
import { TENANT_SETTING, currentTenant } from './tenant-context';

type PostgresConnectionOptions = Extract<DataSourceOptions, { type: 'postgres' }>;
type IsolationLevel = Parameters<DataSource['transaction']>[0];
type ReleasableRunner = QueryRunner & { releasePostgresConnection?(err?: unknown): Promise<void> };

function scopeSql(tenant: string): string {
  // One round trip opens the transaction and scopes it; both settings end with it, so the pooled
  // connection goes back with neither. The role is repeated here in case the URL's options were lost.
  return (
    `START TRANSACTION READ ONLY; ` +
    `SELECT set_config('role', ${escapeLiteral(APP_ROLE)}, true), set_config(${escapeLiteral(TENANT_SETTING)}, ${escapeLiteral(tenant)}, true)`
  );
}

/**
 * The data source of API reads: connections run as the app role, and every `query` runs in its own
 * read-only transaction scoped to the tenant of the current context (`runAsTenant`). Outside any
 * context the tenant is empty and every table under the policy reads as empty: it fails closed.
 * Repositories and query builders get no tenant either, so they see nothing; the query objects use
 * `query`.
 */
export class TenantDataSource extends DataSource {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the signature TypeORM declares
  override async query<T = any>(
    sql: string,
    parameters?: unknown[] | ObjectLiteral,
    queryRunner?: QueryRunner,
  ): Promise<T> {
    // A caller's own runner is inside a transaction that `transaction` below has already scoped.
    if (queryRunner) return super.query<T>(sql, parameters as unknown[], queryRunner);
    const runner = this.createQueryRunner() as ReleasableRunner;
    let broken: unknown;
    try {
      await runner.query(scopeSql(currentTenant()));
      try {
        const rows = await runner.query(sql, parameters as unknown[]);
        await runner.query('COMMIT');
        return rows as T;
      } catch (err) {
        await runner.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr;
        });
        throw err;
      }
    } finally {
      // A connection whose transaction could not be closed is discarded, never pooled.
      if (broken && runner.releasePostgresConnection) await runner.releasePostgresConnection(broken);
      else await runner.release();
    }
  }

  override async transaction<T>(
    ...args: [(em: EntityManager) => Promise<T>] | [IsolationLevel, (em: EntityManager) => Promise<T>]
  ): Promise<T> {
    const fn = args.length === 2 ? args[1] : args[0];
    const tenant = currentTenant();
    const scoped = async (em: EntityManager) => {
      await em.query(`SELECT set_config('role', $1, true), set_config($2, $3, true)`, [
        APP_ROLE,
        TENANT_SETTING,
        tenant,
      ]);
      return fn(em);
    };
    return args.length === 2 ? super.transaction(args[0], scoped) : super.transaction(scoped);
  }
}

/** The API reads' data source over a database URL (the app role is added to the URL's options). */
export function createTenantDataSource(config: DataSourceConfig): TenantDataSource {
  // node-postgres lets the URL's options override `extra.options`, so the search_path goes there too.
  const url = withSessionSettings(config.url, {
    role: APP_ROLE,
    ...(config.schema ? { search_path: `"${config.schema.replace(/"/g, '""')}"` } : {}),
  });
  const base = createDataSource({ ...config, url });
  // The app role may not install extensions; the migrations already did what was needed.
  const options = base.options as PostgresConnectionOptions;
  return new TenantDataSource({
    ...options,
    applicationName: 'gatehouse-api-reads',
    installExtensions: false,
  });
}

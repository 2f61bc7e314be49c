import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { createDataSource, runMigrations, type DataSourceConfig } from '../data-source';

/** A migrated schema of its own on the given database, for one test. */
export async function freshReadModels(
  url: string,
  prefix = 't',
  options: Pick<DataSourceConfig, 'client'> = {},
): Promise<{ ds: DataSource; schema: string; close(): Promise<void> }> {
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  await runMigrations(url, { schema });
  const ds = createDataSource({ url, schema, poolSize: 4, ...options });
  await ds.initialize();
  return {
    ds,
    schema,
    async close() {
      if (ds.isInitialized) await ds.destroy();
    },
  };
}

/** Every row of a table as text, ordered, to compare read models byte for byte. */
export async function tableText(ds: DataSource, table: string, orderBy: string): Promise<string[]> {
  const rows: { row: string }[] = await ds.query(`SELECT t::text AS row FROM ${table} t ORDER BY ${orderBy}`);
  return rows.map((r) => r.row);
}

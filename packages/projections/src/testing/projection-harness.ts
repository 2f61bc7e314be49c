import { PostgresLedger } from '@gatehouse/ledger';
import pino, { type Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { createDataSource, runMigrations } from '../data-source';
import type { Projection } from '../runtime/projection';
import { Projector } from '../runtime/projector';

/** Migrated read models, a PostgreSQL ledger and a running projector on one database, for tests. */
export type ProjectionHarness = {
  ds: DataSource;
  ledger: PostgresLedger;
  projector: Projector;
  close(): Promise<void>;
};

export async function startProjectionHarness(options: {
  databaseUrl: string;
  projections: (logger: Logger) => Projection[];
  maxBatch?: number;
  poolSize?: number;
}): Promise<ProjectionHarness> {
  await runMigrations(options.databaseUrl);
  const ds = createDataSource({ url: options.databaseUrl, poolSize: options.poolSize ?? 4 });
  await ds.initialize();
  const ledger = new PostgresLedger({ connectionString: options.databaseUrl, pollIntervalMs: 50 });
  await ledger.init();
  const logger = pino({ level: 'silent' });
  const projector = new Projector({
    dataSource: ds,
    ledger,
    logger,
    projections: options.projections(logger),
    ...(options.maxBatch !== undefined && { maxBatch: options.maxBatch }),
  });
  projector.start();
  return {
    ds,
    ledger,
    projector,
    async close() {
      await projector.stop();
      await ledger.close();
      await ds.destroy();
    },
  };
}

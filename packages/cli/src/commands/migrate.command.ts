import { createLogger, loadConfig } from '@gatehouse/api';
import { openRegions } from './regions';

/**
 * Applies read-model migrations and creates the ledger's tables or topic, in every configured
 * region's stores. Idempotent.
 */
export async function migrateCommand(): Promise<number> {
  const config = loadConfig();
  const log = createLogger(config);
  const set = await openRegions(config, log);
  try {
    for (const r of set.regions) {
      process.stdout.write(
        `${set.label(r.region)}migrations applied; ledger ready (${r.config.kafkaBrokers ? 'kafka' : 'postgres'})\n`,
      );
    }
  } finally {
    await set.close();
  }
  return 0;
}

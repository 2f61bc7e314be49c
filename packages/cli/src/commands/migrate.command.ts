import { createLogger, loadConfig, openStores } from '@gatehouse/api';

/** Applies read-model migrations and creates the ledger's tables or topic. Idempotent. */
export async function migrateCommand(): Promise<number> {
  const config = loadConfig();
  const log = createLogger(config);
  const stores = await openStores(config, log, { reuseRunning: true });
  await stores.close();
  process.stdout.write(`migrations applied; ledger ready (${config.kafkaBrokers ? 'kafka' : 'postgres'})\n`);
  return 0;
}

import { createLogger, devSecretsFile, loadConfig, startGatehouse, withDevSecrets } from '@gatehouse/api';

/** After a second stop signal, how long the stop may still take before the process exits anyway. */
const HURRIED_EXIT_MS = 5_000;

/**
 * Starts the server and keeps it running until SIGINT or SIGTERM, then stops everything cleanly,
 * letting open requests finish first; a second signal stops waiting for them, and exits (status 1)
 * if the rest has not stopped within 5 s.
 */
export async function serveCommand(): Promise<number> {
  const config = withDevSecrets(loadConfig());
  const log = createLogger(config);
  if (config.devSecrets.length > 0) {
    log.warn(
      { file: devSecretsFile(config.dataDir), generated: config.devSecrets },
      'development secrets in use for variables that are not set (never in production)',
    );
  }
  let running;
  try {
    running = await startGatehouse(config, log);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'PORT_IN_USE' || e.code === 'DATA_DIR_IN_USE') {
      process.stderr.write(`gatehouse: cannot start: ${e.message}\n`);
      return 1;
    }
    throw err;
  }
  process.stdout.write(`Gatehouse is ready: ${running.url}/graphql\n`);
  // Shown on the terminal for local use, never in the logs; production requires the variable.
  if (config.devSecrets.includes('GATEHOUSE_JWT_SECRET')) {
    process.stdout.write(
      `Development GATEHOUSE_JWT_SECRET (kept in ${devSecretsFile(config.dataDir)}): ${config.jwtSecret}\n` +
        `  a token: npx gatehouse token --sub <id> --role platform-admin\n`,
    );
  }
  const gatehouse = running;
  await new Promise<void>((resolve) => {
    let stopping = false;
    let hurried = false;
    const stop = (signal: string) => {
      if (stopping) {
        if (hurried) return;
        hurried = true;
        // A second signal: the requests still open are not waited for, nor, after a few seconds,
        // whatever the stop still waits on (a database that stopped answering, say).
        log.info({ signal }, 'stopping now');
        gatehouse.cutOpenRequests();
        setTimeout(() => {
          log.error(
            { afterSeconds: HURRIED_EXIT_MS / 1000 },
            'not waiting any longer: exiting before everything closed (see "still stopping" above)',
          );
          process.exit(1);
        }, HURRIED_EXIT_MS).unref();
        return;
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      gatehouse
        .close()
        .catch((err: unknown) => log.error({ err }, 'error while stopping'))
        .finally(() => resolve());
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  log.info('stopped');
  return 0;
}

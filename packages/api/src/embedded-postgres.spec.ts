import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { watchPostmaster } from './embedded-postgres';

// The watch over the embedded PostgreSQL, with a stand-in process for the postmaster: its pid file
// is what the watch reads, and a restart writes the new one's, as PostgreSQL does.

const log = pino({ level: 'silent' });
const fast = { everyMs: 10, stopWaitMs: 200 };

describe('watchPostmaster', () => {
  let dir: string;
  const children: ChildProcess[] = [];

  const postmaster = async (): Promise<ChildProcess> => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    children.push(child);
    await new Promise((r) => child.once('spawn', r));
    writeFileSync(path.join(dir, 'postmaster.pid'), `${child.pid}\n${dir}\n`);
    return child;
  };
  const exited = (child: ChildProcess) => new Promise((r) => child.once('exit', r));
  const until = async (check: () => boolean, ms = 5_000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-watch-'));
  });
  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves a running PostgreSQL alone, and says at stop that it runs', async () => {
    await postmaster();
    let restarts = 0;
    const watch = watchPostmaster(dir, log, async () => void restarts++, fast);
    await new Promise((r) => setTimeout(r, 100));
    expect(restarts).toBe(0);
    expect(await watch.stop()).toBe(true);
  });

  it('starts it again once when it exits, then watches the new one', async () => {
    const first = await postmaster();
    let second: ChildProcess | undefined;
    let restarts = 0;
    const watch = watchPostmaster(
      dir,
      log,
      async () => {
        restarts++;
        second = await postmaster();
      },
      fast,
    );
    first.kill('SIGKILL');
    await until(() => restarts === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(restarts).toBe(1);

    second!.kill('SIGKILL');
    await until(() => restarts === 2);
    expect(await watch.stop()).toBe(true);
  });

  it('tries a failed start again, less often each time, until one succeeds', async () => {
    const first = await postmaster();
    const attempts: number[] = [];
    const watch = watchPostmaster(
      dir,
      log,
      async () => {
        attempts.push(Date.now());
        if (attempts.length < 4) throw new Error('shared memory still in use');
        await postmaster();
      },
      fast,
    );
    first.kill('SIGKILL');
    await until(() => attempts.length === 4);
    // Waits of 20, 40 and 80 ms (the interval doubled per failure), each checked every 10 ms.
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(20);
    expect(gaps[1]).toBeGreaterThanOrEqual(40);
    expect(gaps[2]).toBeGreaterThanOrEqual(80);
    expect(await watch.stop()).toBe(true);
  });

  it('says at stop that a PostgreSQL gone for good is not running, so nothing waits on it', async () => {
    const first = await postmaster();
    const watch = watchPostmaster(dir, log, () => Promise.reject(new Error('cannot start')), fast);
    first.kill('SIGKILL');
    await exited(first);
    await new Promise((r) => setTimeout(r, 50));
    expect(await watch.stop()).toBe(false);
  });

  it('does not hold the stop longer than stopWaitMs behind a start that hangs', async () => {
    const first = await postmaster();
    let asked = false;
    const watch = watchPostmaster(
      dir,
      log,
      () => {
        asked = true;
        return new Promise<void>(() => undefined);
      },
      fast,
    );
    first.kill('SIGKILL');
    await until(() => asked);
    const started = Date.now();
    expect(await watch.stop()).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

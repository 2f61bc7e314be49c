import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { tracked } from './children';
import { repoRoot } from './services';

// Starts the built `gatehouse serve` as a user would, and reads its address from stdout.

export type ServerProcess = {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Resolves once the server's output holds `text` (its log reaches this process on its own time). */
  says(text: string | RegExp, timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

export type StartResult =
  { ok: true; server: ServerProcess } | { ok: false; code: number | null; output: string };

export function startServerProcess(
  env: Record<string, string | undefined>,
  timeoutMs = 90_000,
): Promise<StartResult> {
  const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'gatehouse.js');
  const child = tracked(
    spawn(process.execPath, [bin, 'serve'], {
      cwd: repoRoot,
      env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise<StartResult>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ ok: false, code: null, output: `timed out after ${timeoutMs} ms\n${out}` });
    }, timeoutMs);
    const onData = () => {
      const m = /Gatehouse is ready: (http:\/\/[^\s]+)\/graphql/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({
        ok: true,
        server: {
          child,
          url: m[1],
          output: () => out,
          async says(text: string | RegExp, timeoutMs = 10_000) {
            const deadline = Date.now() + timeoutMs;
            while (!(typeof text === 'string' ? out.includes(text) : text.test(out))) {
              if (Date.now() > deadline)
                throw new Error(
                  `the server did not say ${String(text)} within ${timeoutMs} ms:\n${out.slice(-2000)}`,
                );
              await new Promise((r) => setTimeout(r, 25));
            }
          },
          async stop(signal: NodeJS.Signals = 'SIGINT') {
            if (child.exitCode !== null) return child.exitCode;
            child.kill(signal);
            // A server that does not stop fails the test rather than holding the run open: killed
            // after 30 s, it answers null (a test expecting 0 fails).
            const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
            const code = await exited;
            clearTimeout(timer);
            return code;
          },
        },
      });
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      resolve({ ok: false, code, output: out });
    });
  });
}

/** Runs one `gatehouse` command to its end, as a user would from a shell. */
export function runGatehouse(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = tracked(
      spawn(process.execPath, [path.join(repoRoot, 'packages/cli/bin/gatehouse.js'), ...args], {
        cwd: repoRoot,
        env: { PATH: process.env.PATH, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

import { spawn } from 'node:child_process';
import path from 'node:path';
import { tracked } from './children';
import { repoRoot } from './services';

/** A `gatehouse` command that runs until stopped (`ledger tail`, `stripe fake`), with what it printed so far. */
export type CliProcess = {
  stdout(): string;
  stderr(): string;
  /** The exit code once it has ended and everything it printed has been read. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
};

/** Starts the built `gatehouse` with `args`, as a user would from a shell. */
export function startCliProcess(args: string[], env: Record<string, string | undefined>): CliProcess {
  const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'gatehouse.js');
  const child = tracked(
    spawn(process.execPath, [bin, ...args], {
      cwd: repoRoot,
      env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    kill: (signal = 'SIGINT') => child.kill(signal),
  };
}

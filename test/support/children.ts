import type { ChildProcess } from 'node:child_process';

/**
 * The processes the tests start (servers, commands). One that a failed test never got to stop would
 * run on, and its pipes would keep Jest from ending; the end of each test file kills those left.
 */
const running = new Set<ChildProcess>();

/** Kept track of until it exits. */
export function tracked<C extends ChildProcess>(child: C): C {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Kills the tracked processes still running; answers their command lines. */
export function killLeftRunning(): string[] {
  const killed: string[] = [];
  for (const child of running) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGKILL');
    killed.push(child.spawnargs.slice(1).join(' '));
  }
  running.clear();
  return killed;
}

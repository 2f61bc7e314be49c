import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

// CPU time spent by this process and by the local PostgreSQL server's processes, so that a bench
// can say where a request's cost goes, not only how many requests fit in a second.

/**
 * CPU clock ticks from the text of `/proc/<pid>/stat` (the name may hold spaces and parentheses):
 * the process's own (utime + stime) and its ended children's (cutime + cstime).
 */
export function ticksOfStat(stat: string): { self: number; children: number } {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17), numbered from 1.
  return {
    self: Number(fields[11]) + Number(fields[12]),
    children: Number(fields[13]) + Number(fields[14]),
  };
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU milliseconds used so far by the processes named `postgres` on this machine, or null where
 * `/proc` cannot tell (not Linux, or a server in a container or on another host). A backend that
 * exits (a pool closing an idle connection) is counted on in the postmaster's children's time, so
 * the total never goes back.
 */
export function postgresCpuMs(): number | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  let ticks = 0;
  let found = false;
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
      const t = ticksOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      ticks += t.self + t.children;
      found = true;
    } catch {
      // the process ended between the listing and the read
    }
  }
  return found ? (ticks * 1000) / clockTicks() : null;
}

export type CpuSample = { nodeMs: number; postgresMs: number | null };

/** This process's CPU (every thread, so a load generator on a worker thread counts) and PostgreSQL's. */
export function cpuSample(): CpuSample {
  const { user, system } = process.cpuUsage();
  return { nodeMs: (user + system) / 1000, postgresMs: postgresCpuMs() };
}

/** CPU per operation between two samples. */
export function cpuPer(before: CpuSample, after: CpuSample, operations: number): CpuSample {
  return {
    nodeMs: (after.nodeMs - before.nodeMs) / operations,
    postgresMs:
      before.postgresMs === null || after.postgresMs === null
        ? null
        : (after.postgresMs - before.postgresMs) / operations,
  };
}

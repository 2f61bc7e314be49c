import { readFileSync } from 'node:fs';
import { cpuPer, cpuSample, ticksOfStat } from './cpu';

describe('bench CPU accounting', () => {
  it('reads the process’s and its ended children’s times after a name that holds spaces and parentheses', () => {
    const stat =
      '4242 (postgres: a (b) c) S 1 4242 4242 0 -1 4194560 1200 0 3 0 731 269 40 2 20 0 1 0 100 219468 3000';
    expect(ticksOfStat(stat)).toEqual({ self: 731 + 269, children: 40 + 2 });
  });

  it('agrees with /proc for this process where /proc exists', () => {
    let stat: string;
    try {
      stat = readFileSync('/proc/self/stat', 'utf8');
    } catch {
      return; // not Linux: nothing to compare with
    }
    // Burn some CPU so the tick counters are well above zero.
    const until = Date.now() + 200;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    stat = readFileSync('/proc/self/stat', 'utf8');
    const fromProc = (ticksOfStat(stat).self * 1000) / 100;
    const fromNode = cpuSample().nodeMs;
    // Both count the whole process; ticks are coarse (10 ms) and the clock rate may differ from 100.
    expect(fromProc).toBeGreaterThan(0);
    expect(Math.abs(fromProc - fromNode) / fromNode).toBeLessThan(0.5);
  });

  it('divides the difference between two samples by the operations, and keeps an unknown server unknown', () => {
    expect(cpuPer({ nodeMs: 100, postgresMs: 50 }, { nodeMs: 400, postgresMs: 110 }, 300)).toEqual({
      nodeMs: 1,
      postgresMs: 0.2,
    });
    expect(cpuPer({ nodeMs: 0, postgresMs: null }, { nodeMs: 10, postgresMs: 5 }, 10).postgresMs).toBeNull();
  });
});

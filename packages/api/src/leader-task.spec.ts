import { everyWhileLeading } from './leader-task';

describe('everyWhileLeading', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs on the leading server only, every everyMs, until stopped', async () => {
    let leading = false;
    let runs = 0;
    const stop = everyWhileLeading({
      everyMs: 1_000,
      firstAfterMs: 100,
      leads: () => leading,
      task: async () => void runs++,
      failed: () => undefined,
    });
    await jest.advanceTimersByTimeAsync(2_500);
    expect(runs).toBe(0);
    leading = true;
    await jest.advanceTimersByTimeAsync(1_000); // the tick at 3 s
    expect(runs).toBe(1);
    await stop();
    await jest.advanceTimersByTimeAsync(5_000);
    expect(runs).toBe(1);
  });

  it('runs once soon after the start, skips ticks while a run is under way, and goes on after a failure', async () => {
    const failures: unknown[] = [];
    let runs = 0;
    let skipped = 0;
    let finish: (() => void) | undefined;
    const stop = everyWhileLeading({
      everyMs: 1_000,
      firstAfterMs: 100,
      leads: () => true,
      task: async () => {
        runs++;
        if (runs === 1) await new Promise<void>((resolve) => (finish = resolve));
        if (runs === 2) throw new Error('Stripe said no');
      },
      failed: (err) => failures.push(err),
      skipped: () => void skipped++,
    });
    await jest.advanceTimersByTimeAsync(100);
    expect(runs).toBe(1);
    await jest.advanceTimersByTimeAsync(3_000); // three ticks while the first run waits
    expect(runs).toBe(1);
    expect(skipped).toBe(3);
    finish!();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(runs).toBe(2);
    expect(failures).toEqual([new Error('Stripe said no')]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(runs).toBe(3);
    await stop();
  });

  it('tells the run under way to stop, waits for it to end, and counts it as no failure', async () => {
    const failures: unknown[] = [];
    let runs = 0;
    let seen: AbortSignal | undefined;
    let finish: (() => void) | undefined;
    const stop = everyWhileLeading({
      everyMs: 1_000,
      leads: () => true,
      task: async (signal) => {
        runs++;
        seen = signal;
        await new Promise<void>((resolve) => (finish = resolve));
        signal.throwIfAborted();
      },
      failed: (err) => failures.push(err),
    });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(runs).toBe(1);
    expect(seen?.aborted).toBe(false);
    let stopped = false;
    const stopping = stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(seen?.aborted).toBe(true);
    expect(stopped).toBe(false); // the run has not ended yet
    finish!();
    await stopping;
    expect(stopped).toBe(true);
    expect(failures).toEqual([]);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(runs).toBe(1);
  });

  it('stops at once when no run is under way', async () => {
    const stop = everyWhileLeading({
      everyMs: 1_000,
      leads: () => true,
      task: async () => undefined,
      failed: () => undefined,
    });
    await expect(stop()).resolves.toBeUndefined();
  });
});

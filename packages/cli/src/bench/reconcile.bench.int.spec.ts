import { createTestDatabase, type TestDatabase } from '@test/support';
import { peakPerSecond, runReconcileBench } from './reconcile.bench';

describe('reconcile bench', () => {
  it('counts the most requests started within any one second', () => {
    expect(peakPerSecond([])).toBe(0);
    expect(peakPerSecond([0, 999, 1_000, 1_500])).toBe(3);
    expect(peakPerSecond([0, 1_000, 2_000])).toBe(1);
    expect(peakPerSecond([5, 5, 5])).toBe(3);
  });

  describe('on a real ledger', () => {
    let db: TestDatabase;
    beforeAll(async () => (db = await createTestDatabase('bench_reconcile')));
    afterAll(() => db.drop());

    it('lists every account under each setting, the capped ones never above their rate nor refused', async () => {
      const lines: string[] = [];
      const figures = await runReconcileBench({
        databaseUrl: db.url,
        accounts: 10,
        latenciesMs: [20],
        // Above the cap, with room for timers' lateness; four at a time with no cap may pass it (the
        // refused requests are then asked for again: the bench fails a run that missed an event).
        rateLimitPerSecond: 12,
        log: (line) => lines.push(line),
      });
      expect(figures.map((f) => [f.concurrency, f.requestsPerSecond])).toEqual([
        [1, 10],
        [4, 10],
        [4, null],
      ]);
      expect(figures[0].speedUp).toBe(1);
      for (const f of figures.filter((g) => g.requestsPerSecond !== null)) {
        expect(f.peakRequestsPerSecond).toBeLessThanOrEqual(10);
        expect(f.refused).toBe(0);
      }
      // 30 requests answered in 20 ms each, four at a time: with no cap they come faster than 10 a second.
      expect(figures[2].peakRequestsPerSecond).toBeGreaterThan(10);
      expect(lines[0]).toContain('a fake Stripe refusing past 12 requests a second;');
      expect(lines.filter((l) => l.startsWith('latency'))).toHaveLength(3);
    }, 120_000);
  });
});

import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { advisoryLock, advisoryStripeAccountLock, type LockHolder } from './advisory-locks';

describe('advisory locks', () => {
  let db: TestDatabase;
  // Two servers' connection pools on the same database.
  let first: DataSource;
  let second: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('gh_lock');
    first = await new DataSource({ type: 'postgres', url: db.url }).initialize();
    second = await new DataSource({ type: 'postgres', url: db.url }).initialize();
  });

  afterAll(async () => {
    await first?.destroy();
    await second?.destroy();
    await db?.drop();
  });

  /** Advisory locks held in the test's database, by any session. */
  const advisoryLocksHeld = async () =>
    Number(
      (
        await first.query<{ n: string }[]>(
          `SELECT count(*) AS n FROM pg_locks
            WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )
      )[0].n,
    );

  describe('advisoryStripeAccountLock', () => {
    /** Runs two holders of the given accounts at once and returns the order they entered and left in. */
    async function race(a: string, b: string): Promise<string[]> {
      const steps: string[] = [];
      let releaseFirst!: () => void;
      const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
      let firstEntered!: () => void;
      const entered = new Promise<void>((resolve) => (firstEntered = resolve));
      const one = advisoryStripeAccountLock(first)(a, async () => {
        steps.push('first in');
        firstEntered();
        await firstHolds;
        steps.push('first out');
      });
      await entered;
      const two = advisoryStripeAccountLock(second)(b, async () => {
        steps.push('second in');
        return 'second';
      });
      // Long enough for the second to get in if nothing held it back.
      await new Promise((r) => setTimeout(r, 300));
      releaseFirst();
      await Promise.all([one, two]);
      return steps;
    }

    it('lets one holder at a time link the same account, across connection pools', async () => {
      expect(await race('acct_same', 'acct_same')).toEqual(['first in', 'first out', 'second in']);
    });

    it('does not hold back another account', async () => {
      expect(await race('acct_one', 'acct_other')).toEqual(['first in', 'second in', 'first out']);
    });

    it('returns what the holder returns, releases the lock and the connection when the holder throws', async () => {
      const lock = advisoryStripeAccountLock(first);
      await expect(lock('acct_fails', async () => Promise.reject(new Error('refused')))).rejects.toThrow(
        'refused',
      );
      await expect(advisoryStripeAccountLock(second)('acct_fails', async () => 42)).resolves.toBe(42);
      expect(await advisoryLocksHeld()).toBe(0);
    });
  });

  describe('advisoryLock', () => {
    /** Holds `key` from `first` until the answered function is called. */
    async function heldElsewhere(key: string, as?: string): Promise<() => Promise<void>> {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const holds = new Promise<void>((resolve) => (entered = resolve));
      const holder = advisoryLock(first, key, { as }).hold(async () => {
        entered();
        await released;
      });
      await holds;
      return async () => {
        release();
        await holder;
      };
    }

    it('holdIfFree: runs nothing while another session holds the lock, and runs once it is free', async () => {
      const release = await heldElsewhere('bulk-read');
      let ran = 0;
      const lock = advisoryLock(second, 'bulk-read');
      await expect(lock.holdIfFree(async () => ++ran)).resolves.toEqual({ held: false });
      expect(ran).toBe(0);
      // Another key is free.
      await expect(advisoryLock(second, 'another').holdIfFree(async () => 'other')).resolves.toEqual({
        held: true,
        value: 'other',
      });
      await release();
      await expect(lock.holdIfFree(async () => ++ran)).resolves.toEqual({ held: true, value: 1 });
    });

    it('hold with a signal: waits, says so once, and runs once the other session lets go', async () => {
      const before = new Date(Date.now() - 1_000);
      const release = await heldElsewhere('waited', 'stripe reconcile on host-a, pid 4242');
      const steps: string[] = [];
      let heldBy: LockHolder | undefined;
      const waiter = advisoryLock(second, 'waited').hold(async () => void steps.push('ran'), {
        signal: new AbortController().signal,
        waiting: (holder) => {
          heldBy = holder;
          steps.push('waiting');
        },
      });
      // Several retries' worth.
      await new Promise((r) => setTimeout(r, 1_300));
      expect(steps).toEqual(['waiting']);
      // Who holds it, by the name it gave.
      expect(heldBy?.as).toBe('stripe reconcile on host-a, pid 4242');
      expect(heldBy?.since.getTime()).toBeGreaterThan(before.getTime());
      expect(heldBy?.since.getTime()).toBeLessThanOrEqual(Date.now());
      await release();
      await waiter;
      expect(steps).toEqual(['waiting', 'ran']);
      // The holder's pooled connection got its own name back.
      const named = await second.query<{ n: string }[]>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'stripe reconcile on host-a, pid 4242'`,
      );
      expect(Number(named[0].n)).toBe(0);
    });

    it('hold with a signal: an abort ends the wait without running, and leaves nothing held', async () => {
      const release = await heldElsewhere('given-up');
      const stop = new AbortController();
      let ran = false;
      const waiter = advisoryLock(second, 'given-up').hold(async () => void (ran = true), {
        signal: stop.signal,
      });
      await new Promise((r) => setTimeout(r, 700));
      stop.abort(new Error('stopped by the operator'));
      await expect(waiter).rejects.toThrow('stopped by the operator');
      expect(ran).toBe(false);
      await release();
      expect(await advisoryLocksHeld()).toBe(0);
    });
  });
});

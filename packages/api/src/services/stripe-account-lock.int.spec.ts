import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { advisoryStripeAccountLock } from './stripe-account-lock';

describe('advisoryStripeAccountLock', () => {
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
    const held = await first.query<{ n: string }[]>(
      `SELECT count(*) AS n FROM pg_locks
        WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    expect(Number(held[0].n)).toBe(0);
  });
});

import {
  memoryReconcileWindowStore,
  oldestListing,
  ReconcileWindows,
  type ReconcileWindowStore,
} from './reconcile-windows';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T = Date.UTC(2026, 0, 10, 12);

describe('ReconcileWindows', () => {
  const windows = (store?: ReconcileWindowStore) =>
    new ReconcileWindows({ firstWindowMs: HOUR, overlapMs: 5 * MIN }, store);
  const plan = async (w: ReconcileWindows, accounts: (string | null)[], now: number) =>
    (await w.plan(accounts, now)).map((g) => [g.since.getTime() - T, g.accounts]);

  it('lists an account back over the first window until a run has listed it', async () => {
    const w = windows();
    expect(await plan(w, [null, 'acct_a', 'acct_a'], T)).toEqual([[-HOUR, [null, 'acct_a']]]);
    expect(await plan(w, [null, 'acct_a'], T + MIN)).toEqual([[MIN - HOUR, [null, 'acct_a']]]);
  });

  it('then from the start of the last run that listed it, less the overlap', async () => {
    const w = windows();
    await w.listed([null, 'acct_a'], T);
    expect(await plan(w, [null, 'acct_a'], T + MIN)).toEqual([[-5 * MIN, [null, 'acct_a']]]);
    await w.listed([null, 'acct_a'], T + MIN);
    expect(await plan(w, [null, 'acct_a'], T + 2 * MIN)).toEqual([[-4 * MIN, [null, 'acct_a']]]);
  });

  it('gives an account linked since the last run its first window, earliest group first', async () => {
    const w = windows();
    await w.listed([null, 'acct_a'], T);
    expect(await plan(w, [null, 'acct_a', 'acct_new'], T + MIN)).toEqual([
      [MIN - HOUR, ['acct_new']],
      [-5 * MIN, [null, 'acct_a']],
    ]);
  });

  it('moves nothing for a run that did not end: its accounts are listed from where they were', async () => {
    const w = windows();
    await w.listed(['acct_a'], T);
    // The run at T + 1 min is planned, then fails; the one at T + 2 min lists from before T again.
    expect(await plan(w, ['acct_a'], T + MIN)).toEqual([[-5 * MIN, ['acct_a']]]);
    expect(await plan(w, ['acct_a'], T + 2 * MIN)).toEqual([[-5 * MIN, ['acct_a']]]);
  });

  it('goes on from the store: a restarted server lists from where the last run began, however long ago', async () => {
    const store = memoryReconcileWindowStore();
    await windows(store).listed([null, 'acct_a'], T);
    // Three hours later, past the first window: nothing of those hours is skipped.
    expect(await plan(windows(store), [null, 'acct_a', 'acct_b'], T + 3 * HOUR)).toEqual([
      [-5 * MIN, [null, 'acct_a']],
      [2 * HOUR, ['acct_b']],
    ]);
  });

  it('keeps the later start when a run that began earlier ends last', async () => {
    const store = memoryReconcileWindowStore();
    await store.listed(['acct_a'], T + MIN);
    await store.listed(['acct_a'], T);
    expect(await store.read(['acct_a', 'acct_b'])).toEqual(new Map([['acct_a', T + MIN]]));
  });

  it("takes an operator's run as a listing of the accounts it covered back to where the next run would start", async () => {
    const store = memoryReconcileWindowStore();
    const w = windows(store);
    await w.listed(['acct_kept'], T - 2 * HOUR);
    await w.listed(['acct_recent'], T - 10 * MIN);
    // A run at T from an hour back: acct_recent (from T - 15 min) and the never-listed acct_new
    // (from T - 1 h) are covered; acct_kept would go back to T - 2 h 5 min, which it did not list.
    expect(await w.listedFrom(['acct_kept', 'acct_recent', 'acct_new'], T - HOUR, T)).toEqual([
      'acct_new',
      'acct_recent',
    ]);
    expect(await store.read(['acct_kept', 'acct_recent', 'acct_new'])).toEqual(
      new Map([
        ['acct_kept', T - 2 * HOUR],
        ['acct_recent', T],
        ['acct_new', T],
      ]),
    );
    // Exactly from where the next run would start is enough; a second later is not.
    await w.listed(['acct_edge'], T - 10 * MIN);
    expect(await w.listedFrom(['acct_edge'], T - 15 * MIN + 1_000, T)).toEqual([]);
    expect(await w.listedFrom(['acct_edge'], T - 15 * MIN, T)).toEqual(['acct_edge']);
    // Events are dated in whole seconds: from half a second before one lists what it does.
    await w.listed(['acct_half'], T - 10 * MIN + 500);
    expect(await w.listedFrom(['acct_half'], T - 15 * MIN + 1_000, T)).toEqual(['acct_half']);
    // A run from long ago covers all of them.
    expect(await w.listedFrom(['acct_kept', null], T - 3 * HOUR, T + MIN)).toEqual(['acct_kept', null]);
    expect((await store.read(['acct_kept'])).get('acct_kept')).toBe(T + MIN);
  });

  it('says when the least recent listing of the given accounts began, leaving out those never listed', async () => {
    const store = memoryReconcileWindowStore();
    expect(await oldestListing(store, [null, 'acct_a'])).toBeNull();
    await store.listed([null, 'acct_a'], T);
    await store.listed([null], T + MIN);
    await store.listed(['acct_gone'], T - HOUR);
    expect(await oldestListing(store, [null, 'acct_a', 'acct_new'])).toEqual(new Date(T));
    expect(await oldestListing(store, [null])).toEqual(new Date(T + MIN));
  });
});

import { ReconcileWindows } from './reconcile-windows';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T = Date.UTC(2026, 0, 10, 12);

describe('ReconcileWindows', () => {
  const windows = () => new ReconcileWindows({ firstWindowMs: HOUR, overlapMs: 5 * MIN });
  const plan = (w: ReconcileWindows, accounts: (string | null)[], now: number) =>
    w.plan(accounts, now).map((g) => [g.since.getTime() - T, g.accounts]);

  it('lists an account back over the first window until a run has listed it', () => {
    const w = windows();
    expect(plan(w, [null, 'acct_a', 'acct_a'], T)).toEqual([[-HOUR, [null, 'acct_a']]]);
    expect(plan(w, [null, 'acct_a'], T + MIN)).toEqual([[MIN - HOUR, [null, 'acct_a']]]);
  });

  it('then from the start of the last run that listed it, less the overlap', () => {
    const w = windows();
    w.listed([null, 'acct_a'], T);
    expect(plan(w, [null, 'acct_a'], T + MIN)).toEqual([[-5 * MIN, [null, 'acct_a']]]);
    w.listed([null, 'acct_a'], T + MIN);
    expect(plan(w, [null, 'acct_a'], T + 2 * MIN)).toEqual([[-4 * MIN, [null, 'acct_a']]]);
  });

  it('gives an account linked since the last run its first window, earliest group first', () => {
    const w = windows();
    w.listed([null, 'acct_a'], T);
    expect(plan(w, [null, 'acct_a', 'acct_new'], T + MIN)).toEqual([
      [MIN - HOUR, ['acct_new']],
      [-5 * MIN, [null, 'acct_a']],
    ]);
  });

  it('moves nothing for a run that did not end: its accounts are listed from where they were', () => {
    const w = windows();
    w.listed(['acct_a'], T);
    // The run at T + 1 min is planned, then fails; the one at T + 2 min lists from before T again.
    expect(plan(w, ['acct_a'], T + MIN)).toEqual([[-5 * MIN, ['acct_a']]]);
    expect(plan(w, ['acct_a'], T + 2 * MIN)).toEqual([[-5 * MIN, ['acct_a']]]);
  });
});

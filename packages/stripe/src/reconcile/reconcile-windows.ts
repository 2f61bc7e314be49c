/**
 * What a reconciler run on an interval lists for each account. An account's first run goes back
 * `firstWindowMs` (the events missed while no server reconciled); once a run has listed it, later
 * runs list from when that run started, less `overlapMs` (Stripe's clock against ours, and an event
 * listed a little after it is dated). A failed run moves nothing, so its accounts are listed again
 * from where they were. Kept in memory: a restarted server begins with first windows again.
 */
export class ReconcileWindows {
  /** Account (null: the platform) → when the last run that listed it started (ms). */
  private readonly listedFrom = new Map<string | null, number>();

  constructor(private readonly options: { firstWindowMs: number; overlapMs: number }) {}

  /** The accounts to list, grouped by the time to list them from, earliest first. */
  plan(accounts: readonly (string | null)[], nowMs: number): { since: Date; accounts: (string | null)[] }[] {
    const groups = new Map<number, (string | null)[]>();
    for (const account of new Set(accounts)) {
      const last = this.listedFrom.get(account);
      const since =
        last === undefined
          ? nowMs - this.options.firstWindowMs
          : Math.min(nowMs, last) - this.options.overlapMs;
      groups.set(since, [...(groups.get(since) ?? []), account]);
    }
    return [...groups]
      .sort(([a], [b]) => a - b)
      .map(([since, members]) => ({ since: new Date(since), accounts: members }));
  }

  /** A run that started at `startedMs` listed these accounts to the end. */
  listed(accounts: readonly (string | null)[], startedMs: number): void {
    for (const account of accounts) this.listedFrom.set(account, startedMs);
  }
}

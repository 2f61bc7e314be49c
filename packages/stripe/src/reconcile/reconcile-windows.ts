/**
 * Where the windows are kept: when the last run that listed each account to the end started. An
 * account is a connected account's id, or null for the platform's own events.
 */
export type ReconcileWindowStore = {
  /** When the last run that listed each of these accounts started (ms); one never listed is absent. */
  read(accounts: readonly (string | null)[]): Promise<Map<string | null, number>>;
  /** A run that started at `startedMs` listed these accounts to the end. A later start is kept. */
  listed(accounts: readonly (string | null)[], startedMs: number): Promise<void>;
};

/** Windows kept in this process only: a restarted server begins with first windows again. */
export function memoryReconcileWindowStore(): ReconcileWindowStore {
  const listedFrom = new Map<string | null, number>();
  return {
    async read(accounts) {
      const out = new Map<string | null, number>();
      for (const account of accounts) {
        const at = listedFrom.get(account);
        if (at !== undefined) out.set(account, at);
      }
      return out;
    },
    async listed(accounts, startedMs) {
      for (const account of accounts)
        listedFrom.set(account, Math.max(startedMs, listedFrom.get(account) ?? startedMs));
    },
  };
}

/**
 * What a reconciler run on an interval lists for each account. An account's first run goes back
 * `firstWindowMs` (the events missed while no server reconciled); once a run has listed it, later
 * runs list from when that run started, less `overlapMs` (Stripe's clock against ours, and an event
 * listed a little after it is dated). A failed run moves nothing, so its accounts are listed again
 * from where they were. The store says how far a server that restarted, or the next one to run
 * them, goes back.
 */
export class ReconcileWindows {
  constructor(
    private readonly options: { firstWindowMs: number; overlapMs: number },
    private readonly store: ReconcileWindowStore = memoryReconcileWindowStore(),
  ) {}

  /** The accounts to list, grouped by the time to list them from, earliest first. */
  async plan(
    accounts: readonly (string | null)[],
    nowMs: number,
  ): Promise<{ since: Date; accounts: (string | null)[] }[]> {
    const unique = [...new Set(accounts)];
    const listedFrom = await this.store.read(unique);
    const groups = new Map<number, (string | null)[]>();
    for (const account of unique) {
      const last = listedFrom.get(account);
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
  listed(accounts: readonly (string | null)[], startedMs: number): Promise<void> {
    return this.store.listed(accounts, startedMs);
  }

  /**
   * A run from elsewhere (an operator's `gatehouse stripe reconcile`) that started at `startedMs`
   * listed these accounts to the end from `sinceMs`. An account counts as listed by it when a run
   * planned at `startedMs` would have listed no event it did not (Stripe dates events in whole
   * seconds): it would have listed from `sinceMs` or later. Answers those accounts; the others keep
   * their windows.
   */
  async listedFrom(
    accounts: readonly (string | null)[],
    sinceMs: number,
    startedMs: number,
  ): Promise<(string | null)[]> {
    const covered = (await this.plan(accounts, startedMs))
      .filter(({ since }) => Math.ceil(since.getTime() / 1000) * 1000 >= sinceMs)
      .flatMap((group) => group.accounts);
    if (covered.length > 0) await this.listed(covered, startedMs);
    return covered;
  }
}

/**
 * When the least recent run that listed one of these accounts to the end started, from `store`
 * (accounts never listed left out); null when none was.
 */
export async function oldestListing(
  store: ReconcileWindowStore,
  accounts: readonly (string | null)[],
): Promise<Date | null> {
  const listedFrom = [...(await store.read(accounts)).values()];
  return listedFrom.length > 0 ? new Date(Math.min(...listedFrom)) : null;
}

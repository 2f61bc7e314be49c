import type { DataSource } from 'typeorm';
import { createDataSource, runMigrations } from '@gatehouse/projections';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { postgresReconcileWindowStore } from './reconcile-window-store';

const T = Date.UTC(2026, 0, 10, 12);

describe('postgresReconcileWindowStore', () => {
  // Two regions' databases: the default one (`eu`) and India's.
  const dbs: TestDatabase[] = [];
  let eu: DataSource;
  let india: DataSource;

  const open = async (prefix: string, linked: string[]) => {
    const db = await createTestDatabase(prefix);
    dbs.push(db);
    await runMigrations(db.url);
    const ds = await createDataSource({ url: db.url, poolSize: 2 }).initialize();
    for (const account of linked)
      await ds.query(
        `INSERT INTO catalog_communities (community_id, name, region, stripe_account_id, state, version)
         VALUES ($1, 'c', 'x', $2, '{}', 1)`,
        [`c_${account}`, account],
      );
    return ds;
  };
  const rows = async (ds: DataSource) =>
    (
      await ds.query<{ account: string; listed_from: Date }[]>(
        'SELECT account, listed_from FROM stripe_reconcile_windows ORDER BY account',
      )
    ).map((r) => [r.account, r.listed_from.getTime()]);

  beforeAll(async () => {
    eu = await open('gh_windows_eu', ['acct_eu']);
    india = await open('gh_windows_in', ['acct_in']);
  });
  afterAll(async () => {
    await eu?.destroy();
    await india?.destroy();
    for (const db of dbs) await db.drop();
  });

  it("keeps each account's window in its community's region, the platform's in the default one", async () => {
    const store = postgresReconcileWindowStore([
      { dataSource: eu, home: true },
      { dataSource: india, home: false },
    ]);
    await store.listed([null, 'acct_eu', 'acct_in', 'acct_nobody'], T);
    expect(await rows(eu)).toEqual([
      ['acct_eu', T],
      ['platform', T],
    ]);
    expect(await rows(india)).toEqual([['acct_in', T]]);

    // Another server's store (after a restart, or the next one to project) reads them back.
    const next = postgresReconcileWindowStore([
      { dataSource: india, home: false },
      { dataSource: eu, home: true },
    ]);
    expect(await next.read([null, 'acct_eu', 'acct_in', 'acct_nobody'])).toEqual(
      new Map([
        [null, T],
        ['acct_eu', T],
        ['acct_in', T],
      ]),
    );
  });

  it('moves a window forward only: a run that began earlier and ended last keeps the later start', async () => {
    const store = postgresReconcileWindowStore([{ dataSource: eu, home: true }]);
    await store.listed(['acct_eu'], T + 60_000);
    await store.listed(['acct_eu'], T + 30_000);
    expect(await store.read(['acct_eu'])).toEqual(new Map([['acct_eu', T + 60_000]]));
    await store.listed([], T + 120_000);
    expect(await store.read(['acct_eu'])).toEqual(new Map([['acct_eu', T + 60_000]]));
  });
});

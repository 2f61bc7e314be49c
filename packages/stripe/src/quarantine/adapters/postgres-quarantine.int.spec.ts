import { createTestDatabase, type TestDatabase } from '@test/support';
import { MemoryLedger } from '../../testing/memory-ledger';
import { invoicePaid } from '../../testing/stripe-events';
import { FIXED_NOW } from '../../testing/stripe-ids';
import { releaseQuarantine } from '../release-quarantine';
import { PostgresQuarantineStore } from './postgres-quarantine';

describe('PostgresQuarantineStore and releaseQuarantine (real PostgreSQL)', () => {
  let db: TestDatabase;
  let store: PostgresQuarantineStore;

  beforeAll(async () => {
    db = await createTestDatabase('stripe_q');
    store = new PostgresQuarantineStore({ connectionString: db.url });
    await store.init();
    await store.init();
  });
  afterAll(async () => {
    await store.close();
    await db.drop();
  });

  it('holds events per account, once per id, oldest first, verbatim', async () => {
    const later = invoicePaid({}, { account: 'acct_a', created: FIXED_NOW + 10 });
    const earlier = invoicePaid({}, { account: 'acct_a', created: FIXED_NOW });
    await store.put('acct_a', later);
    await store.put('acct_a', earlier);
    await store.put('acct_a', later);
    await store.put('acct_b', invoicePaid({}, { account: 'acct_b' }));
    const held = await store.take('acct_a');
    expect(held).toEqual([earlier, later]);
    expect(await store.take('acct_a')).toHaveLength(2);
    // What an operator sees: per account, the count (a repeated id once) and the oldest event.
    const summary = await store.held();
    expect(summary.map((a) => [a.accountId, a.events])).toEqual([
      ['acct_a', 2],
      ['acct_b', 1],
    ]);
    expect(summary[0].oldestCreated).toEqual(new Date(FIXED_NOW * 1000));
    expect(summary[0].lastHeldAt).toBeInstanceOf(Date);
  });

  it('releases held events into the community, then forgets them; a repeat appends nothing', async () => {
    const ledger = new MemoryLedger();
    const e1 = invoicePaid({}, { account: 'acct_r', created: FIXED_NOW });
    const e2 = invoicePaid({}, { account: 'acct_r', created: FIXED_NOW + 1 });
    await store.put('acct_r', e1);
    await store.put('acct_r', e2);
    const report = await releaseQuarantine({ ledger, quarantine: store }, 'acct_r', 'community-r');
    expect(report).toEqual({
      accountId: 'acct_r',
      communityId: 'community-r',
      appended: 2,
      alreadyPresent: 0,
    });
    expect(ledger.events.map((e) => [e.id, e.communityId, e.source])).toEqual([
      [e1.id, 'community-r', 'stripe'],
      [e2.id, 'community-r', 'stripe'],
    ]);
    expect(await store.take('acct_r')).toEqual([]);
    expect(await releaseQuarantine({ ledger, quarantine: store }, 'acct_r', 'community-r')).toMatchObject({
      appended: 0,
      alreadyPresent: 0,
    });
  });

  it('keeps the events held when the append fails, and a later release appends them once', async () => {
    const ledger = new MemoryLedger();
    const e = invoicePaid({}, { account: 'acct_f' });
    await store.put('acct_f', e);
    ledger.failNext(1);
    await expect(releaseQuarantine({ ledger, quarantine: store }, 'acct_f', 'community-f')).rejects.toThrow(
      'ledger down',
    );
    expect(await store.take('acct_f')).toEqual([e]);
    await ledger.append([
      {
        id: e.id,
        type: e.type,
        communityId: 'community-f',
        occurredAt: new Date().toISOString(),
        source: 'stripe',
        data: {},
      },
    ]);
    expect(await releaseQuarantine({ ledger, quarantine: store }, 'acct_f', 'community-f')).toMatchObject({
      appended: 0,
      alreadyPresent: 1,
    });
    expect(await store.take('acct_f')).toEqual([]);
  });
});

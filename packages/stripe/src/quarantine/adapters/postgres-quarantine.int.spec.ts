import { createTestDatabase, type TestDatabase } from '@test/support';
import type { StripeEvent } from '../../stripe-event';
import { MemoryLedger } from '../../testing/memory-ledger';
import { invoicePaid } from '../../testing/stripe-events';
import { FIXED_NOW } from '../../testing/stripe-ids';
import type { CommunityDirectory } from '../../webhook/community-directory.port';
import { PLATFORM_HOLD } from '../quarantine.port';
import { releaseLinkedQuarantine, releaseQuarantine } from '../release-quarantine';
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
    // What the gauge reads: every event held, a repeated id once, counted up to a cap.
    expect(await store.count(1_000)).toBe(3);
    expect(await store.count(2)).toBe(2);
  });

  it('says when the event held longest was held, and nothing once none is held', async () => {
    const other = new PostgresQuarantineStore({ connectionString: db.url, table: 'stripe_quarantine_age' });
    try {
      await other.init();
      expect(await other.oldestHeldAt()).toBeNull();
      const before = Date.now();
      const first = invoicePaid({}, { account: 'acct_age' });
      await other.put('acct_age', first);
      const oldest = await other.oldestHeldAt();
      expect(oldest!.getTime()).toBeGreaterThanOrEqual(before - 1_000);
      expect(oldest!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const later = invoicePaid({}, { account: 'acct_age_too' });
      await other.put('acct_age_too', later);
      expect(await other.oldestHeldAt()).toEqual(oldest);
      await other.discard('acct_age', [first.id]);
      expect((await other.oldestHeldAt())!.getTime()).toBeGreaterThan(oldest!.getTime());
      await other.discard('acct_age_too', [later.id]);
      expect(await other.oldestHeldAt()).toBeNull();
    } finally {
      await other.close();
    }
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

  it('releases what is held for accounts linked by now, the platform’s too, and leaves the others', async () => {
    const ledger = new MemoryLedger();
    const linked = invoicePaid({}, { account: 'acct_linked_since', created: FIXED_NOW });
    const stranger = invoicePaid({}, { account: 'acct_still_unknown', created: FIXED_NOW });
    const platform = invoicePaid({}, { created: FIXED_NOW });
    await store.put('acct_linked_since', linked);
    await store.put('acct_still_unknown', stranger);
    await store.put(PLATFORM_HOLD, platform);
    expect(
      await store.heldAmong(['acct_still_unknown', 'acct_nothing_held', 'acct_linked_since', 'platform']),
    ).toEqual(['acct_linked_since', 'acct_still_unknown', 'platform']);
    expect(await store.heldAmong([])).toEqual([]);

    const directory: CommunityDirectory = {
      communityForStripeAccount: async (a) => (a === 'acct_linked_since' ? 'community-linked' : null),
      platformCommunity: async () => 'community-platform',
    };
    const reports = await releaseLinkedQuarantine({
      ledger,
      quarantine: store,
      directory,
      // The catalog's linked accounts, and one with nothing held: the stranger is not among them.
      accounts: ['acct_linked_since', 'acct_nothing_held'],
    });
    expect(reports.map((r) => [r.accountId, r.communityId, r.appended])).toEqual([
      ['acct_linked_since', 'community-linked', 1],
      [PLATFORM_HOLD, 'community-platform', 1],
    ]);
    expect(ledger.events.map((e) => [e.id, e.communityId])).toEqual([
      [linked.id, 'community-linked'],
      [platform.id, 'community-platform'],
    ]);
    expect(await store.take('acct_still_unknown')).toEqual([stranger]);
    expect(await store.heldAmong(['acct_linked_since', PLATFORM_HOLD])).toEqual([]);

    // Without a platform community the platform's events stay held.
    await store.put(PLATFORM_HOLD, platform);
    const none = await releaseLinkedQuarantine({
      ledger,
      quarantine: store,
      directory: { ...directory, platformCommunity: async () => null },
      accounts: [],
    });
    expect(none).toEqual([]);
    expect(await store.take(PLATFORM_HOLD)).toEqual([platform]);
    await store.discard(PLATFORM_HOLD, [platform.id]);
  });

  it('drops the events of the accounts named, only those created before the cutoff, a batch at a time, each kept first', async () => {
    const old = [0, 1, 2, 3, 4].map((i) =>
      invoicePaid({}, { account: 'acct_gone', created: FIXED_NOW - 86_400 + i }),
    );
    const recent = invoicePaid({}, { account: 'acct_gone', created: FIXED_NOW });
    const neighbour = invoicePaid({}, { account: 'acct_neighbour', created: FIXED_NOW - 86_400 });
    for (const e of [...old, recent]) await store.put('acct_gone', e);
    await store.put('acct_neighbour', neighbour);
    const cutoff = new Date((FIXED_NOW - 3_600) * 1000);

    // What a dry run reports: the events the same filter would drop.
    const summary = await store.held({ accountIds: ['acct_gone', 'acct_none'], createdBefore: cutoff });
    expect(summary.map((a) => [a.accountId, a.events, a.oldestCreated])).toEqual([
      ['acct_gone', 5, new Date((FIXED_NOW - 86_400) * 1000)],
    ]);

    const batches: string[][] = [];
    const dropped = await store.drop(
      { accountIds: ['acct_gone'], createdBefore: cutoff },
      { batchSize: 2, keep: async (events) => void batches.push(events.map((e) => e.id)) },
    );
    expect(dropped).toBe(5);
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
    expect(batches.flat().sort()).toEqual(old.map((e) => e.id).sort());
    expect(await store.take('acct_gone')).toEqual([recent]);
    expect(await store.take('acct_neighbour')).toEqual([neighbour]);

    // Without a cutoff, everything of the account; nothing left, nothing to keep.
    const kept: StripeEvent[] = [];
    expect(await store.drop({ accountIds: ['acct_gone'] }, { keep: async (e) => void kept.push(...e) })).toBe(
      1,
    );
    expect(kept).toEqual([recent]);
    expect(await store.drop({ accountIds: ['acct_gone'] }, { keep: async (e) => void kept.push(...e) })).toBe(
      0,
    );
    expect(kept).toHaveLength(1);
    expect(await store.take('acct_neighbour')).toEqual([neighbour]);
    await store.discard('acct_neighbour', [neighbour.id]);
  });

  it('leaves a batch held when keeping it fails, and says why', async () => {
    const events = [0, 1, 2, 3].map((i) =>
      invoicePaid({}, { account: 'acct_keep_fails', created: FIXED_NOW + i }),
    );
    for (const e of events) await store.put('acct_keep_fails', e);
    let calls = 0;
    await expect(
      store.drop(
        { accountIds: ['acct_keep_fails'] },
        {
          batchSize: 2,
          keep: async () => {
            calls += 1;
            if (calls === 2) throw new Error('disk full');
          },
        },
      ),
    ).rejects.toThrow('disk full');
    // The first batch was kept and dropped; the second was not kept, so it is still held.
    expect(await store.take('acct_keep_fails')).toHaveLength(2);
    expect(await store.drop({ accountIds: ['acct_keep_fails'] })).toBe(2);
    expect(await store.take('acct_keep_fails')).toEqual([]);
  });
});

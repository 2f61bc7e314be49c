import Stripe from 'stripe';
import { MemoryLedger } from '../testing/memory-ledger';
import { signPayload } from '../testing/sign';
import { invoicePaid, customerSubscriptionUpdated } from '../testing/stripe-events';
import { DAY } from '../testing/stripe-ids';
import type { FakeStripe } from '../testing/fake-stripe/fake-stripe';
import { createWebhookIngestor } from '../webhook/ingest.handler';
import type { CommunityDirectory } from '../webhook/community-directory.port';
import type { Ledger } from '@gatehouse/ledger';
import {
  reconcile,
  ReconcileStoppedError,
  type ReconcileOptions,
  type ReconcileProgress,
} from './reconciler';
import { stripeEventToLedgerFact } from '../stripe-event';
import { fakeStripeWithSdk } from '../testing/fake-stripe/fake-stripe-sdk';

const SECRET = 'whsec_reconcile';
const NOW = 1_767_225_600;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const directory: CommunityDirectory = {
  communityForStripeAccount: async (a) => (a === 'acct_club' ? 'club' : null),
  platformCommunity: async () => 'platform',
};

describe('reconcile', () => {
  let fake: FakeStripe;
  let stripe: Stripe;

  beforeEach(async () => ({ fake, stripe } = await fakeStripeWithSdk(NOW)));
  afterEach(() => fake.close());

  /** A run at NOW over events since `secondsAgo`, with the suite's fake Stripe and directory unless given. */
  const reconcileAt = (ledger: Ledger, secondsAgo: number, given: Partial<ReconcileOptions> = {}) =>
    reconcile({
      stripe,
      ledger,
      directory,
      since: new Date((NOW - secondsAgo) * 1000),
      log: silent,
      clock: () => new Date(NOW * 1000),
      ...given,
    });

  it('recovers exactly the event the webhook missed', async () => {
    const ledger = new MemoryLedger();
    const ingest = createWebhookIngestor({
      ledger,
      secrets: [SECRET],
      directory,
      quarantine: {
        init: async () => {},
        put: async () => {},
        take: async () => [],
        discard: async () => {},
        heldAmong: async () => [],
      },
      logger: silent,
      clock: () => new Date(NOW * 1000),
    });
    const delivered = invoicePaid({}, { created: NOW - 2 * DAY });
    const missed = customerSubscriptionUpdated({}, { created: NOW - DAY, apiVersion: '2025-03-31.basil' });
    fake.emit(delivered);
    fake.emit(missed, { deliverySuccess: false });
    const { rawBody, header } = signPayload(delivered, SECRET, NOW);
    expect((await ingest(rawBody, header)).status).toBe(200);

    const report = await reconcileAt(ledger, 7 * DAY);

    expect(report).toMatchObject({ listed: 2, appended: 1, alreadyPresent: 1, clamped: false });
    expect(report.scopes[0].appendedIds).toEqual([missed.id]);
    expect(ledger.events.map((e) => e.id)).toEqual([delivered.id, missed.id]);
    expect(ledger.events[1]).toMatchObject({
      communityId: 'platform',
      type: 'customer.subscription.updated',
      source: 'stripe',
    });
    expect((ledger.events[1].data as { api_version: string }).api_version).toBe('2025-03-31.basil');

    const again = await reconcileAt(ledger, 7 * DAY);
    expect(again).toMatchObject({ appended: 0, alreadyPresent: 2 });
  });

  it('pages through the Events API, appends oldest first, and clamps the window to 30 days', async () => {
    const ledger = new MemoryLedger();
    const events = Array.from({ length: 130 }, (_, i) =>
      invoicePaid({}, { created: NOW - 20 * DAY + i * 60 }),
    );
    events.forEach((e) => fake.emit(e));
    fake.emit(invoicePaid({}, { created: NOW - 31 * DAY }));
    const report = await reconcileAt(ledger, 90 * DAY);
    expect(report).toMatchObject({ clamped: true, listed: 130, appended: 130 });
    expect(ledger.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    const eventLists = fake.requests.filter((r) => r.path === '/v1/events');
    expect(eventLists.length).toBeGreaterThanOrEqual(2);
    expect(eventLists[0].params).toMatchObject({ created: { gte: String(NOW - 30 * DAY) } });
  });

  it('keeps only the events the ledger lacks, asking it page by page, and says how far it got', async () => {
    const ledger = new MemoryLedger();
    const events = Array.from({ length: 250 }, (_, i) =>
      invoicePaid({}, { created: NOW - 2 * DAY + i * 60 }),
    );
    events.forEach((e) => fake.emit(e));
    // The webhook brought all but three, one in each page the Events API answers (newest first).
    const missed = [events[3], events[120], events[249]];
    const delivered = events.filter((e) => !missed.includes(e));
    await ledger.append(delivered.map((e) => stripeEventToLedgerFact(e, 'platform')));
    ledger.appendCalls.length = 0;
    const progress: ReconcileProgress[] = [];

    const report = await reconcileAt(ledger, 3 * DAY, {
      onProgress: (p) => progress.push(p),
    });

    expect(report).toMatchObject({ listed: 250, appended: 3, alreadyPresent: 247 });
    expect(report.scopes[0].appendedIds).toEqual(missed.map((e) => e.id));
    // Only the three were handed to the ledger, in one append, oldest first.
    expect(ledger.appendCalls.map((call) => call.map((e) => e.id))).toEqual([missed.map((e) => e.id)]);
    expect(ledger.holdsCalls.map((ids) => ids.length)).toEqual([100, 100, 50]);
    expect(progress).toEqual([
      { account: null, listed: 100, missing: 1 },
      { account: null, listed: 200, missing: 2 },
      { account: null, listed: 250, missing: 3 },
    ]);
  });

  it('lists each connected account with its Stripe-Account and routes its events to its community', async () => {
    const ledger = new MemoryLedger();
    const own = invoicePaid({}, { account: 'acct_club', created: NOW - DAY });
    const stranger = invoicePaid({}, { account: 'acct_stranger', created: NOW - DAY });
    fake.emit(own);
    fake.emit(stranger);
    const warnings: object[] = [];
    const report = await reconcileAt(ledger, DAY + 1, {
      accounts: ['acct_club', 'acct_stranger', 'acct_quiet'],
      log: { ...silent, warn: (obj) => warnings.push(obj) },
    });
    expect(report.scopes.map((s) => [s.account, s.communityId, s.listed, s.appended, s.unassigned])).toEqual([
      [null, 'platform', 0, 0, 0],
      ['acct_club', 'club', 1, 1, 0],
      ['acct_stranger', null, 1, 0, 1],
      ['acct_quiet', null, 0, 0, 0],
    ]);
    // Said for the account with events and no community, not for one with neither.
    expect(warnings).toEqual([{ account: 'acct_stranger', events: 1, held: false }]);
    expect(ledger.events.map((e) => [e.id, e.communityId])).toEqual([[own.id, 'club']]);
    expect(fake.requests.filter((r) => r.path === '/v1/events').map((r) => r.stripeAccount)).toEqual([
      null,
      'acct_club',
      'acct_stranger',
      'acct_quiet',
    ]);
  });

  it('lists accounts `concurrency` at a time, reporting them in the order given', async () => {
    const ledger = new MemoryLedger();
    const accounts = ['acct_1', 'acct_2', 'acct_3', 'acct_4', 'acct_5', 'acct_6', 'acct_7'];
    const events = accounts.map((account) => invoicePaid({}, { account, created: NOW - DAY }));
    events.forEach((e) => fake.emit(e));
    // Counts the listings under way: one from its first request to its last page.
    const open = new Set<string | undefined>();
    let most = 0;
    const counted = {
      events: {
        list: async (params: Stripe.EventListParams, requestOptions?: Stripe.RequestOptions) => {
          open.add(requestOptions?.stripeAccount);
          most = Math.max(most, open.size);
          const page = await stripe.events.list(params, requestOptions);
          if (!page.has_more) open.delete(requestOptions?.stripeAccount);
          return page;
        },
      },
    } as unknown as Stripe;
    const report = await reconcileAt(ledger, 2 * DAY, {
      stripe: counted,
      directory: {
        communityForStripeAccount: async (a) => `club-${a}`,
        platformCommunity: async () => null,
      },
      accounts,
      includePlatform: false,
      concurrency: 3,
    });
    expect(most).toBe(3);
    expect(report.scopes.map((s) => [s.account, s.appended])).toEqual(accounts.map((a) => [a, 1]));
    expect(new Set(ledger.events.map((e) => `${e.id} ${e.communityId}`))).toEqual(
      new Set(events.map((e) => `${e.id} club-${e.account}`)),
    );
  });

  it('starts at most `requestsPerSecond` Events API requests in any second, all accounts together', async () => {
    const ledger = new MemoryLedger();
    const accounts = ['acct_1', 'acct_2', 'acct_3'];
    // 201 events each: three pages, nine requests in all.
    for (const account of accounts)
      for (let i = 0; i < 201; i++) fake.emit(invoicePaid({}, { account, created: NOW - DAY + i }));
    const started: number[] = [];
    stripe.on('request', () => started.push(Date.now()));
    const report = await reconcileAt(ledger, 2 * DAY, {
      directory: { communityForStripeAccount: async (a) => `club-${a}`, platformCommunity: async () => null },
      accounts,
      includePlatform: false,
      concurrency: 3,
      requestsPerSecond: 6,
    });
    expect(report.appended).toBe(603);
    expect(started).toHaveLength(9);
    // Any seventh request starts a second after the first of the six before it (timers may fire a
    // little late, never early: 950 ms leaves room for the clock's rounding).
    for (let i = 0; i + 6 < started.length; i++)
      expect(started[i + 6] - started[i]).toBeGreaterThanOrEqual(950);
  });

  it('stops when its signal is aborted: no further request, nothing appended for an account cut short', async () => {
    const ledger = new MemoryLedger();
    const clubs: CommunityDirectory = {
      communityForStripeAccount: async (a) => `club-${a}`,
      platformCommunity: async () => null,
    };
    // One page for the first account, two for the second.
    const small = Array.from({ length: 50 }, (_, i) =>
      invoicePaid({}, { account: 'acct_small', created: NOW - DAY + i }),
    );
    small.forEach((e) => fake.emit(e));
    for (let i = 0; i < 150; i++) fake.emit(invoicePaid({}, { account: 'acct_big', created: NOW - DAY + i }));
    let requests = 0;
    let stopAt = 1;
    let stop = new AbortController();
    // The stop comes while the `stopAt`th request is on its way.
    stripe.on('request', () => {
      if (++requests === stopAt) stop.abort(new Error('server stopping'));
    });
    const run = () =>
      reconcileAt(ledger, 2 * DAY, {
        directory: clubs,
        accounts: ['acct_small', 'acct_big'],
        includePlatform: false,
        signal: stop.signal,
      });

    // During the small account's only page: it appends what it found; the big one never starts.
    const stopped = await run().catch((err: unknown) => err);
    expect(stopped).toBeInstanceOf(ReconcileStoppedError);
    expect((stopped as ReconcileStoppedError).message).toBe('server stopping');
    expect((stopped as ReconcileStoppedError).report).toMatchObject({
      listed: 50,
      appended: 50,
      scopes: [{ account: 'acct_small', appended: 50 }],
    });
    expect(requests).toBe(1);
    expect(ledger.events.map((e) => e.id).sort()).toEqual(small.map((e) => e.id).sort());

    // During the big account's first page: its second is never asked for, and nothing of it appended.
    requests = 0;
    stopAt = 2;
    stop = new AbortController();
    await expect(run()).rejects.toThrow('server stopping');
    expect(requests).toBe(2);
    expect(ledger.events).toHaveLength(small.length);

    // A stop during the last page of the last account cuts nothing short: the run reports as usual.
    requests = 0;
    stopAt = 1;
    stop = new AbortController();
    await expect(
      reconcileAt(ledger, 2 * DAY, {
        directory: clubs,
        accounts: ['acct_small'],
        includePlatform: false,
        signal: stop.signal,
      }),
    ).resolves.toMatchObject({ listed: 50, appended: 0, alreadyPresent: 50 });
    expect(stop.signal.aborted).toBe(true);

    // Aborted before it starts: not one request.
    requests = 0;
    await expect(run()).rejects.toThrow('server stopping');
    expect(requests).toBe(0);
  });

  it('lists again, after a while, a page Stripe refused for its rate, and fails once refused past the last wait', async () => {
    // Stripe allowing 2 requests a second, and a run asking for five at once.
    const limited = await fakeStripeWithSdk(NOW, { rateLimitPerSecond: 2 });
    try {
      const accounts = ['acct_1', 'acct_2', 'acct_3', 'acct_4', 'acct_5'];
      accounts.forEach((account) => limited.fake.emit(invoicePaid({}, { account, created: NOW - DAY })));
      const ledger = new MemoryLedger();
      const run = (rateLimitBackoffMs: number[]) =>
        reconcileAt(ledger, 2 * DAY, {
          stripe: limited.stripe,
          directory: {
            communityForStripeAccount: async (a) => `club-${a}`,
            platformCommunity: async () => null,
          },
          accounts,
          includePlatform: false,
          concurrency: 5,
          requestsPerSecond: Infinity,
          rateLimitBackoffMs,
        });
      const refused = () => limited.fake.requests.filter((r) => r.status === 429).length;

      const report = await run([300, 600, 1_200, 2_400]);
      expect(report.scopes.map((s) => [s.account, s.appended])).toEqual(accounts.map((a) => [a, 1]));
      expect(refused()).toBeGreaterThanOrEqual(3);

      // With no wait to try again after, the first refusal fails the run.
      const before = refused();
      await expect(run([])).rejects.toBeInstanceOf(Stripe.errors.StripeRateLimitError);
      expect(refused()).toBeGreaterThan(before);
    } finally {
      await limited.fake.close();
    }
  });

  it('refuses a rate below 1 a second', async () => {
    for (const requestsPerSecond of [0, 0.5, -1, Number.NaN])
      await expect(reconcileAt(new MemoryLedger(), DAY, { requestsPerSecond })).rejects.toThrow(RangeError);
  });

  it('reports an account Stripe no longer lets the platform read, and lists the others', async () => {
    const ledger = new MemoryLedger();
    const accounts = ['acct_1', 'acct_gone', 'acct_3', 'acct_4'];
    accounts.forEach((account) => fake.emit(invoicePaid({}, { account, created: NOW - DAY })));
    fake.revokeAccess('acct_gone');
    const warned: object[] = [];
    const report = await reconcileAt(ledger, 2 * DAY, {
      directory: { communityForStripeAccount: async (a) => `club-${a}`, platformCommunity: async () => null },
      accounts,
      includePlatform: false,
      concurrency: 2,
      log: { ...silent, warn: (obj) => void warned.push(obj) },
    });
    expect(report.refused).toEqual([
      { account: 'acct_gone', message: expect.stringContaining('Application access may have been revoked') },
    ]);
    expect(report.scopes.map((r) => r.account)).toEqual(['acct_1', 'acct_3', 'acct_4']);
    expect(ledger.events.map((e) => e.communityId).sort()).toEqual([
      'club-acct_1',
      'club-acct_3',
      'club-acct_4',
    ]);
    expect(warned).toEqual([expect.objectContaining({ account: 'acct_gone' })]);
  });

  it('starts no account after one fails, and fails once those under way are done', async () => {
    const ledger = new MemoryLedger();
    const accounts = ['acct_1', 'acct_bad', 'acct_3', 'acct_4', 'acct_5'];
    accounts.forEach((account) => fake.emit(invoicePaid({}, { account, created: NOW - DAY })));
    const asked: string[] = [];
    const run = reconcileAt(ledger, 2 * DAY, {
      directory: {
        communityForStripeAccount: async (a) => {
          asked.push(a);
          if (a === 'acct_bad') throw new Error('catalog down');
          return `club-${a}`;
        },
        platformCommunity: async () => null,
      },
      accounts,
      includePlatform: false,
      concurrency: 2,
    });
    await expect(run).rejects.toThrow('catalog down');
    // acct_1 and acct_bad start together; once acct_bad has failed, no other account starts.
    expect(asked).toEqual(['acct_1', 'acct_bad']);
    expect(fake.requests.filter((r) => r.path === '/v1/events').map((r) => r.stripeAccount)).toEqual([
      'acct_1',
    ]);
    // acct_1 was still listing when acct_bad failed, and finished before the run answered.
    expect(ledger.events.map((e) => e.communityId)).toEqual(['club-acct_1']);
  });
});

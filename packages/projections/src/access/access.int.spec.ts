import type { ResourceRef } from '@gatehouse/domain';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { PostgresLedger } from '../../../ledger/src/adapters/postgres/postgres-ledger';
import {
  adminLedgerEvent,
  chargeRefundedEvent,
  checkoutEvent,
  customerEvent,
  disputeEvent,
  invoiceEvent,
  stripeLedgerEvent,
  subscriptionEvent,
  type SubscriptionSpec,
} from '../membership/stripe-events.builders';
import { AccessIndex } from './access-index';
import { at, catalogFacts, startAccessHarness, type AccessHarness } from './access-harness';

const C = 'com_makers';
const COMMUNITY: ResourceRef = { kind: 'COMMUNITY' };
const CHAT: ResourceRef = { kind: 'GROUP', id: 'grp_chat' };
const COURSE: ResourceRef = { kind: 'GROUP', id: 'grp_course' };

let db: TestDatabase;
let h: AccessHarness;
let clock = at(0);

const stripe = (e: Parameters<typeof stripeLedgerEvent>[1]) => stripeLedgerEvent(C, e);
const sub = (
  id: string,
  member: string | undefined,
  over: Partial<SubscriptionSpec> = {},
): SubscriptionSpec => ({
  id,
  customer: `cus_${id.slice(4)}`,
  status: 'active',
  price: 'price_gold_m',
  product: 'prod_gold',
  periodStart: at(0),
  periodEnd: at(30),
  ...(member && { memberId: member }),
  ...over,
});
/** Appends with the ledger clock at `recordedAt` (when Gatehouse learned the facts). */
async function given(recordedAt: number, ...events: Parameters<AccessHarness['append']>[0]) {
  clock = recordedAt;
  await h.append(events);
}
const allowed = (member: string, resource: ResourceRef, when: number) =>
  h.access.canAccess(C, member, resource, when).allowed;
async function changes(member: string) {
  const page = await h.access.history(C, member, clock, 100);
  return page.edges.map((e) => e.node.change);
}

beforeAll(async () => {
  db = await createTestDatabase('access');
  const ledger = new PostgresLedger({
    connectionString: db.url,
    clock: () => new Date(clock),
    pollIntervalMs: 20,
    readSettleMs: 20,
  });
  h = await startAccessHarness({ databaseUrl: db.url, ledger });
  await given(at(-10), ...catalogFacts(C, { graceDays: 3 }));
}, 60_000);

afterAll(async () => {
  await h?.close();
  await db?.drop();
});

describe('membership and access through the ledger', () => {
  it('grants through a trial and a paid period, keeps a past-due member for the grace days, then suspends', async () => {
    const s = sub('sub_trial', 'mem_trial', { status: 'trialing', periodEnd: at(14), trialEnd: at(14) });
    await given(at(0), stripe(subscriptionEvent('customer.subscription.created', at(0), s)));
    expect(allowed('mem_trial', COMMUNITY, at(1))).toBe(true);
    expect(allowed('mem_trial', CHAT, at(1))).toBe(true);
    expect((await h.memberships.get(C, 'mem_trial', at(1))).status).toBe('TRIALING');

    await given(
      at(14),
      stripe(
        subscriptionEvent('customer.subscription.updated', at(14), {
          ...s,
          status: 'active',
          periodStart: at(14),
          periodEnd: at(44),
        }),
      ),
      stripe(
        invoiceEvent('invoice.paid', at(14), { id: 'in_trial_1', subscription: s.id, customer: s.customer }),
      ),
    );
    expect(allowed('mem_trial', COMMUNITY, at(40))).toBe(true);
    const active = await h.memberships.get(C, 'mem_trial', at(20));
    expect(active).toMatchObject({
      status: 'ACTIVE',
      tierId: 'tier_gold',
      priceId: 'pr_gold_m',
      currentPeriodEnd: at(44),
    });

    await given(
      at(44),
      stripe(
        subscriptionEvent('customer.subscription.updated', at(44), {
          ...s,
          status: 'past_due',
          periodStart: at(44),
          periodEnd: at(74),
        }),
      ),
    );
    expect((await h.memberships.get(C, 'mem_trial', at(45))).status).toBe('PAST_DUE');
    expect(allowed('mem_trial', COMMUNITY, at(46, 23))).toBe(true);
    const after = h.access.canAccess(C, 'mem_trial', COMMUNITY, at(47, 1));
    expect(after.allowed).toBe(false);
    expect(after.reason).toMatch(/suspended/);
    expect(await changes('mem_trial')).toContain('GRANTED');

    // The grace runs out with no event. Asked on day 48, the history already ends with the suspension
    // on day 47, with no actor (nobody did it); a page that starts after it is empty.
    const stored = (await h.access.history(C, 'mem_trial', at(46), 100)).edges;
    const asked = await h.access.history(C, 'mem_trial', at(48), 100);
    expect(asked.edges.slice(0, -2)).toEqual(stored);
    const pending = asked.edges.slice(-2).map((e) => e.node);
    expect(pending.map((n) => [n.resource.kind, n.change, n.effectiveAt, n.recordedAt, n.actor])).toEqual([
      ['COMMUNITY', 'SUSPENDED', at(47), at(47), null],
      ['GROUP', 'SUSPENDED', at(47), at(47), null],
    ]);
    const tail = await h.access.history(C, 'mem_trial', at(48), 1, asked.edges.at(-2)?.cursor);
    expect(tail.edges.map((e) => e.node)).toEqual([pending[1]]);
    expect(tail.pageInfo.hasNextPage).toBe(false);
    expect((await h.access.history(C, 'mem_trial', at(48), 1, asked.edges.at(-1)?.cursor)).edges).toEqual([]);

    // The next event (a payment, days later) stores that suspension as it was shown, then RESTORED.
    await given(
      at(50),
      stripe(
        subscriptionEvent('customer.subscription.updated', at(50), {
          ...s,
          status: 'active',
          periodStart: at(44),
          periodEnd: at(74),
        }),
      ),
    );
    const page = await h.access.history(C, 'mem_trial', clock, 100);
    const community = page.edges
      .map((e) => e.node)
      .filter((n) => n.resource.kind === 'COMMUNITY')
      .map((n) => [n.change, n.effectiveAt]);
    expect(community.slice(-3)).toEqual([
      ['EXTENDED', at(44)],
      ['SUSPENDED', at(47)],
      ['RESTORED', at(50)],
    ]);
    expect(page.edges.slice(stored.length, stored.length + 2)).toEqual(asked.edges.slice(-2));
  });

  it('keeps access until the paid period ends after a cancellation at period end', async () => {
    const s = sub('sub_cancel', 'mem_cancel', { cancelAtPeriodEnd: true });
    await given(at(0), stripe(subscriptionEvent('customer.subscription.updated', at(5), s)));
    expect(allowed('mem_cancel', COMMUNITY, at(29, 23))).toBe(true);
    expect(allowed('mem_cancel', COMMUNITY, at(30, 1))).toBe(false);
    expect((await h.memberships.get(C, 'mem_cancel', at(6))).cancelAtPeriodEnd).toBe(true);

    await given(
      at(30),
      stripe(
        subscriptionEvent('customer.subscription.deleted', at(30), {
          ...s,
          status: 'canceled',
          endedAt: at(30),
        }),
      ),
    );
    expect(allowed('mem_cancel', COMMUNITY, at(29))).toBe(true);
    expect(allowed('mem_cancel', COMMUNITY, at(31))).toBe(false);
    expect((await h.memberships.get(C, 'mem_cancel', at(31))).status).toBe('CANCELED');
    // Access ended with the period, asked for by the cancellation: one REVOKED, then.
    const page = await h.access.history(C, 'mem_cancel', clock, 100);
    expect(
      page.edges
        .map((e) => e.node)
        .filter((n) => n.resource.kind === 'COMMUNITY')
        .map((n) => [n.change, n.effectiveAt]),
    ).toEqual([
      ['GRANTED', at(5)],
      ['REVOKED', at(30)],
    ]);
  });

  it('keeps the access for good once every installment is paid, even after the plan subscription ends', async () => {
    const s = sub('sub_plan', 'mem_plan', { price: 'price_gold_i3' });
    await given(
      at(0),
      stripe(subscriptionEvent('customer.subscription.created', at(0), s)),
      stripe(
        invoiceEvent('invoice.paid', at(0), {
          id: 'in_plan_1',
          subscription: s.id,
          customer: s.customer,
          billingReason: 'subscription_create',
        }),
      ),
      stripe(
        invoiceEvent('invoice.paid', at(30), { id: 'in_plan_2', subscription: s.id, customer: s.customer }),
      ),
    );
    expect((await h.memberships.get(C, 'mem_plan', at(31))).installmentsPaid).toBe(2);
    await given(
      at(60),
      stripe(
        invoiceEvent('invoice.paid', at(60), { id: 'in_plan_3', subscription: s.id, customer: s.customer }),
      ),
      stripe(
        subscriptionEvent('customer.subscription.deleted', at(90), {
          ...s,
          status: 'canceled',
          periodStart: at(60),
          periodEnd: at(90),
          endedAt: at(90),
        }),
      ),
    );
    const d = h.access.canAccess(C, 'mem_plan', COMMUNITY, at(1000));
    expect(d.allowed).toBe(true);
    expect(d.validUntil).toBeNull();
    expect(d.grants[0].source).toBe('INSTALLMENT_PLAN');
    expect(await h.memberships.get(C, 'mem_plan', at(100))).toMatchObject({
      installmentsPaid: 3,
      installmentsTotal: 3,
    });
  });

  it('revokes a one-time purchase on a full refund', async () => {
    await given(
      at(1),
      stripe(
        checkoutEvent('checkout.session.completed', at(1), {
          id: 'cs_course',
          mode: 'payment',
          clientReferenceId: 'mem_course',
          paymentIntent: 'pi_course',
          priceId: 'pr_course',
        }),
      ),
    );
    expect(allowed('mem_course', COURSE, at(2))).toBe(true);
    expect(h.access.canAccess(C, 'mem_course', COURSE, at(500)).validUntil).toBeNull();
    await given(
      at(5),
      stripe(
        chargeRefundedEvent(at(5), {
          charge: 'ch_course',
          paymentIntent: 'pi_course',
          amount: 9900,
          refunded: 9900,
        }),
      ),
    );
    expect(allowed('mem_course', COURSE, at(2))).toBe(true);
    expect(allowed('mem_course', COURSE, at(6))).toBe(false);
    expect(await changes('mem_course')).toEqual(['GRANTED', 'REVOKED']);
  });

  it('suspends a purchase while disputed and revokes it when the dispute is lost', async () => {
    await given(
      at(1),
      stripe(
        checkoutEvent('checkout.session.completed', at(1), {
          id: 'cs_disp',
          mode: 'payment',
          memberId: 'mem_disp',
          paymentIntent: 'pi_disp',
          priceId: 'pr_course',
        }),
      ),
      stripe(
        disputeEvent('charge.dispute.created', at(3), {
          id: 'dp_1',
          charge: 'ch_disp',
          paymentIntent: 'pi_disp',
        }),
      ),
    );
    expect(allowed('mem_disp', COURSE, at(2))).toBe(true);
    expect(allowed('mem_disp', COURSE, at(4))).toBe(false);
    await given(
      at(10),
      stripe(
        disputeEvent('charge.dispute.closed', at(10), {
          id: 'dp_1',
          charge: 'ch_disp',
          paymentIntent: 'pi_disp',
          status: 'lost',
        }),
      ),
    );
    expect(allowed('mem_disp', COURSE, at(20))).toBe(false);
    // STRIPE.md: a lost dispute revokes; the history says so when the loss is known.
    expect(await changes('mem_disp')).toEqual(['GRANTED', 'SUSPENDED', 'REVOKED']);
  });

  it('restores a disputed purchase when the dispute is won', async () => {
    await given(
      at(1),
      stripe(
        checkoutEvent('checkout.session.completed', at(1), {
          id: 'cs_won',
          mode: 'payment',
          memberId: 'mem_won',
          paymentIntent: 'pi_won',
          priceId: 'pr_course',
        }),
      ),
      stripe(
        disputeEvent('charge.dispute.created', at(3), {
          id: 'dp_2',
          charge: 'ch_won',
          paymentIntent: 'pi_won',
        }),
      ),
    );
    await given(
      at(10),
      stripe(
        disputeEvent('charge.dispute.closed', at(10), {
          id: 'dp_2',
          charge: 'ch_won',
          paymentIntent: 'pi_won',
          status: 'won',
        }),
      ),
    );
    expect(allowed('mem_won', COURSE, at(5))).toBe(false);
    expect(allowed('mem_won', COURSE, at(11))).toBe(true);
    expect(await changes('mem_won')).toEqual(['GRANTED', 'SUSPENDED', 'RESTORED']);
  });

  it('grants and revokes complimentary access, keeping the time before the revocation', async () => {
    const vip: ResourceRef = { kind: 'GROUP', id: 'grp_vip' };
    await given(
      at(0),
      adminLedgerEvent(
        C,
        'ComplimentaryAccessGranted',
        { memberId: 'mem_comp', resource: vip, from: at(0), reason: 'speaker' },
        at(0),
      ),
    );
    expect(h.access.canAccess(C, 'mem_comp', vip, at(100)).grants[0]?.source).toBe('COMPLIMENTARY');
    await given(
      at(10),
      adminLedgerEvent(
        C,
        'ComplimentaryAccessRevoked',
        { memberId: 'mem_comp', resource: vip, at: at(10), reason: 'left' },
        at(10),
      ),
    );
    expect(allowed('mem_comp', vip, at(5))).toBe(true);
    expect(allowed('mem_comp', vip, at(11))).toBe(false);
    const history = await h.access.history(C, 'mem_comp', clock, 10);
    expect(history.edges.map((e) => [e.node.change, e.node.actor])).toEqual([
      ['GRANTED', 'usr_admin'],
      ['REVOKED', 'usr_admin'],
    ]);
  });
});

describe('member resolution', () => {
  it('finds the member by the customer a subscription checkout linked earlier', async () => {
    await given(
      at(0),
      stripe(
        checkoutEvent('checkout.session.completed', at(0), {
          id: 'cs_link',
          mode: 'subscription',
          clientReferenceId: 'mem_link',
          customer: 'cus_link',
          subscription: 'sub_other',
        }),
      ),
    );
    await given(
      at(0),
      stripe(
        subscriptionEvent(
          'customer.subscription.created',
          at(0),
          sub('sub_link', undefined, { customer: 'cus_link' }),
        ),
      ),
    );
    expect(allowed('mem_link', COMMUNITY, at(1))).toBe(true);
  });

  it("falls back to the customer's email matched against members who joined with it", async () => {
    await given(
      at(0),
      adminLedgerEvent(
        C,
        'MemberJoined',
        { memberId: 'mem_mail', email: 'Mail@Example.com', joinedAt: at(0) },
        at(0),
      ),
      stripe(customerEvent('customer.created', at(0), { id: 'cus_mail', email: 'mail@example.com' })),
      stripe(
        subscriptionEvent(
          'customer.subscription.created',
          at(0),
          sub('sub_mail', undefined, { customer: 'cus_mail' }),
        ),
      ),
    );
    expect(h.access.canAccess(C, 'mem_mail', CHAT, at(1)).grants[0]?.source).toBe('SUBSCRIPTION');
  });

  it('keeps an unresolved event as unlinked, never thrown, and applies it once the customer is linked', async () => {
    await given(
      at(0),
      stripe(
        subscriptionEvent(
          'customer.subscription.created',
          at(0),
          sub('sub_late', undefined, { customer: 'cus_late' }),
        ),
      ),
    );
    expect((await h.memberships.unlinked(C)).map((u) => u.keys)).toContainEqual(['sub_late', 'cus_late']);
    await given(
      at(1),
      stripe(customerEvent('customer.updated', at(1), { id: 'cus_late', memberId: 'mem_late' })),
    );
    expect(allowed('mem_late', COMMUNITY, at(2))).toBe(true);
    expect((await h.memberships.unlinked(C)).map((u) => u.keys)).not.toContainEqual(['sub_late', 'cus_late']);
  });

  it('releases a chain of parked events: one learned key releases an event whose other key releases the next', async () => {
    // Parked in earlier batches: two subscriptions of one customer, neither naming a member.
    await given(
      at(0),
      stripe(
        subscriptionEvent(
          'customer.subscription.created',
          at(0),
          sub('sub_chain1', undefined, { customer: 'cus_chain' }),
        ),
      ),
    );
    await given(
      at(0),
      stripe(
        subscriptionEvent(
          'customer.subscription.created',
          at(0),
          sub('sub_chain2', undefined, {
            customer: 'cus_chain',
            price: 'price_course',
            product: 'prod_course',
          }),
        ),
      ),
    );
    const parkedKeys = async () => (await h.memberships.unlinked(C)).map((u) => u.keys);
    expect(await parkedKeys()).toEqual(
      expect.arrayContaining([
        ['sub_chain1', 'cus_chain'],
        ['sub_chain2', 'cus_chain'],
      ]),
    );
    // The checkout names the first subscription only (its customer is another one): the second
    // subscription is reached through the customer the first one carries.
    await given(
      at(1),
      stripe(
        checkoutEvent('checkout.session.completed', at(1), {
          id: 'cs_chain',
          mode: 'subscription',
          clientReferenceId: 'mem_chain',
          customer: 'cus_chain_checkout',
          subscription: 'sub_chain1',
        }),
      ),
    );
    expect(await parkedKeys()).not.toContainEqual(['sub_chain1', 'cus_chain']);
    expect(await parkedKeys()).not.toContainEqual(['sub_chain2', 'cus_chain']);
    expect(allowed('mem_chain', COMMUNITY, at(2))).toBe(true);
    expect(allowed('mem_chain', COURSE, at(2))).toBe(true);
  });
});

describe('bitemporal access', () => {
  it('lets a late webhook change what is believed about a past date while asKnownAt before it keeps the old belief', async () => {
    const s = sub('sub_bt', 'mem_bt');
    await given(at(0), stripe(subscriptionEvent('customer.subscription.created', at(0), s)));
    // Stripe ended the subscription on day 10; the webhook only arrives on day 20.
    await given(
      at(20),
      stripe(
        subscriptionEvent('customer.subscription.deleted', at(10), {
          ...s,
          status: 'canceled',
          endedAt: at(10),
        }),
      ),
    );
    expect(allowed('mem_bt', COMMUNITY, at(15))).toBe(false);
    expect((await h.access.canAccessAsKnownAt(C, 'mem_bt', COMMUNITY, at(15), at(12))).allowed).toBe(true);
    expect((await h.access.canAccessAsKnownAt(C, 'mem_bt', COMMUNITY, at(15), at(20))).allowed).toBe(false);
    expect((await h.access.canAccessAsKnownAt(C, 'mem_bt', COMMUNITY, at(5), at(20))).allowed).toBe(true);
    const history = await h.access.history(C, 'mem_bt', clock, 10);
    const community = history.edges.filter((e) => e.node.resource.kind === 'COMMUNITY');
    expect(community.map((e) => [e.node.change, e.node.effectiveAt, e.node.recordedAt])).toEqual([
      ['GRANTED', at(0), at(0)],
      ['REVOKED', at(10), at(20)],
    ]);
  });

  it('answers membership as of a past date from the facts stated by then', async () => {
    const past = await h.memberships.get(C, 'mem_bt', at(5), at(5));
    expect(past.status).toBe('ACTIVE');
    expect((await h.memberships.get(C, 'mem_bt', at(30))).status).toBe('CANCELED');
  });
});

describe('access index', () => {
  it('loads the same decisions from the committed rows as the live index holds', async () => {
    const fresh = new AccessIndex();
    await fresh.load(h.ds);
    for (const m of ['mem_trial', 'mem_cancel', 'mem_plan', 'mem_course', 'mem_disp', 'mem_link', 'mem_bt']) {
      for (const when of [at(1), at(15), at(46), at(100)]) {
        expect(fresh.decide(C, m, COMMUNITY, when)).toEqual(h.access.canAccess(C, m, COMMUNITY, when));
        expect(fresh.decide(C, m, COURSE, when)).toEqual(h.access.canAccess(C, m, COURSE, when));
      }
    }
  });

  it('lists the members with access to a resource at an instant, paged', async () => {
    const all = h.access.accessList(C, COMMUNITY, at(1), 500);
    expect(all.totalCount).toBe(all.edges.length);
    expect(all.edges.map((e) => e.node.memberId)).toEqual(
      expect.arrayContaining(['mem_trial', 'mem_plan', 'mem_link', 'mem_mail']),
    );
    const first = h.access.accessList(C, COMMUNITY, at(1), 2);
    const second = h.access.accessList(C, COMMUNITY, at(1), 2, first.pageInfo.endCursor ?? undefined);
    expect(first.pageInfo.hasNextPage).toBe(true);
    expect([...first.edges, ...second.edges].map((e) => e.node.memberId)).toEqual(
      all.edges.slice(0, 4).map((e) => e.node.memberId),
    );
  });
});

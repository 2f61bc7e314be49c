import type { NewEvent } from '@gatehouse/ledger';
import { createTestDatabase, type TestDatabase } from '@test/support';
import fc from 'fast-check';
import { PostgresLedger } from '../../../ledger/src/adapters/postgres/postgres-ledger';
import {
  chargeRefundedEvent,
  checkoutEvent,
  disputeEvent,
  invoiceEvent,
  stripeLedgerEvent,
  subscriptionEvent,
  type StripeEventJson,
} from '../membership/stripe-events.builders';
import { at, catalogFacts, startAccessHarness, type AccessHarness } from './access-harness';

const STATUSES = ['incomplete', 'trialing', 'active', 'past_due', 'unpaid', 'paused', 'canceled'] as const;

const memberHistory = fc.record({
  viaCheckout: fc.boolean(),
  plan: fc.boolean(),
  snapshots: fc.array(
    fc.record({
      day: fc.integer({ min: 0, max: 120 }),
      status: fc.constantFrom(...STATUSES),
      period: fc.integer({ min: 0, max: 3 }),
      cancelAtPeriodEnd: fc.boolean(),
    }),
    { minLength: 1, maxLength: 6 },
  ),
  invoices: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }),
  purchase: fc.option(
    fc.record({
      day: fc.integer({ min: 0, max: 60 }),
      paid: fc.boolean(),
      refundDay: fc.option(fc.integer({ min: 0, max: 90 }), { nil: undefined }),
      dispute: fc.option(
        fc.record({
          open: fc.integer({ min: 0, max: 90 }),
          close: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
          won: fc.boolean(),
        }),
        { nil: undefined },
      ),
    }),
    { nil: undefined },
  ),
  twins: fc.integer({ min: 0, max: 2 }),
});

type History = { members: MemberHistory[]; seed: number; chunks: number };
type MemberHistory = typeof memberHistory extends fc.Arbitrary<infer T> ? T : never;

/** The Stripe events of a generated history for one community (ids unique per community). */
function stripeEvents(tag: string, members: History['members']): StripeEventJson[] {
  const out: StripeEventJson[] = [];
  members.forEach((m, i) => {
    const mem = `mem_${i}`;
    const subId = `sub_${tag}_${i}`;
    const customer = `cus_${tag}_${i}`;
    const price = m.plan ? 'price_gold_i3' : 'price_gold_m';
    for (const [j, s] of m.snapshots.entries()) {
      const start = at(30 * s.period);
      const spec = {
        id: subId,
        customer,
        status: s.status,
        price,
        product: 'prod_gold',
        periodStart: start,
        periodEnd: start + 30 * 86_400_000,
        cancelAtPeriodEnd: s.cancelAtPeriodEnd,
        ...(!m.viaCheckout && { memberId: mem }),
        ...(s.status === 'canceled' && { endedAt: at(s.day) }),
      };
      const type =
        s.status === 'canceled' ? 'customer.subscription.deleted' : 'customer.subscription.updated';
      out.push(subscriptionEvent(type, at(s.day), spec, `evt_${tag}_${i}_s${j}`));
    }
    if (m.viaCheckout) {
      out.push(
        checkoutEvent(
          'checkout.session.completed',
          at(0),
          {
            id: `cs_${tag}_${i}`,
            mode: 'subscription',
            clientReferenceId: mem,
            customer,
            subscription: subId,
          },
          `evt_${tag}_${i}_cs`,
        ),
      );
    }
    for (const n of m.invoices) {
      out.push(
        invoiceEvent(
          'invoice.paid',
          at(30 * n),
          {
            id: `in_${tag}_${i}_${n}`,
            subscription: subId,
            customer,
            billingReason: n === 0 ? 'subscription_create' : 'subscription_cycle',
          },
          `evt_${tag}_${i}_in${n}`,
        ),
      );
    }
    const p = m.purchase;
    if (p) {
      const pi = `pi_${tag}_${i}`;
      out.push(
        checkoutEvent(
          'checkout.session.completed',
          at(p.day),
          {
            id: `cs_p_${tag}_${i}`,
            mode: 'payment',
            memberId: mem,
            paymentIntent: pi,
            priceId: 'pr_course',
            paymentStatus: p.paid ? 'paid' : 'unpaid',
          },
          `evt_${tag}_${i}_p`,
        ),
      );
      if (!p.paid)
        out.push(
          checkoutEvent(
            'checkout.session.async_payment_succeeded',
            at(p.day + 2),
            {
              id: `cs_p_${tag}_${i}`,
              mode: 'payment',
              memberId: mem,
              paymentIntent: pi,
              priceId: 'pr_course',
            },
            `evt_${tag}_${i}_pa`,
          ),
        );
      if (p.refundDay !== undefined)
        out.push(
          chargeRefundedEvent(
            at(p.refundDay),
            { charge: `ch_${tag}_${i}`, paymentIntent: pi, amount: 9900, refunded: 9900 },
            `evt_${tag}_${i}_r`,
          ),
        );
      if (p.dispute) {
        out.push(
          disputeEvent(
            'charge.dispute.created',
            at(p.dispute.open),
            { id: `dp_${tag}_${i}`, charge: `ch_${tag}_${i}`, paymentIntent: pi },
            `evt_${tag}_${i}_do`,
          ),
        );
        if (p.dispute.close !== undefined) {
          out.push(
            disputeEvent(
              'charge.dispute.closed',
              at(p.dispute.close),
              {
                id: `dp_${tag}_${i}`,
                charge: `ch_${tag}_${i}`,
                paymentIntent: pi,
                status: p.dispute.won ? 'won' : 'lost',
              },
              `evt_${tag}_${i}_dc`,
            ),
          );
        }
      }
    }
    // Twins: Stripe sometimes emits two events (two ids) for one change.
    for (let t = 0; t < m.twins && t < out.length; t++)
      out.push({ ...out[out.length - 1 - t], id: `evt_${tag}_${i}_twin${t}` });
  });
  return out;
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const a = [...items];
  let s = seed >>> 0 || 1;
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

let db: TestDatabase;
let h: AccessHarness;
let run = 0;

/** The read model of one community with its id and the generated tag taken out. */
async function finalModel(communityId: string, tag: string) {
  const strip = (v: unknown) =>
    JSON.parse(JSON.stringify(v).split(tag).join('T').split(communityId).join('C'));
  const members = await h.ds.query(
    `SELECT member_id, doc->'state' AS state, doc->'invoices' AS invoices FROM member_states WHERE community_id = $1 ORDER BY member_id`,
    [communityId],
  );
  const grants = await h.ds.query(
    `SELECT member_id, resource_kind, resource_id, source, valid_from, valid_until, suspended, caused_by FROM access_grants
      WHERE community_id = $1 AND superseded_at IS NULL
      ORDER BY member_id, resource_kind, resource_id, source, valid_from, valid_until, caused_by`,
    [communityId],
  );
  const links = await h.ds.query(
    `SELECT stripe_key, member_id FROM stripe_links WHERE community_id = $1 ORDER BY stripe_key`,
    [communityId],
  );
  const unlinked = await h.ds.query(
    `SELECT event_id FROM stripe_unlinked WHERE community_id = $1 ORDER BY event_id`,
    [communityId],
  );
  return strip({ members, grants, links, unlinked });
}

const envelopes = (communityId: string, events: StripeEventJson[]): NewEvent[] =>
  events.map((e) => ({ ...stripeLedgerEvent(communityId, e), id: `${e.id}` }));

beforeAll(async () => {
  db = await createTestDatabase('accessprop');
  const ledger = new PostgresLedger({ connectionString: db.url, pollIntervalMs: 10, readSettleMs: 10 });
  h = await startAccessHarness({ databaseUrl: db.url, ledger, maxBatch: 7 });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await db?.drop();
});

describe('membership-access projection properties', () => {
  it('gives the same final read model for any delivery order, with duplicates, as in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          members: fc.array(memberHistory, { minLength: 1, maxLength: 3 }),
          seed: fc.integer(),
          chunks: fc.integer({ min: 1, max: 5 }),
        }),
        async ({ members, seed, chunks }: History) => {
          run++;
          const inOrder = `com_in_${run}`;
          const reordered = `com_re_${run}`;
          const tagA = `a${run}x`;
          const tagB = `b${run}x`;
          const a = stripeEvents(tagA, members).sort((x, y) => x.created - y.created);
          const b = shuffled(stripeEvents(tagB, members), seed);
          await h.append(catalogFacts(inOrder));
          await h.append(catalogFacts(reordered));
          await h.append(envelopes(inOrder, a));
          const delivered = [
            ...envelopes(reordered, b),
            ...shuffled(envelopes(reordered, b), seed + 1).slice(0, 3),
          ];
          const size = Math.ceil(delivered.length / chunks);
          for (let i = 0; i < delivered.length; i += size) await h.append(delivered.slice(i, i + size));
          expect(await finalModel(reordered, tagB)).toEqual(await finalModel(inOrder, tagA));
        },
      ),
      { numRuns: 25, verbose: true },
    );
  }, 240_000);

  it('rebuilds rows identical to the live projection', async () => {
    const tables = h.projection.tables;
    // Every row, in an order of their own values: a table's physical order (how ties of a partial
    // ORDER BY come out) is no part of what a rebuild must reproduce.
    const snapshot = async () => {
      const out: Record<string, string[]> = {};
      for (const t of tables)
        out[t] = ((await h.ds.query(`SELECT * FROM ${t}`)) as unknown[]).map((r) => JSON.stringify(r)).sort();
      return out;
    };
    const live = await snapshot();
    expect(live.access_grants.length).toBeGreaterThan(0);
    const [report] = await h.projector.rebuild('membership-access');
    expect(report.events).toBeGreaterThan(0);
    const rebuilt = await snapshot();
    expect(rebuilt).toEqual(live);
  }, 120_000);
});

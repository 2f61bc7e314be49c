import fc from 'fast-check';
import { grantsFor } from '../access/grants-for';
import { buildCatalog, snapshot, invoice, PERIOD, T0 } from '../testing/builders';
import { DAY_MS } from '../time';
import type { StripeFact, SubscriptionStatus } from './membership.events';
import { emptyMemberState, evolveMembership } from './membership.evolve';
import { STATUS_PRECEDENCE } from './subscription-order';

const catalog = buildCatalog();
const community = catalog.community!;

const at = fc.integer({ min: 0, max: 6 }).map((d) => T0 + d * DAY_MS);
const eventId = fc.integer({ min: 1, max: 40 }).map((n) => `evt_${n}`);

const subscriptionFact: fc.Arbitrary<StripeFact> = fc
  .record({
    kind: fc.constantFrom('SubscriptionObserved' as const, 'SubscriptionDeleted' as const),
    subscriptionId: fc.constantFrom('sub_1', 'sub_2'),
    status: fc.constantFrom(...(STATUS_PRECEDENCE as SubscriptionStatus[])),
    priceId: fc.constantFrom('price_gold', 'price_gold_3x', 'price_g1_once'),
    period: fc.integer({ min: 0, max: 3 }),
    cancelAtPeriodEnd: fc.boolean(),
    observedAt: at,
    eventId,
  })
  .map(({ kind, period, ...o }) => ({
    type: kind,
    data: snapshot({
      ...o,
      currentPeriodStart: T0 + period * PERIOD,
      currentPeriodEnd: T0 + (period + 1) * PERIOD,
    }),
  }));

const otherFact: fc.Arbitrary<StripeFact> = fc.oneof(
  fc
    .record({
      n: fc.integer({ min: 1, max: 4 }),
      observedAt: at,
      eventId,
      sub: fc.constantFrom('sub_1', 'sub_2'),
    })
    .map(({ n, observedAt, eventId, sub }) => ({
      type: 'InvoicePaid' as const,
      data: invoice({ invoiceId: `in_${n}`, subscriptionId: sub, observedAt, eventId }),
    })),
  fc.record({ paid: fc.boolean(), observedAt: at, eventId }).map((d) => ({
    type: 'OneTimePurchaseCompleted' as const,
    data: {
      checkoutSessionId: 'cs_1',
      paymentIntentId: 'pi_1',
      stripePriceId: 'price_e1',
      memberId: 'm1',
      ...d,
    },
  })),
  fc.record({ full: fc.boolean(), observedAt: at, eventId }).map((d) => ({
    type: 'OneTimePurchaseRefunded' as const,
    data: { paymentIntentId: 'pi_1', ...d },
  })),
  fc.record({ observedAt: at, eventId }).map((d) => ({
    type: 'DisputeOpened' as const,
    data: { chargeId: 'ch_1', paymentIntentId: 'pi_1', ...d },
  })),
  fc
    .record({ status: fc.constantFrom('won' as const, 'lost' as const), observedAt: at, eventId })
    .map((d) => ({
      type: 'DisputeClosed' as const,
      data: { chargeId: 'ch_1', paymentIntentId: 'pi_1', ...d },
    })),
);

// Stripe gives one event id one payload: dedupe generated facts by id.
const history = fc
  .array(fc.oneof(subscriptionFact, otherFact), { maxLength: 14 })
  .map((facts) => [...new Map(facts.map((f) => [f.data.eventId, f])).values()]);

/** Delivered out of order and with some events twice, as Stripe does. */
const delivery = history.chain((facts) =>
  fc
    .tuple(
      fc.shuffledSubarray(facts, { minLength: facts.length, maxLength: facts.length }),
      fc.subarray(facts),
      fc.array(fc.nat()),
    )
    .map(([shuffled, repeats, keys]) => ({
      facts,
      delivered: [...shuffled, ...repeats]
        .map((f, i) => ({ f, k: keys[i] ?? i }))
        .sort((a, b) => a.k - b.k)
        .map(({ f }) => f),
    })),
);

const fold = (facts: StripeFact[]) => facts.reduce(evolveMembership, emptyMemberState());

describe('membership fold properties', () => {
  it('reaches the same state and grants whatever the delivery order and duplicates', () =>
    fc.assert(
      fc.property(delivery, ({ facts, delivered }) => {
        const live = fold(delivered);
        const replay = fold(facts);
        expect(live).toEqual(replay);
        expect(grantsFor(live, catalog, community)).toEqual(grantsFor(replay, catalog, community));
      }),
      { numRuns: 300 },
    ));

  it('never grants an interval that ends before it starts', () =>
    fc.assert(
      fc.property(history, (facts) => {
        for (const g of grantsFor(fold(facts), catalog, community)) {
          expect(g.validUntil === null || g.validUntil > g.validFrom).toBe(true);
        }
      }),
    ));
});

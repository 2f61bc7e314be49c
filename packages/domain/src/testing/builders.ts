// Test-only builders (excluded from the build): facts with overrides over a fixed clock.
import type { CatalogEvent } from '../catalog/catalog.events';
import { emptyCatalog, evolveCatalog, type Catalog } from '../catalog/catalog.evolve';
import type { InvoiceFact, SubscriptionSnapshot } from '../membership/membership.events';
import type { MembershipEvent } from '../membership/membership.evolve';
import { DAY_MS } from '../time';

export const T0 = Date.UTC(2026, 0, 1);
export const PERIOD = 30 * DAY_MS;
export const communityId = 'c1';

export const catalogFacts: CatalogEvent[] = [
  {
    type: 'CommunityCreated',
    data: {
      communityId,
      name: 'Makers',
      region: 'us',
      paidOnly: false,
      pastDueGraceDays: 3,
      createdAt: T0 - DAY_MS,
    },
  },
  {
    type: 'GroupDefined',
    data: { communityId, groupId: 'g1', name: 'Workshop', stripeProductId: 'prod_g1' },
  },
  {
    type: 'TierDefined',
    data: {
      communityId,
      tierId: 'gold',
      name: 'Gold',
      rank: 2,
      groupIds: ['g1'],
      stripeProductId: 'prod_gold',
    },
  },
  {
    type: 'EventDefined',
    data: {
      communityId,
      eventId: 'e1',
      name: 'Meetup',
      startsAt: T0 + 10 * DAY_MS,
      endsAt: T0 + 11 * DAY_MS,
      stripeProductId: 'prod_e1',
    },
  },
  {
    type: 'PriceAdded',
    data: {
      communityId,
      priceId: 'gold-monthly',
      stripePriceId: 'price_gold',
      stripeProductId: 'prod_gold',
      product: { kind: 'TIER', id: 'gold' },
      amount: 1000,
      currency: 'usd',
      frequency: 'MONTHLY',
    },
  },
  {
    type: 'PriceAdded',
    data: {
      communityId,
      priceId: 'gold-3x',
      stripePriceId: 'price_gold_3x',
      stripeProductId: 'prod_gold',
      product: { kind: 'TIER', id: 'gold' },
      amount: 4000,
      currency: 'usd',
      frequency: 'INSTALLMENTS',
      installments: 3,
    },
  },
  {
    type: 'PriceAdded',
    data: {
      communityId,
      priceId: 'g1-once',
      stripePriceId: 'price_g1_once',
      product: { kind: 'GROUP', id: 'g1' },
      amount: 5000,
      currency: 'usd',
      frequency: 'ONE_TIME',
    },
  },
  {
    type: 'PriceAdded',
    data: {
      communityId,
      priceId: 'e1-ticket',
      stripePriceId: 'price_e1',
      product: { kind: 'EVENT', id: 'e1' },
      amount: 2000,
      currency: 'usd',
      frequency: 'ONE_TIME',
    },
  },
];

export function buildCatalog(extra: CatalogEvent[] = []): Catalog {
  return [...catalogFacts, ...extra].reduce(evolveCatalog, emptyCatalog());
}

export function snapshot(overrides: Partial<SubscriptionSnapshot> = {}): SubscriptionSnapshot {
  return {
    subscriptionId: 'sub_1',
    customerId: 'cus_1',
    memberId: 'm1',
    status: 'active',
    priceId: 'price_gold',
    productId: 'prod_gold',
    itemId: 'si_1',
    quantity: 1,
    currentPeriodStart: T0,
    currentPeriodEnd: T0 + PERIOD,
    cancelAtPeriodEnd: false,
    observedAt: T0,
    eventId: 'evt_1',
    ...overrides,
  };
}

export const observed = (o: Partial<SubscriptionSnapshot> = {}): MembershipEvent => ({
  type: 'SubscriptionObserved',
  data: snapshot(o),
});
export const deleted = (o: Partial<SubscriptionSnapshot> = {}): MembershipEvent => ({
  type: 'SubscriptionDeleted',
  data: snapshot({ status: 'canceled', ...o }),
});

export function invoice(overrides: Partial<InvoiceFact> = {}): InvoiceFact {
  return {
    invoiceId: 'in_1',
    subscriptionId: 'sub_1',
    billingReason: 'subscription_cycle',
    amountPaid: 1000,
    currency: 'usd',
    lines: [],
    observedAt: T0,
    eventId: 'evt_in_1',
    ...overrides,
  };
}
export const invoicePaid = (o: Partial<InvoiceFact> = {}): MembershipEvent => ({
  type: 'InvoicePaid',
  data: invoice(o),
});

import type { CatalogEvent } from './catalog.events';
import { emptyCatalog, evolveCatalog, productForStripe, tiersByRank } from './catalog.evolve';
import { frequencyForRecurring, stripeRecurringFor } from './frequency';

const communityId = 'c1';
const facts: CatalogEvent[] = [
  {
    type: 'CommunityCreated',
    data: { communityId, name: 'M', region: 'us', paidOnly: false, pastDueGraceDays: 3, createdAt: 0 },
  },
  {
    type: 'TierDefined',
    data: { communityId, tierId: 'gold', name: 'Gold', rank: 2, groupIds: [], stripeProductId: 'prod_gold' },
  },
  { type: 'TierDefined', data: { communityId, tierId: 'basic', name: 'Basic', rank: 1, groupIds: [] } },
  {
    type: 'PriceAdded',
    data: {
      communityId,
      priceId: 'p1',
      stripePriceId: 'price_1',
      product: { kind: 'TIER', id: 'gold' },
      amount: 1000,
      currency: 'usd',
      frequency: 'MONTHLY',
    },
  },
  {
    type: 'PriceSuperseded',
    data: { communityId, priceId: 'p1', byPriceId: 'p2', existingSubscribers: 'GRANDFATHER' },
  },
];

describe('catalog evolve', () => {
  const catalog = facts.reduce(evolveCatalog, emptyCatalog());

  it('keeps a superseded price resolvable to its product', () => {
    expect(catalog.prices.p1).toMatchObject({ active: false, supersededBy: { priceId: 'p2' } });
    expect(productForStripe(catalog, 'price_1', undefined)).toEqual({ kind: 'TIER', id: 'gold' });
  });

  it('maps an unknown Stripe price to its product through the Stripe product id', () =>
    expect(productForStripe(catalog, 'price_elsewhere', 'prod_gold')).toEqual({ kind: 'TIER', id: 'gold' }));

  it('lists tiers by rank', () =>
    expect(tiersByRank(catalog).map((t) => t.tierId)).toEqual(['basic', 'gold']));

  it('ends paid-only free access when paid-only is set without a free period', () => {
    const next = evolveCatalog(catalog, {
      type: 'PaidOnlySet',
      data: { communityId, paidOnly: true, at: 42 },
    });
    expect(next.community).toMatchObject({ paidOnly: true, paidOnlySince: 42 });
  });
});

describe('billing frequency', () => {
  it.each([
    ['WEEKLY', 'week', 1],
    ['MONTHLY', 'month', 1],
    ['QUARTERLY', 'month', 3],
    ['ANNUAL', 'year', 1],
  ] as const)('maps %s to Stripe %s x %i and back', (frequency, interval, count) => {
    expect(stripeRecurringFor(frequency)).toEqual({ interval, interval_count: count });
    expect(frequencyForRecurring({ interval, interval_count: count })).toBe(frequency);
  });

  it('has no recurring for a one-time price', () => expect(stripeRecurringFor('ONE_TIME')).toBeNull());
});

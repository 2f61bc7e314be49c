import type { CatalogEvent } from '../catalog/catalog.events';
import { BadUserInputError, ConflictError } from '../errors';
import { buildCatalog, communityId, PERIOD, snapshot, T0 } from '../testing/builders';
import { DAY_MS } from '../time';
import { planPriceMigration } from './price-migration';
import { planTierChange } from './tier-change';
import { selectUpsells } from './upsell';

const price = (
  priceId: string,
  tierId: string,
  amount: number,
  frequency: 'MONTHLY' | 'ANNUAL' = 'MONTHLY',
): CatalogEvent => ({
  type: 'PriceAdded',
  data: {
    communityId,
    priceId,
    stripePriceId: `price_${priceId}`,
    product: { kind: 'TIER', id: tierId },
    amount,
    currency: 'usd',
    frequency,
  },
});
const tier = (tierId: string, rank: number, groupIds: string[] = []): CatalogEvent => ({
  type: 'TierDefined',
  data: { communityId, tierId, name: tierId[0].toUpperCase() + tierId.slice(1), rank, groupIds },
});
// Bronze (1) < Gold (2, from the builders) < Platinum (3).
const catalog = buildCatalog([
  tier('bronze', 1),
  tier('platinum', 3),
  price('bronze-m', 'bronze', 500),
  price('plat-m', 'platinum', 3000),
  price('plat-y', 'platinum', 30000, 'ANNUAL'),
]);

describe('planTierChange', () => {
  it('previews an upgrade as immediate, crediting unused time and charging the remaining time, each rounded', () => {
    const at = T0 + 10 * DAY_MS + 789; // a third of a 30-day period gone, with milliseconds Stripe never sees
    const plan = planTierChange({ subscription: snapshot(), catalog, toPriceId: 'plat-m', at });
    expect(plan.timing).toBe('IMMEDIATE');
    expect(plan.prorationDate).toBe(T0 + 10 * DAY_MS);
    expect(plan.preview.lines.map((l) => l.amount)).toEqual([-667, 2000]);
    expect(plan.preview).toMatchObject({
      credit: -667,
      charge: 2000,
      net: 1333,
      dueNow: 1333,
      currency: 'usd',
    });
  });

  it('schedules a downgrade for the period end with nothing charged now', () => {
    const plan = planTierChange({
      subscription: snapshot(),
      catalog,
      toPriceId: 'bronze-m',
      at: T0 + DAY_MS,
    });
    expect(plan.timing).toBe('PERIOD_END');
    expect(plan.prorationDate).toBe(T0 + PERIOD);
    expect(plan.preview).toMatchObject({ lines: [], credit: 0, charge: 0, net: 0, dueNow: 0 });
  });

  it('lets the caller force a downgrade to happen now, with a credit larger than the charge and nothing due', () => {
    const plan = planTierChange({
      subscription: snapshot(),
      catalog,
      toPriceId: 'bronze-m',
      at: T0 + 15 * DAY_MS,
      timing: 'IMMEDIATE',
    });
    expect(plan.preview).toMatchObject({ credit: -500, charge: 250, net: -250, dueNow: 0 });
  });

  it('scales both lines by the quantity of the subscription item', () => {
    const plan = planTierChange({
      subscription: snapshot({ quantity: 3 }),
      catalog,
      toPriceId: 'plat-m',
      at: T0 + 15 * DAY_MS,
    });
    expect(plan.preview).toMatchObject({ credit: -1500, charge: 4500 });
  });

  it('charges the full annual price now when the interval changes', () => {
    const plan = planTierChange({
      subscription: snapshot(),
      catalog,
      toPriceId: 'plat-y',
      at: T0 + 15 * DAY_MS,
    });
    expect(plan.preview).toMatchObject({ credit: -500, charge: 30000, dueNow: 29500, intervalChange: true });
  });

  it('refuses a change without a live subscription, to the same price, or to a non-tier or non-recurring price', () => {
    const at = T0 + DAY_MS;
    expect(() => planTierChange({ subscription: undefined, catalog, toPriceId: 'plat-m', at })).toThrow(
      ConflictError,
    );
    expect(() =>
      planTierChange({ subscription: snapshot({ status: 'canceled' }), catalog, toPriceId: 'plat-m', at }),
    ).toThrow(ConflictError);
    expect(() =>
      planTierChange({ subscription: snapshot(), catalog, toPriceId: 'gold-monthly', at }),
    ).toThrow(ConflictError);
    expect(() => planTierChange({ subscription: snapshot(), catalog, toPriceId: 'e1-ticket', at })).toThrow(
      BadUserInputError,
    );
    expect(() => planTierChange({ subscription: snapshot(), catalog, toPriceId: 'gold-3x', at })).toThrow(
      BadUserInputError,
    );
  });

  it('refuses an immediate change dated outside the current period', () => {
    expect(() =>
      planTierChange({ subscription: snapshot(), catalog, toPriceId: 'plat-m', at: T0 + PERIOD + DAY_MS }),
    ).toThrow(BadUserInputError);
  });
});

describe('selectUpsells', () => {
  it('offers a subscriber only the tiers above theirs, as moves without a trial, and groups and future events they lack', () => {
    const offers = selectUpsells(
      catalog,
      {
        tierRank: 2,
        currency: 'usd',
        trialedProducts: [],
        access: [{ kind: 'COMMUNITY' }, { kind: 'GROUP', id: 'g1' }],
      },
      T0,
    );
    expect(offers.map((o) => [o.product.id, o.price.priceId, o.tierUpgrade])).toEqual([
      ['platinum', 'plat-m', true],
      ['platinum', 'plat-y', true],
      ['e1', 'e1-ticket', false],
    ]);
  });

  it('offers a trial once per member per product', () => {
    const withTrial = buildCatalog([
      {
        ...price('bronze-m', 'gold', 500),
        data: { ...price('bronze-m', 'gold', 500).data, trialDays: 7 },
      } as CatalogEvent,
    ]);
    const fresh = selectUpsells(withTrial, { trialedProducts: [], access: [] }, T0);
    const trialed = selectUpsells(
      withTrial,
      { trialedProducts: [{ kind: 'TIER', id: 'gold' }], access: [] },
      T0,
    );
    expect(fresh.find((o) => o.price.priceId === 'bronze-m')?.trialDays).toBe(7);
    expect(trialed.find((o) => o.price.priceId === 'bronze-m')?.trialDays).toBeUndefined();
  });

  it('leaves out events that are over and superseded prices', () => {
    const c = buildCatalog([
      price('gold-new', 'gold', 1200),
      {
        type: 'PriceSuperseded',
        data: {
          communityId,
          priceId: 'gold-monthly',
          byPriceId: 'gold-new',
          existingSubscribers: 'GRANDFATHER',
        },
      },
    ]);
    const offers = selectUpsells(c, { trialedProducts: [], access: [] }, T0 + 20 * DAY_MS);
    expect(offers.map((o) => o.price.priceId)).not.toContain('gold-monthly');
    expect(offers.map((o) => o.price.priceId)).not.toContain('e1-ticket');
  });
});

describe('planPriceMigration', () => {
  const to = catalog.prices['plat-m'];
  const map = new Map([['price_gold', to]]);
  const subscribers = [
    {
      memberId: 'm2',
      subscription: snapshot({ subscriptionId: 'sub_2', memberId: 'm2', currentPeriodEnd: T0 + 5 * DAY_MS }),
    },
    { memberId: 'm1', subscription: snapshot() },
    {
      memberId: 'm3',
      subscription: snapshot({ subscriptionId: 'sub_3', memberId: 'm3', status: 'canceled' }),
    },
    {
      memberId: 'm4',
      subscription: snapshot({ subscriptionId: 'sub_4', memberId: 'm4', priceId: 'price_bronze-m' }),
    },
  ];

  it('moves each live subscriber of the old price at their own renewal, and reports who was skipped', () => {
    const plan = planPriceMigration({
      subscribers,
      priceMap: map,
      timing: 'PERIOD_END',
      at: T0,
      alreadyScheduled: new Set(),
    });
    expect(plan.steps.map((s) => [s.memberId, s.effectiveAt])).toEqual([
      ['m1', T0 + PERIOD],
      ['m2', T0 + 5 * DAY_MS],
    ]);
    expect(plan.skipped).toEqual([{ memberId: 'm3', reason: 'subscription sub_3 is canceled' }]);
  });

  it('resumes: subscribers scheduled by an earlier run are not moved twice', () => {
    const plan = planPriceMigration({
      subscribers,
      priceMap: map,
      timing: 'IMMEDIATE',
      at: T0 + DAY_MS,
      alreadyScheduled: new Set(['sub_1']),
    });
    expect(plan.steps.map((s) => [s.memberId, s.effectiveAt])).toEqual([['m2', T0 + DAY_MS]]);
  });
});

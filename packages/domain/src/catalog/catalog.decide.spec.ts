import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from '../errors';
import { FIXED_NOW, specFor } from '../testing/given-when-then';
import { decideCatalog, type CatalogCommand } from './catalog.decide';
import type { CatalogEvent } from './catalog.events';
import { emptyCatalog, evolveCatalog, type Catalog } from './catalog.evolve';

const spec = specFor<CatalogCommand, CatalogEvent, Catalog>(decideCatalog, evolveCatalog, emptyCatalog);
const communityId = 'c1';
const created: CatalogEvent = {
  type: 'CommunityCreated',
  data: { communityId, name: 'Makers', region: 'eu', paidOnly: false, pastDueGraceDays: 3, createdAt: 0 },
};
const group: CatalogEvent = { type: 'GroupDefined', data: { communityId, groupId: 'g1', name: 'Workshop' } };
const gold: CatalogEvent = {
  type: 'TierDefined',
  data: { communityId, tierId: 'gold', name: 'Gold', rank: 2, groupIds: ['g1'] },
};
const monthly = {
  priceId: 'p1',
  stripePriceId: 'price_1',
  product: { kind: 'TIER' as const, id: 'gold' },
  amount: 1000,
  currency: 'EUR',
  frequency: 'MONTHLY' as const,
};
const priceAdded: CatalogEvent = { type: 'PriceAdded', data: { communityId, ...monthly, currency: 'eur' } };

describe('catalog decide', () => {
  it('creates a community with the default grace period', () =>
    spec
      .given([])
      .when({ type: 'createCommunity', data: { communityId, name: ' Makers ', region: 'eu' } })
      .then([created].map((e) => ({ ...e, data: { ...e.data, createdAt: FIXED_NOW } })) as CatalogEvent[]));

  it('refuses to create a community twice', () =>
    spec
      .given([created])
      .when({ type: 'createCommunity', data: { communityId, name: 'Again', region: 'eu' } })
      .thenThrows(ConflictError, { code: 'CONFLICT' }));

  it('reports every bad field of a new community at once', () =>
    spec
      .given([])
      .when({ type: 'createCommunity', data: { communityId, name: ' ', region: 'uk', pastDueGraceDays: -1 } })
      .thenThrows(BadUserInputError, {
        code: 'BAD_USER_INPUT',
        fields: ['name', 'region', 'pastDueGraceDays'],
      }));

  it('keeps the region immutable after creation', () =>
    spec
      .given([created])
      .when({ type: 'changeCommunitySettings', data: { region: 'in' } })
      .thenThrows(BadUserInputError, { fields: ['region'] }));

  it('records nothing when settings do not change', () =>
    spec
      .given([created])
      .when({ type: 'changeCommunitySettings', data: { region: 'eu', name: 'Makers' } })
      .then([]));

  it('needs a community before anything else', () =>
    spec
      .given([])
      .when({ type: 'createGroup', data: { groupId: 'g1', name: 'Workshop' } })
      .thenThrows(NotFoundError, { code: 'NOT_FOUND' }));

  it('refuses a tier whose rank is taken', () =>
    spec
      .given([created, group, gold])
      .when({ type: 'createTier', data: { tierId: 'silver', name: 'Silver', rank: 2 } })
      .thenThrows(ConflictError));

  it('refuses a tier that bundles an unknown group', () =>
    spec
      .given([created])
      .when({ type: 'createTier', data: { tierId: 'gold', name: 'Gold', rank: 2, groupIds: ['nope'] } })
      .thenThrows(NotFoundError));

  it('defines a tier with its groups', () =>
    spec
      .given([created, group])
      .when({ type: 'createTier', data: { tierId: 'gold', name: 'Gold', rank: 2, groupIds: ['g1', 'g1'] } })
      .then([gold]));

  it('adds a price with a lower-case currency', () =>
    spec.given([created, group, gold]).when({ type: 'createPrice', data: monthly }).then([priceAdded]));

  it.each([
    ['a negative amount', { amount: -1 }, ['amount']],
    ['a fractional amount', { amount: 10.5 }, ['amount']],
    ['a currency that is not 3 letters', { currency: 'EURO' }, ['currency']],
    ['installments without INSTALLMENTS', { installments: 3 }, ['installments']],
    ['INSTALLMENTS with fewer than 2', { frequency: 'INSTALLMENTS', installments: 1 }, ['installments']],
    ['a trial longer than 730 days', { trialDays: 731 }, ['trialDays']],
    ['a zero-day trial', { trialDays: 0 }, ['trialDays']],
    ['a trial on a one-time price', { frequency: 'ONE_TIME', trialDays: 7 }, ['trialDays']],
  ])('refuses a price with %s', (_, override, fields) =>
    spec
      .given([created, group, gold])
      .when({ type: 'createPrice', data: { ...monthly, ...override } as typeof monthly })
      .thenThrows(BadUserInputError, { fields }),
  );

  it('refuses a second link of the same Stripe price', () =>
    spec
      .given([created, group, gold, priceAdded])
      .when({ type: 'createPrice', data: { ...monthly, priceId: 'p2' } })
      .thenThrows(ConflictError));

  it('refuses a price for a product that does not exist', () =>
    spec.given([created]).when({ type: 'createPrice', data: monthly }).thenThrows(NotFoundError));

  it('changes a price by adding a new one and superseding the old', () =>
    spec
      .given([created, group, gold, priceAdded])
      .when({
        type: 'changePrice',
        data: {
          priceId: 'p1',
          newPriceId: 'p2',
          newStripePriceId: 'price_2',
          amount: 1200,
          existingSubscribers: 'GRANDFATHER',
        },
      })
      .then([
        {
          type: 'PriceAdded',
          data: { ...priceAdded.data, priceId: 'p2', stripePriceId: 'price_2', amount: 1200 },
        } as CatalogEvent,
        {
          type: 'PriceSuperseded',
          data: { communityId, priceId: 'p1', byPriceId: 'p2', existingSubscribers: 'GRANDFATHER' },
        },
      ]));

  it('refuses free members in a paid-only community after the free period', () =>
    spec
      .given([created, { type: 'PaidOnlySet', data: { communityId, paidOnly: true, at: 1 } }])
      .when({ type: 'joinAsFreeMember', data: { memberId: 'm1' } })
      .thenThrows(ForbiddenError, { code: 'FORBIDDEN' }));

  it('refuses complimentary access that already ended', () =>
    spec
      .given([created])
      .when({
        type: 'grantComplimentaryAccess',
        data: { memberId: 'm1', resource: { kind: 'COMMUNITY' }, until: FIXED_NOW, reason: 'speaker' },
      })
      .thenThrows(BadUserInputError, { fields: ['until'] }));

  it('stamps complimentary access with the decision time', () =>
    spec
      .given([created, group])
      .when({
        type: 'grantComplimentaryAccess',
        data: { memberId: 'm1', resource: { kind: 'GROUP', id: 'g1' }, reason: 'host' },
      })
      .then([
        {
          type: 'ComplimentaryAccessGranted',
          data: {
            communityId,
            memberId: 'm1',
            resource: { kind: 'GROUP', id: 'g1' },
            from: FIXED_NOW,
            reason: 'host',
          },
        },
      ]));
});

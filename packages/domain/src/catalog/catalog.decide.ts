import { ConflictError, FieldChecks, ForbiddenError, NotFoundError } from '../errors';
import type { EpochMs } from '../time';
import type {
  BillingFrequency,
  CatalogEvent,
  ExistingSubscribers,
  ProductRef,
  Region,
  ResourceRef,
} from './catalog.events';
import type { Catalog, Community, Price } from './catalog.evolve';

export const REGIONS: readonly Region[] = ['us', 'eu', 'in'];
export const BILLING_FREQUENCIES: readonly BillingFrequency[] = [
  'ONE_TIME',
  'INSTALLMENTS',
  'WEEKLY',
  'MONTHLY',
  'QUARTERLY',
  'ANNUAL',
];
export const DEFAULT_PAST_DUE_GRACE_DAYS = 3;
export const MAX_PAST_DUE_GRACE_DAYS = 60;
/** Stripe's upper bound for `trial_period_days`. */
export const MAX_TRIAL_DAYS = 730;

type Cmd<Type extends string, Data> = { type: Type; data: Data };

export type CatalogCommand =
  | Cmd<
      'createCommunity',
      {
        communityId: string;
        name: string;
        region: string;
        stripeAccountId?: string;
        paidOnly?: boolean;
        pastDueGraceDays?: number;
      }
    >
  | Cmd<'changeCommunitySettings', { name?: string; pastDueGraceDays?: number; region?: string }>
  | Cmd<'linkStripeAccount', { stripeAccountId: string }>
  | Cmd<
      'createTier',
      { tierId: string; name: string; rank: number; groupIds?: string[]; stripeProductId?: string }
    >
  | Cmd<'createGroup', { groupId: string; name: string; stripeProductId?: string }>
  | Cmd<
      'createEvent',
      {
        eventId: string;
        name: string;
        startsAt: EpochMs;
        endsAt: EpochMs;
        capacity?: number;
        stripeProductId?: string;
      }
    >
  | Cmd<
      'createPrice',
      {
        priceId: string;
        stripePriceId: string;
        stripeProductId?: string;
        product: ProductRef;
        amount: number;
        currency: string;
        frequency: BillingFrequency;
        installments?: number;
        trialDays?: number;
      }
    >
  | Cmd<
      'changePrice',
      {
        priceId: string;
        newPriceId: string;
        newStripePriceId: string;
        amount: number;
        existingSubscribers: ExistingSubscribers;
      }
    >
  | Cmd<'setPaidOnly', { paidOnly: boolean; freeMembersUntil?: EpochMs }>
  | Cmd<'joinAsFreeMember', { memberId: string; email?: string }>
  | Cmd<
      'grantComplimentaryAccess',
      { memberId: string; resource: ResourceRef; until?: EpochMs; reason: string }
    >
  | Cmd<'revokeComplimentaryAccess', { memberId: string; resource: ResourceRef; reason: string }>;

const isInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n);
const nonBlank = (s: string | undefined): boolean => typeof s === 'string' && s.trim().length > 0;

export function communityOrThrow(catalog: Catalog): Community {
  if (!catalog.community) throw new NotFoundError('Community not found');
  return catalog.community;
}

export function priceOrThrow(catalog: Catalog, priceId: string): Price {
  const price = catalog.prices[priceId];
  if (!price) throw new NotFoundError(`Price ${priceId} not found`);
  return price;
}

export function assertProductExists(catalog: Catalog, product: ProductRef | ResourceRef): void {
  const exists =
    product.kind === 'COMMUNITY' ||
    (product.kind === 'TIER' && product.id !== undefined && product.id in catalog.tiers) ||
    (product.kind === 'GROUP' && product.id !== undefined && product.id in catalog.groups) ||
    (product.kind === 'EVENT' && product.id !== undefined && product.id in catalog.events);
  if (!exists) throw new NotFoundError(`${product.kind.toLowerCase()} ${product.id ?? ''} not found`.trim());
}

function checkPrice(
  checks: FieldChecks,
  p: {
    amount: number;
    currency?: string;
    frequency?: BillingFrequency;
    installments?: number;
    trialDays?: number;
  },
): void {
  checks.check(
    isInt(p.amount) && p.amount >= 0,
    'amount',
    'must be a whole number of minor units, at least 0',
  );
  if (p.currency !== undefined) checks.check(/^[a-z]{3}$/i.test(p.currency), 'currency', 'must be 3 letters');
  if (p.frequency === undefined) return;
  checks.check(BILLING_FREQUENCIES.includes(p.frequency), 'frequency', 'is not a known billing frequency');
  if (p.frequency === 'INSTALLMENTS') {
    checks.check(isInt(p.installments) && p.installments >= 2, 'installments', 'must be at least 2');
  } else {
    checks.check(p.installments === undefined, 'installments', 'only applies to INSTALLMENTS');
  }
  if (p.trialDays !== undefined) {
    checks.check(p.frequency !== 'ONE_TIME', 'trialDays', 'does not apply to a one-time price');
    checks.check(
      isInt(p.trialDays) && p.trialDays >= 1 && p.trialDays <= MAX_TRIAL_DAYS,
      'trialDays',
      'must be 1..730',
    );
  }
}

export function decideCatalog(command: CatalogCommand, catalog: Catalog, now: EpochMs): CatalogEvent[] {
  const checks = new FieldChecks();
  if (command.type === 'createCommunity') {
    const d = command.data;
    if (catalog.community)
      throw new ConflictError(`Community ${catalog.community.communityId} already exists`);
    const grace = d.pastDueGraceDays ?? DEFAULT_PAST_DUE_GRACE_DAYS;
    checks
      .check(nonBlank(d.name), 'name', 'must not be blank')
      .check(REGIONS.includes(d.region as Region), 'region', 'must be us, eu or in')
      .check(
        isInt(grace) && grace >= 0 && grace <= MAX_PAST_DUE_GRACE_DAYS,
        'pastDueGraceDays',
        'must be 0..60',
      )
      .check(
        d.stripeAccountId === undefined || d.stripeAccountId.startsWith('acct_'),
        'stripeAccountId',
        'must start with acct_',
      )
      .throwIfAny();
    return [
      {
        type: 'CommunityCreated',
        data: {
          communityId: d.communityId,
          name: d.name.trim(),
          region: d.region as Region,
          ...(d.stripeAccountId !== undefined && { stripeAccountId: d.stripeAccountId }),
          paidOnly: d.paidOnly ?? false,
          pastDueGraceDays: grace,
          createdAt: now,
        },
      },
    ];
  }

  const community = communityOrThrow(catalog);
  const communityId = community.communityId;
  switch (command.type) {
    case 'changeCommunitySettings': {
      const d = command.data;
      // Region decides where payment data lives; moving it would mean moving stores, so it is fixed at birth.
      checks
        .check(
          d.region === undefined || d.region === community.region,
          'region',
          'cannot change after creation',
        )
        .check(d.name === undefined || nonBlank(d.name), 'name', 'must not be blank')
        .check(
          d.pastDueGraceDays === undefined ||
            (isInt(d.pastDueGraceDays) &&
              d.pastDueGraceDays >= 0 &&
              d.pastDueGraceDays <= MAX_PAST_DUE_GRACE_DAYS),
          'pastDueGraceDays',
          'must be 0..60',
        )
        .throwIfAny();
      const changed = {
        ...(d.name !== undefined && d.name.trim() !== community.name && { name: d.name.trim() }),
        ...(d.pastDueGraceDays !== undefined &&
          d.pastDueGraceDays !== community.pastDueGraceDays && { pastDueGraceDays: d.pastDueGraceDays }),
      };
      return Object.keys(changed).length === 0
        ? []
        : [{ type: 'CommunitySettingsChanged', data: { communityId, ...changed } }];
    }
    case 'linkStripeAccount': {
      const { stripeAccountId } = command.data;
      checks
        .check(stripeAccountId.startsWith('acct_'), 'stripeAccountId', 'must start with acct_')
        .throwIfAny();
      if (community.stripeAccountId === stripeAccountId) return [];
      if (community.stripeAccountId)
        throw new ConflictError('Community is already linked to another Stripe account');
      return [{ type: 'StripeAccountLinked', data: { communityId, stripeAccountId } }];
    }
    case 'createTier': {
      const d = command.data;
      const groupIds = d.groupIds ?? [];
      checks
        .check(nonBlank(d.name), 'name', 'must not be blank')
        .check(isInt(d.rank) && d.rank >= 0, 'rank', 'must be a whole number, at least 0')
        .throwIfAny();
      if (d.tierId in catalog.tiers) throw new ConflictError(`Tier ${d.tierId} already exists`);
      if (d.rank in catalog.tierByRank) throw new ConflictError(`Another tier already has rank ${d.rank}`);
      for (const id of groupIds) assertProductExists(catalog, { kind: 'GROUP', id });
      return [
        {
          type: 'TierDefined',
          data: {
            communityId,
            tierId: d.tierId,
            name: d.name.trim(),
            rank: d.rank,
            groupIds: [...new Set(groupIds)],
            ...(d.stripeProductId !== undefined && { stripeProductId: d.stripeProductId }),
          },
        },
      ];
    }
    case 'createGroup': {
      const d = command.data;
      checks.check(nonBlank(d.name), 'name', 'must not be blank').throwIfAny();
      if (d.groupId in catalog.groups) throw new ConflictError(`Group ${d.groupId} already exists`);
      return [{ type: 'GroupDefined', data: { communityId, ...d, name: d.name.trim() } }];
    }
    case 'createEvent': {
      const d = command.data;
      checks
        .check(nonBlank(d.name), 'name', 'must not be blank')
        .check(d.endsAt > d.startsAt, 'endsAt', 'must be after startsAt')
        .check(
          d.capacity === undefined || (isInt(d.capacity) && d.capacity >= 1),
          'capacity',
          'must be at least 1',
        )
        .throwIfAny();
      if (d.eventId in catalog.events) throw new ConflictError(`Event ${d.eventId} already exists`);
      return [{ type: 'EventDefined', data: { communityId, ...d, name: d.name.trim() } }];
    }
    case 'createPrice': {
      const d = command.data;
      checkPrice(checks, d);
      checks.check(
        d.product.kind !== 'EVENT' || d.frequency === 'ONE_TIME',
        'frequency',
        'an event ticket is sold once: use ONE_TIME',
      );
      checks.throwIfAny();
      assertProductExists(catalog, d.product);
      if (d.priceId in catalog.prices) throw new ConflictError(`Price ${d.priceId} already exists`);
      if (d.stripePriceId in catalog.priceIdByStripePriceId) {
        throw new ConflictError(`Stripe price ${d.stripePriceId} is already linked`);
      }
      return [{ type: 'PriceAdded', data: { communityId, ...d, currency: d.currency.toLowerCase() } }];
    }
    case 'changePrice': {
      const d = command.data;
      const old = priceOrThrow(catalog, d.priceId);
      checkPrice(checks, { amount: d.amount });
      checks.throwIfAny();
      // Stripe prices are immutable: a new amount is a new price; the old one is superseded, never edited.
      if (!old.active) throw new ConflictError(`Price ${d.priceId} is already superseded`);
      if (d.newPriceId in catalog.prices || d.newStripePriceId in catalog.priceIdByStripePriceId) {
        throw new ConflictError(`Price ${d.newPriceId} already exists`);
      }
      const { active: _a, supersededBy: _s, ...rest } = old;
      return [
        {
          type: 'PriceAdded',
          data: {
            ...rest,
            communityId,
            priceId: d.newPriceId,
            stripePriceId: d.newStripePriceId,
            amount: d.amount,
          },
        },
        {
          type: 'PriceSuperseded',
          data: {
            communityId,
            priceId: old.priceId,
            byPriceId: d.newPriceId,
            existingSubscribers: d.existingSubscribers,
          },
        },
      ];
    }
    case 'setPaidOnly': {
      const { paidOnly, freeMembersUntil } = command.data;
      checks
        .check(
          freeMembersUntil === undefined || paidOnly,
          'freeMembersUntil',
          'only applies when paidOnly is true',
        )
        .check(
          freeMembersUntil === undefined || freeMembersUntil >= now,
          'freeMembersUntil',
          'must not be in the past',
        )
        .throwIfAny();
      return [
        {
          type: 'PaidOnlySet',
          data: {
            communityId,
            paidOnly,
            ...(freeMembersUntil !== undefined && { freeMembersUntil }),
            at: now,
          },
        },
      ];
    }
    case 'joinAsFreeMember': {
      const { memberId, email } = command.data;
      if (
        community.paidOnly &&
        !(community.freeMembersUntil !== undefined && community.freeMembersUntil > now)
      ) {
        throw new ForbiddenError('This community is paid-only: join through a price');
      }
      return [
        {
          type: 'MemberJoined',
          data: { communityId, memberId, ...(email !== undefined && { email }), joinedAt: now },
        },
      ];
    }
    case 'grantComplimentaryAccess': {
      const { memberId, resource, until, reason } = command.data;
      checks
        .check(nonBlank(reason), 'reason', 'must not be blank')
        .check(until === undefined || until > now, 'until', 'must be in the future')
        .throwIfAny();
      assertProductExists(catalog, resource);
      return [
        {
          type: 'ComplimentaryAccessGranted',
          data: {
            communityId,
            memberId,
            resource,
            from: now,
            ...(until !== undefined && { until }),
            reason: reason.trim(),
          },
        },
      ];
    }
    case 'revokeComplimentaryAccess': {
      const { memberId, resource, reason } = command.data;
      checks.check(nonBlank(reason), 'reason', 'must not be blank').throwIfAny();
      assertProductExists(catalog, resource);
      return [
        {
          type: 'ComplimentaryAccessRevoked',
          data: { communityId, memberId, resource, at: now, reason: reason.trim() },
        },
      ];
    }
  }
}

import type { EpochMs } from '../time';

export type Region = 'us' | 'eu' | 'in';
export type ProductKind = 'TIER' | 'GROUP' | 'EVENT';
export type ResourceKind = 'COMMUNITY' | 'GROUP' | 'EVENT';
export type BillingFrequency = 'ONE_TIME' | 'INSTALLMENTS' | 'WEEKLY' | 'MONTHLY' | 'QUARTERLY' | 'ANNUAL';
export type ExistingSubscribers = 'GRANDFATHER' | 'MIGRATE_AT_RENEWAL';

export type ProductRef = { kind: ProductKind; id: string };
/** `id` is absent for the community itself. */
export type ResourceRef = { kind: ResourceKind; id?: string };

type Fact<Type extends string, Data> = { type: Type; data: Data };

export type CommunityCreated = Fact<
  'CommunityCreated',
  {
    communityId: string;
    name: string;
    region: Region;
    stripeAccountId?: string;
    paidOnly: boolean;
    pastDueGraceDays: number;
    freeMembersUntil?: EpochMs;
    createdAt: EpochMs;
  }
>;
export type CommunitySettingsChanged = Fact<
  'CommunitySettingsChanged',
  { communityId: string; name?: string; pastDueGraceDays?: number }
>;
export type StripeAccountLinked = Fact<
  'StripeAccountLinked',
  { communityId: string; stripeAccountId: string }
>;
export type TierDefined = Fact<
  'TierDefined',
  {
    communityId: string;
    tierId: string;
    name: string;
    rank: number;
    groupIds: string[];
    stripeProductId?: string;
  }
>;
export type GroupDefined = Fact<
  'GroupDefined',
  { communityId: string; groupId: string; name: string; stripeProductId?: string }
>;
export type EventDefined = Fact<
  'EventDefined',
  {
    communityId: string;
    eventId: string;
    name: string;
    startsAt: EpochMs;
    endsAt: EpochMs;
    capacity?: number;
    stripeProductId?: string;
  }
>;
export type PriceAdded = Fact<
  'PriceAdded',
  {
    communityId: string;
    priceId: string;
    stripePriceId: string;
    stripeProductId?: string;
    product: ProductRef;
    /** Minor units of `currency`. */
    amount: number;
    /** Lower-case ISO 4217, as Stripe writes it. */
    currency: string;
    frequency: BillingFrequency;
    installments?: number;
    trialDays?: number;
  }
>;
export type PriceSuperseded = Fact<
  'PriceSuperseded',
  { communityId: string; priceId: string; byPriceId: string; existingSubscribers: ExistingSubscribers }
>;
export type PaidOnlySet = Fact<
  'PaidOnlySet',
  { communityId: string; paidOnly: boolean; freeMembersUntil?: EpochMs; at: EpochMs }
>;
/** A free member: no payment involved. */
export type MemberJoined = Fact<
  'MemberJoined',
  { communityId: string; memberId: string; email?: string; joinedAt: EpochMs }
>;
export type ComplimentaryAccessGranted = Fact<
  'ComplimentaryAccessGranted',
  {
    communityId: string;
    memberId: string;
    resource: ResourceRef;
    from: EpochMs;
    until?: EpochMs;
    reason: string;
  }
>;
export type ComplimentaryAccessRevoked = Fact<
  'ComplimentaryAccessRevoked',
  { communityId: string; memberId: string; resource: ResourceRef; at: EpochMs; reason: string }
>;

export type CatalogEvent =
  | CommunityCreated
  | CommunitySettingsChanged
  | StripeAccountLinked
  | TierDefined
  | GroupDefined
  | EventDefined
  | PriceAdded
  | PriceSuperseded
  | PaidOnlySet
  | MemberJoined
  | ComplimentaryAccessGranted
  | ComplimentaryAccessRevoked;

export type CatalogEventType = CatalogEvent['type'];

export const CATALOG_EVENT_TYPES = [
  'CommunityCreated',
  'CommunitySettingsChanged',
  'StripeAccountLinked',
  'TierDefined',
  'GroupDefined',
  'EventDefined',
  'PriceAdded',
  'PriceSuperseded',
  'PaidOnlySet',
  'MemberJoined',
  'ComplimentaryAccessGranted',
  'ComplimentaryAccessRevoked',
] as const satisfies readonly CatalogEventType[];

export function isCatalogEvent(event: { type: string }): event is CatalogEvent {
  return (CATALOG_EVENT_TYPES as readonly string[]).includes(event.type);
}

/** Member-scoped admin facts: they also feed the member's state. */
export type MemberAdminEvent = MemberJoined | ComplimentaryAccessGranted | ComplimentaryAccessRevoked;

import type { EpochMs } from '../time';
import type {
  BillingFrequency,
  CatalogEvent,
  ExistingSubscribers,
  ProductKind,
  ProductRef,
  Region,
} from './catalog.events';

export type Community = {
  communityId: string;
  name: string;
  region: Region;
  stripeAccountId?: string;
  paidOnly: boolean;
  /** When paid-only took effect (creation or `PaidOnlySet`); free access ends here unless `freeMembersUntil`. */
  paidOnlySince?: EpochMs;
  freeMembersUntil?: EpochMs;
  pastDueGraceDays: number;
};
export type Tier = {
  tierId: string;
  name: string;
  rank: number;
  groupIds: string[];
  stripeProductId?: string;
};
export type Group = { groupId: string; name: string; stripeProductId?: string };
export type CommunityEvent = {
  eventId: string;
  name: string;
  startsAt: EpochMs;
  endsAt: EpochMs;
  capacity?: number;
  stripeProductId?: string;
};
export type Price = {
  priceId: string;
  stripePriceId: string;
  stripeProductId?: string;
  product: ProductRef;
  amount: number;
  currency: string;
  frequency: BillingFrequency;
  installments?: number;
  trialDays?: number;
  active: boolean;
  supersededBy?: { priceId: string; existingSubscribers: ExistingSubscribers };
};

/** One community's catalog (the ledger is partitioned by community). */
export type Catalog = {
  community?: Community;
  tiers: Record<string, Tier>;
  /** rank → tierId; ranks are unique. */
  tierByRank: Record<number, string>;
  groups: Record<string, Group>;
  events: Record<string, CommunityEvent>;
  prices: Record<string, Price>;
  priceIdByStripePriceId: Record<string, string>;
  /** Stripe product → our product, so a price we never saw (grandfathered, made elsewhere) still maps. */
  productByStripeProductId: Record<string, ProductRef>;
};

export function emptyCatalog(): Catalog {
  return {
    tiers: {},
    tierByRank: {},
    groups: {},
    events: {},
    prices: {},
    priceIdByStripePriceId: {},
    productByStripeProductId: {},
  };
}

function withProduct(
  catalog: Catalog,
  stripeProductId: string | undefined,
  kind: ProductKind,
  id: string,
): Catalog {
  if (!stripeProductId) return catalog;
  return {
    ...catalog,
    productByStripeProductId: { ...catalog.productByStripeProductId, [stripeProductId]: { kind, id } },
  };
}

export function evolveCatalog(catalog: Catalog, event: CatalogEvent): Catalog {
  switch (event.type) {
    case 'CommunityCreated': {
      const { createdAt, ...d } = event.data;
      return { ...catalog, community: { ...d, paidOnlySince: d.paidOnly ? createdAt : undefined } };
    }
    case 'CommunitySettingsChanged': {
      if (!catalog.community) return catalog;
      const { name, pastDueGraceDays } = event.data;
      return {
        ...catalog,
        community: {
          ...catalog.community,
          name: name ?? catalog.community.name,
          pastDueGraceDays: pastDueGraceDays ?? catalog.community.pastDueGraceDays,
        },
      };
    }
    case 'StripeAccountLinked':
      if (!catalog.community) return catalog;
      return { ...catalog, community: { ...catalog.community, stripeAccountId: event.data.stripeAccountId } };
    case 'PaidOnlySet': {
      if (!catalog.community) return catalog;
      const { paidOnly, freeMembersUntil, at } = event.data;
      return {
        ...catalog,
        community: {
          ...catalog.community,
          paidOnly,
          paidOnlySince: paidOnly ? at : undefined,
          freeMembersUntil: paidOnly ? freeMembersUntil : undefined,
        },
      };
    }
    case 'TierDefined': {
      const { communityId: _, ...tier } = event.data;
      const next = {
        ...catalog,
        tiers: { ...catalog.tiers, [tier.tierId]: tier },
        tierByRank: { ...catalog.tierByRank, [tier.rank]: tier.tierId },
      };
      return withProduct(next, tier.stripeProductId, 'TIER', tier.tierId);
    }
    case 'GroupDefined': {
      const { communityId: _, ...group } = event.data;
      const next = { ...catalog, groups: { ...catalog.groups, [group.groupId]: group } };
      return withProduct(next, group.stripeProductId, 'GROUP', group.groupId);
    }
    case 'EventDefined': {
      const { communityId: _, ...ev } = event.data;
      const next = { ...catalog, events: { ...catalog.events, [ev.eventId]: ev } };
      return withProduct(next, ev.stripeProductId, 'EVENT', ev.eventId);
    }
    case 'PriceAdded': {
      const { communityId: _, ...p } = event.data;
      const next = {
        ...catalog,
        prices: { ...catalog.prices, [p.priceId]: { ...p, active: true } },
        priceIdByStripePriceId: { ...catalog.priceIdByStripePriceId, [p.stripePriceId]: p.priceId },
      };
      return withProduct(next, p.stripeProductId, p.product.kind, p.product.id);
    }
    case 'PriceSuperseded': {
      const old = catalog.prices[event.data.priceId];
      if (!old) return catalog;
      const { byPriceId, existingSubscribers } = event.data;
      // The old price stays in every index: grandfathered subscriptions keep resolving to their product.
      const price: Price = {
        ...old,
        active: false,
        supersededBy: { priceId: byPriceId, existingSubscribers },
      };
      return { ...catalog, prices: { ...catalog.prices, [price.priceId]: price } };
    }
    case 'MemberJoined':
    case 'ComplimentaryAccessGranted':
    case 'ComplimentaryAccessRevoked':
      return catalog;
  }
}

/** Our price for a Stripe price id; falls back to nothing (callers then try the Stripe product). */
export function priceByStripePriceId(catalog: Catalog, stripePriceId: string): Price | undefined {
  const id = catalog.priceIdByStripePriceId[stripePriceId];
  return id === undefined ? undefined : catalog.prices[id];
}

/** The product a Stripe price or product stands for: by price id first, then by product id. */
export function productForStripe(
  catalog: Catalog,
  stripePriceId: string | undefined,
  stripeProductId: string | undefined,
): ProductRef | undefined {
  const price = stripePriceId === undefined ? undefined : priceByStripePriceId(catalog, stripePriceId);
  if (price) return price.product;
  return stripeProductId === undefined ? undefined : catalog.productByStripeProductId[stripeProductId];
}

/** Tiers from the lowest rank to the highest. */
export function tiersByRank(catalog: Catalog): Tier[] {
  return Object.values(catalog.tiers).sort((a, b) => a.rank - b.rank);
}

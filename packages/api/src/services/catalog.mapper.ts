import type { Catalog, Price as DomainPrice } from '@gatehouse/domain';
import { BillingFrequency, Region } from '../graphql/enums';
import type { Community, Event, Group, Price, Tier } from '../graphql/types';

// Catalog read model → GraphQL shapes. Prices carry what their field resolvers need.

export function toPrice(communityId: string, p: DomainPrice): Price {
  return {
    id: p.priceId,
    stripePriceId: p.stripePriceId,
    amount: p.amount,
    currency: p.currency,
    frequency: p.frequency as BillingFrequency,
    installments: p.installments ?? null,
    trialDays: p.trialDays ?? null,
    active: p.active,
    communityId,
    productKind: p.product.kind,
    productId: p.product.id,
    supersededById: p.supersededBy?.priceId ?? null,
  } as Price;
}

function pricesOf(
  communityId: string,
  catalog: Catalog,
  kind: 'TIER' | 'GROUP' | 'EVENT',
  id: string,
): Price[] {
  return Object.values(catalog.prices)
    .filter((p) => p.product.kind === kind && p.product.id === id)
    .sort((a, b) => a.priceId.localeCompare(b.priceId))
    .map((p) => toPrice(communityId, p));
}

export function toGroup(communityId: string, catalog: Catalog, groupId: string): Group {
  const g = catalog.groups[groupId];
  return { id: g.groupId, name: g.name, prices: pricesOf(communityId, catalog, 'GROUP', g.groupId) };
}

export function toTier(communityId: string, catalog: Catalog, tierId: string): Tier {
  const t = catalog.tiers[tierId];
  return {
    id: t.tierId,
    name: t.name,
    rank: t.rank,
    groups: t.groupIds.filter((id) => catalog.groups[id]).map((id) => toGroup(communityId, catalog, id)),
    prices: pricesOf(communityId, catalog, 'TIER', t.tierId),
  };
}

export function toEvent(communityId: string, catalog: Catalog, eventId: string): Event {
  const e = catalog.events[eventId];
  return {
    id: e.eventId,
    name: e.name,
    startsAt: new Date(e.startsAt),
    endsAt: new Date(e.endsAt),
    capacity: e.capacity ?? null,
    prices: pricesOf(communityId, catalog, 'EVENT', e.eventId),
  };
}

export function toCommunity(catalog: Catalog): Community | null {
  const c = catalog.community;
  if (!c) return null;
  const id = c.communityId;
  return {
    id,
    name: c.name,
    region: c.region.toUpperCase() as Region,
    stripeAccountId: c.stripeAccountId ?? null,
    paidOnly: c.paidOnly,
    freeMembersUntil: c.freeMembersUntil !== undefined ? new Date(c.freeMembersUntil) : null,
    pastDueGraceDays: c.pastDueGraceDays,
    tiers: Object.values(catalog.tiers)
      .sort((a, b) => a.rank - b.rank)
      .map((t) => toTier(id, catalog, t.tierId)),
    groups: Object.values(catalog.groups)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((g) => toGroup(id, catalog, g.groupId)),
    events: Object.values(catalog.events)
      .sort((a, b) => a.startsAt - b.startsAt)
      .map((e) => toEvent(id, catalog, e.eventId)),
  };
}

import type { ProductRef, ResourceRef } from '../catalog/catalog.events';
import type { Catalog, Price } from '../catalog/catalog.evolve';
import { trialDaysFor, type MemberCommerceView } from '../commerce/checkout.decide';
import type { EpochMs } from '../time';
import { isSubscriptionPrice } from './tier-change';

export type Upsell = {
  product: ProductRef;
  price: Price;
  /** Only when the member has not had a trial of this product. */
  trialDays?: number;
  /** A move of the member's live tier subscription (previewable) rather than a new purchase. */
  tierUpgrade: boolean;
};

export type UpsellMember = Pick<MemberCommerceView, 'trialedProducts'> & {
  /** Rank of the tier the member's live subscription grants, if any. */
  tierRank?: number;
  /** Currency of the live tier subscription: a move keeps it. */
  currency?: string;
  /** Resources the member can open now. */
  access: ResourceRef[];
};

const holds = (member: UpsellMember, r: ResourceRef) =>
  member.access.some((a) => a.kind === r.kind && a.id === r.id);

/**
 * What to offer a member: tiers above theirs (as a move of their subscription when they have one),
 * then the groups and the events still to come that they cannot open, each with its active prices.
 */
export function selectUpsells(catalog: Catalog, member: UpsellMember, at: EpochMs): Upsell[] {
  const sell = (prices: Price[], product: ProductRef, tierUpgrade: boolean): Upsell[] =>
    prices
      .filter((p) => p.active && p.product.kind === product.kind && p.product.id === product.id)
      .sort((a, b) => a.amount - b.amount || a.priceId.localeCompare(b.priceId))
      .map((price) => {
        const trialDays = tierUpgrade ? undefined : trialDaysFor(price, member);
        return { product, price, ...(trialDays !== undefined && { trialDays }), tierUpgrade };
      });
  const prices = Object.values(catalog.prices);
  const out: Upsell[] = [];
  const subscribed = member.tierRank !== undefined;
  for (const tier of Object.values(catalog.tiers).sort((a, b) => a.rank - b.rank)) {
    if (subscribed && tier.rank <= (member.tierRank as number)) continue;
    const product: ProductRef = { kind: 'TIER', id: tier.tierId };
    // A member with a tier subscription moves it; the move keeps its currency.
    const candidates = subscribed
      ? prices.filter(
          (p) => isSubscriptionPrice(p) && (member.currency === undefined || p.currency === member.currency),
        )
      : prices;
    out.push(...sell(candidates, product, subscribed));
  }
  for (const group of Object.values(catalog.groups).sort(
    (a, b) => a.name.localeCompare(b.name) || a.groupId.localeCompare(b.groupId),
  )) {
    if (holds(member, { kind: 'GROUP', id: group.groupId })) continue;
    out.push(...sell(prices, { kind: 'GROUP', id: group.groupId }, false));
  }
  for (const event of Object.values(catalog.events).sort(
    (a, b) => a.startsAt - b.startsAt || a.eventId.localeCompare(b.eventId),
  )) {
    if (event.endsAt <= at || holds(member, { kind: 'EVENT', id: event.eventId })) continue;
    out.push(...sell(prices, { kind: 'EVENT', id: event.eventId }, false));
  }
  return out;
}

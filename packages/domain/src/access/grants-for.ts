import { isMigrationFactId } from '../migration/migration.events';
import type { ProductRef, ResourceRef } from '../catalog/catalog.events';
import {
  priceByStripePriceId,
  productForStripe,
  type Catalog,
  type Community,
} from '../catalog/catalog.evolve';
import type { MemberState, Purchase, SubscriptionState } from '../membership/membership.evolve';
import { DAY_MS, HOUR_MS, type EpochMs } from '../time';
import { compareText, endOrInfinity, resourceKey, type AccessGrant, type AccessSource } from './access-grant';

/**
 * Stripe closes a renewal invoice about an hour after the period ends and the payment lands after
 * that: access runs this long past the period end so members are not locked out at each renewal.
 * A missed webhook still fails closed, just two hours later.
 */
export const RENEWAL_ALLOWANCE_MS = 2 * HOUR_MS;
/** India-issued cards need a pre-debit notice 24 h before each charge, so renewals land up to a day late. */
export const INDIA_RENEWAL_ALLOWANCE_MS = 26 * HOUR_MS;

export function renewalAllowanceMs(community: Community): number {
  return community.region === 'in' ? INDIA_RENEWAL_ALLOWANCE_MS : RENEWAL_ALLOWANCE_MS;
}

/** What a product opens: a tier opens the community and its groups; a group or an event opens itself. */
export function resourcesFor(product: ProductRef, catalog: Catalog): ResourceRef[] {
  if (product.kind === 'TIER') {
    const groupIds = catalog.tiers[product.id]?.groupIds ?? [];
    return [{ kind: 'COMMUNITY' }, ...groupIds.map((id) => ({ kind: 'GROUP' as const, id }))];
  }
  return [{ kind: product.kind, id: product.id }];
}

type Window = { from: EpochMs; until: EpochMs | null; suspended: boolean; causedBy: string };

/** The access window of one subscription from its latest snapshot; null when it never granted access. */
export function subscriptionWindow(sub: SubscriptionState, community: Community): Window | null {
  const s = sub.latest;
  const from = sub.startedAt ?? s.currentPeriodStart;
  const grace = community.pastDueGraceDays * DAY_MS;
  const pastDueSince = sub.firstSeen[`past_due@${s.currentPeriodEnd}`];
  const since = sub.firstSeen[`${s.status}@${s.currentPeriodEnd}`] ?? s.observedAt;
  const graceEnd = pastDueSince === undefined ? Infinity : pastDueSince + grace;
  let until: EpochMs;
  let suspended = false;
  switch (s.status) {
    case 'trialing':
    case 'active':
      // With cancel_at_period_end no renewal is coming, so no allowance past the period.
      until = s.cancelAtPeriodEnd ? s.currentPeriodEnd : s.currentPeriodEnd + renewalAllowanceMs(community);
      if (s.cancelAt !== undefined) until = Math.min(until, s.cancelAt);
      break;
    case 'past_due':
      until = Math.min(graceEnd, s.currentPeriodEnd + renewalAllowanceMs(community));
      suspended = true;
      break;
    case 'unpaid':
    case 'paused':
      until = Math.min(since, graceEnd);
      suspended = true;
      break;
    case 'canceled':
      until = Math.min(s.endedAt ?? s.observedAt, graceEnd);
      break;
    case 'incomplete':
    case 'incomplete_expired':
      if (sub.startedAt === undefined) return null;
      until = Math.min(since, graceEnd);
      break;
  }
  return until > from ? { from, until, suspended, causedBy: s.eventId } : null;
}

function installmentWindow(
  state: MemberState,
  sub: SubscriptionState,
  total: number,
  window: Window,
): Window {
  const paid = Object.values(state.paidInvoices[sub.latest.subscriptionId] ?? {}).sort(
    (a, b) => a.paidAt - b.paidAt || (a.eventId < b.eventId ? -1 : 1),
  );
  if (paid.length < total) return window;
  // All installments paid: the purchase is complete, so the closing deletion does not revoke.
  return { ...window, until: null, suspended: false, causedBy: paid[total - 1].eventId };
}

/**
 * Splits a paid purchase around disputes: open → suspended from opening; lost → ends there; won →
 * resumes. A window that ends names what ended it (the refund, the dispute), as a subscription's
 * names its latest event: that is what the access history gives as the cause of the loss.
 */
function purchaseWindows(state: MemberState, purchase: Purchase & { paidAt: EpochMs }): Window[] {
  const pi = purchase.paymentIntentId;
  const refund = pi === undefined ? undefined : state.refunds[pi];
  let windows: Window[] = [
    {
      from: purchase.paidAt,
      until: refund?.at ?? null,
      suspended: false,
      causedBy: refund?.eventId ?? purchase.eventId,
    },
  ];
  const disputes = Object.values(state.disputes)
    .filter((d) => pi !== undefined && d.paymentIntentId === pi)
    .sort((a, b) => (a.openedAt ?? a.closed?.at ?? 0) - (b.openedAt ?? b.closed?.at ?? 0));
  for (const d of disputes) {
    const cut = d.openedAt ?? d.closed?.at ?? 0;
    const resume = d.closed?.status === 'won' ? d.closed.at : null;
    // Lost, the dispute's end ends the purchase; open (or won later), its opening suspends it.
    const cutBy = d.closed?.status === 'lost' ? d.closed.eventId : d.eventId;
    windows = windows.flatMap((w) => {
      if (w.until !== null && w.until <= cut) return [w];
      const before: Window[] =
        cut > w.from ? [{ ...w, until: cut, suspended: d.closed === undefined, causedBy: cutBy }] : [];
      const after: Window[] =
        resume !== null && (w.until === null || resume < w.until)
          ? [
              {
                ...w,
                from: Math.max(resume, w.from),
                // A refund after the dispute still ends it; otherwise the win is why access is back.
                causedBy: w.until === null ? (d.closed?.eventId ?? w.causedBy) : w.causedBy,
              },
            ]
          : [];
      return [...before, ...after];
    });
  }
  return windows;
}

function spread(catalog: Catalog, product: ProductRef, source: AccessSource, w: Window): AccessGrant[] {
  return resourcesFor(product, catalog).flatMap((resource) => {
    // An event's access ends with the event.
    const eventEnd = resource.kind === 'EVENT' ? catalog.events[resource.id ?? '']?.endsAt : undefined;
    const until = eventEnd === undefined ? w.until : Math.min(w.until ?? Infinity, eventEnd);
    if (until !== null && until <= w.from) return [];
    return [
      {
        resource,
        source,
        validFrom: w.from,
        validUntil: until,
        causedBy: w.causedBy,
        suspended: w.suspended,
      },
    ];
  });
}

/** Every access interval a member holds in one community, in a stable order. */
export function grantsFor(state: MemberState, catalog: Catalog, community: Community): AccessGrant[] {
  const grants: AccessGrant[] = [];
  for (const sub of Object.values(state.subscriptions)) {
    const product = productForStripe(catalog, sub.latest.priceId, sub.latest.productId);
    let window = subscriptionWindow(sub, community);
    if (!product || !window) continue;
    const price = priceByStripePriceId(catalog, sub.latest.priceId);
    const plan = price?.frequency === 'INSTALLMENTS' && price.installments !== undefined;
    if (plan) window = installmentWindow(state, sub, price.installments ?? Infinity, window);
    // Access known only from an import keeps the MIGRATION source until Stripe itself speaks of it.
    const source = plan
      ? 'INSTALLMENT_PLAN'
      : isMigrationFactId(sub.latest.eventId)
        ? 'MIGRATION'
        : 'SUBSCRIPTION';
    grants.push(...spread(catalog, product, source, window));
  }
  for (const purchase of Object.values(state.purchases)) {
    if (purchase.paidAt === undefined) continue;
    const product = productForStripe(catalog, purchase.stripePriceId, purchase.stripeProductId);
    if (!product) continue;
    for (const w of purchaseWindows(state, { ...purchase, paidAt: purchase.paidAt })) {
      grants.push(...spread(catalog, product, 'ONE_TIME', w));
    }
  }
  for (const g of state.complimentary) {
    const until = Math.min(g.until ?? Infinity, g.revokedAt ?? Infinity);
    if (until <= g.from) continue;
    grants.push({
      resource: g.resource,
      source: 'COMPLIMENTARY',
      validFrom: g.from,
      validUntil: until === Infinity ? null : until,
      causedBy: g.eventId,
      suspended: false,
    });
  }
  if (state.freeMembership) {
    const { joinedAt, eventId } = state.freeMembership;
    // In a paid-only community free members keep access only until the announced date.
    const until = community.paidOnly
      ? (community.freeMembersUntil ?? community.paidOnlySince ?? joinedAt)
      : null;
    if (until === null || until > joinedAt) {
      grants.push({
        resource: { kind: 'COMMUNITY' },
        source: 'FREE_MEMBERSHIP',
        validFrom: joinedAt,
        validUntil: until,
        causedBy: eventId,
        suspended: false,
      });
    }
  }
  return grants.sort(
    (a, b) =>
      compareText(resourceKey(a.resource), resourceKey(b.resource)) ||
      a.validFrom - b.validFrom ||
      endOrInfinity(a.validUntil) - endOrInfinity(b.validUntil) ||
      compareText(a.source, b.source) ||
      compareText(a.causedBy, b.causedBy),
  );
}

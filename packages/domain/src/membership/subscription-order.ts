import type { SubscriptionSnapshot, SubscriptionStatus } from './membership.events';

/** Lowest to highest: on a tie (same second, same period end) the later entry wins. */
export const STATUS_PRECEDENCE: readonly SubscriptionStatus[] = [
  'incomplete',
  'trialing',
  'active',
  'paused',
  'past_due',
  'unpaid',
  'incomplete_expired',
  'canceled',
];

const TERMINAL: ReadonlySet<SubscriptionStatus> = new Set(['canceled', 'incomplete_expired']);

export function isTerminal(status: SubscriptionStatus): boolean {
  return TERMINAL.has(status);
}

/**
 * Total order of snapshots of one subscription; the fold keeps the greatest, so the result does not
 * depend on delivery order or duplicates. Compared in turn:
 * 1. terminal beats non-terminal (Stripe never revives a canceled or expired subscription);
 * 2. later `observedAt` (the Stripe event's `created`) — Stripe renders each event from the object at
 *    that moment, so a newer event is the newer truth, even when an interval change shortened the period;
 * 3. within the same second, later `currentPeriodEnd` (a renewal beats the period it replaces);
 * 4. then an update beats the creation (a change made in the second the subscription began, such as
 *    an installment plan's `cancel_at`, comes after it);
 * 5. then status precedence (`STATUS_PRECEDENCE`);
 * 6. then the event id, so twin events (two ids, one change) resolve the same way every time.
 */
export function compareSnapshots(a: SubscriptionSnapshot, b: SubscriptionSnapshot): number {
  return (
    Number(isTerminal(a.status)) - Number(isTerminal(b.status)) ||
    a.observedAt - b.observedAt ||
    a.currentPeriodEnd - b.currentPeriodEnd ||
    Number(a.update === true) - Number(b.update === true) ||
    STATUS_PRECEDENCE.indexOf(a.status) - STATUS_PRECEDENCE.indexOf(b.status) ||
    (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0)
  );
}

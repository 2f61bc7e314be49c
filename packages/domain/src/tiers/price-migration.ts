import type { Price } from '../catalog/catalog.evolve';
import type { SubscriptionSnapshot, SubscriptionStatus } from '../membership/membership.events';
import type { ChangeTiming } from '../proration/proration';
import type { EpochMs } from '../time';

export type MigrationStep = {
  memberId: string;
  subscription: SubscriptionSnapshot;
  toPrice: Price;
  timing: ChangeTiming;
  /** When the subscriber starts paying the new price: now, or their next renewal. */
  effectiveAt: EpochMs;
};

export type MigrationPlan = { steps: MigrationStep[]; skipped: { memberId: string; reason: string }[] };

const LIVE: ReadonlySet<SubscriptionStatus> = new Set(['active', 'trialing', 'past_due']);

/**
 * Which subscribers move from a price to its replacement (`priceMap`: Stripe price id → new price),
 * and when. Members already scheduled by an earlier run are left out, so a rerun resumes.
 */
export function planPriceMigration(input: {
  subscribers: { memberId: string; subscription: SubscriptionSnapshot }[];
  priceMap: ReadonlyMap<string, Price>;
  timing: ChangeTiming;
  at: EpochMs;
  alreadyScheduled: ReadonlySet<string>;
}): MigrationPlan {
  const plan: MigrationPlan = { steps: [], skipped: [] };
  const ordered = [...input.subscribers].sort(
    (a, b) =>
      a.memberId.localeCompare(b.memberId) ||
      a.subscription.subscriptionId.localeCompare(b.subscription.subscriptionId),
  );
  for (const { memberId, subscription: s } of ordered) {
    const toPrice = input.priceMap.get(s.priceId);
    if (!toPrice) continue;
    if (input.alreadyScheduled.has(s.subscriptionId)) continue;
    if (!LIVE.has(s.status)) {
      plan.skipped.push({ memberId, reason: `subscription ${s.subscriptionId} is ${s.status}` });
      continue;
    }
    // A subscription that ends at its period end has no renewal to move.
    if (s.cancelAtPeriodEnd && input.timing === 'PERIOD_END') {
      plan.skipped.push({ memberId, reason: `subscription ${s.subscriptionId} ends at its period end` });
      continue;
    }
    const effectiveAt = input.timing === 'IMMEDIATE' ? input.at : s.currentPeriodEnd;
    plan.steps.push({ memberId, subscription: s, toPrice, timing: input.timing, effectiveAt });
  }
  return plan;
}

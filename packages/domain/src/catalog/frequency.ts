import type { IntervalUnit } from '../time';
import type { BillingFrequency } from './catalog.events';

export type StripeRecurring = { interval: Exclude<IntervalUnit, 'day'>; interval_count: number };

const RECURRING: Record<Exclude<BillingFrequency, 'ONE_TIME'>, StripeRecurring> = {
  WEEKLY: { interval: 'week', interval_count: 1 },
  MONTHLY: { interval: 'month', interval_count: 1 },
  QUARTERLY: { interval: 'month', interval_count: 3 },
  ANNUAL: { interval: 'year', interval_count: 1 },
  // An installment plan is a monthly subscription that a schedule ends after N invoices.
  INSTALLMENTS: { interval: 'month', interval_count: 1 },
};

/** Stripe's `recurring` for a frequency; `null` for a one-time price (Checkout `mode=payment`). */
export function stripeRecurringFor(frequency: BillingFrequency): StripeRecurring | null {
  return frequency === 'ONE_TIME' ? null : RECURRING[frequency];
}

/** The frequency a Stripe recurring price stands for, or null when Gatehouse has no name for it. */
export function frequencyForRecurring(recurring: StripeRecurring | null): BillingFrequency | null {
  if (recurring === null) return 'ONE_TIME';
  const { interval, interval_count: n } = recurring;
  if (interval === 'week' && n === 1) return 'WEEKLY';
  if (interval === 'month' && n === 1) return 'MONTHLY';
  if (interval === 'month' && n === 3) return 'QUARTERLY';
  if (interval === 'year' && n === 1) return 'ANNUAL';
  return null;
}

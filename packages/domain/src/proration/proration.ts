import { FieldChecks } from '../errors';
import { addInterval, formatDay, SECOND_MS, type EpochMs, type IntervalUnit } from '../time';

export type ProrationBehavior = 'create_prorations' | 'always_invoice' | 'none';

export type PlanSide = {
  /** Unit amount in minor units. */
  amount: number;
  quantity: number;
  interval: IntervalUnit;
  intervalCount: number;
  /** Shown in line descriptions, e.g. the tier name. */
  name: string;
};

export type ProrationRequest = {
  from: PlanSide;
  to: PlanSide;
  currency: string;
  periodStart: EpochMs;
  periodEnd: EpochMs;
  prorationDate: EpochMs;
  behavior: ProrationBehavior;
};

export type ProrationLine = {
  description: string;
  /** Negative for a credit. */
  amount: number;
  quantity: number;
  proration: boolean;
  periodStart: EpochMs;
  periodEnd: EpochMs;
};

export type ProrationPreview = {
  lines: ProrationLine[];
  /** Sum of credit lines (≤ 0). */
  credit: number;
  /** Sum of charge lines (≥ 0). */
  charge: number;
  net: number;
  /** Charged at once; a negative net is never charged (Stripe keeps it as customer credit balance). */
  dueNow: number;
  currency: string;
  /** An interval change restarts the billing cycle at the proration date. */
  intervalChange: boolean;
  nextPeriod: { start: EpochMs; end: EpochMs };
};

/**
 * `round(amount × quantity × remaining / period)` to the minor unit, halves away from zero, in exact
 * integer arithmetic. Stripe documents per-second proration with each line rounded on its own but
 * not its tie rule; a tie needs an exact half cent, and the stripe package compares every preview
 * with the real invoice lines, so a disagreement would surface as a reported mismatch.
 */
export function prorate(
  amount: number,
  quantity: number,
  remainingSeconds: number,
  periodSeconds: number,
): number {
  const num = BigInt(Math.abs(amount)) * BigInt(quantity) * BigInt(remainingSeconds);
  const den = BigInt(periodSeconds);
  const rounded = Number((2n * num + den) / (2n * den));
  return amount < 0 ? -rounded : rounded;
}

const isInt = (n: number): boolean => Number.isInteger(n);
const label = (p: PlanSide): string => (p.quantity === 1 ? p.name : `${p.quantity} × ${p.name}`);

/** Share of the current period left at `prorationDate`, in whole seconds: (end − date) / (end − start). */
export function prorationFraction(periodStart: EpochMs, periodEnd: EpochMs, prorationDate: EpochMs): number {
  const sec = (ms: EpochMs) => Math.floor(ms / SECOND_MS);
  return (sec(periodEnd) - sec(prorationDate)) / (sec(periodEnd) - sec(periodStart));
}

function validate(r: ProrationRequest): void {
  const checks = new FieldChecks();
  for (const [side, p] of [['from', r.from] as const, ['to', r.to] as const]) {
    checks
      .check(isInt(p.amount) && p.amount >= 0, `${side}.amount`, 'must be a whole number, at least 0')
      .check(isInt(p.quantity) && p.quantity >= 1, `${side}.quantity`, 'must be at least 1')
      .check(isInt(p.intervalCount) && p.intervalCount >= 1, `${side}.intervalCount`, 'must be at least 1');
  }
  checks
    .check(/^[a-z]{3}$/i.test(r.currency), 'currency', 'must be 3 letters')
    .check(r.periodEnd - r.periodStart >= SECOND_MS, 'periodEnd', 'must be after periodStart')
    .check(
      r.prorationDate >= r.periodStart && r.prorationDate <= r.periodEnd,
      'prorationDate',
      'must fall within the current period',
    )
    .throwIfAny();
}

/**
 * Stripe's proration for changing a subscription item's price (and quantity) at `prorationDate`.
 * Times are whole seconds at Stripe, so the ms inputs are floored to seconds before the arithmetic.
 */
export function previewProration(r: ProrationRequest): ProrationPreview {
  validate(r);
  const sec = (ms: EpochMs) => Math.floor(ms / SECOND_MS);
  const remaining = sec(r.periodEnd) - sec(r.prorationDate);
  const period = sec(r.periodEnd) - sec(r.periodStart);
  const intervalChange = r.from.interval !== r.to.interval || r.from.intervalCount !== r.to.intervalCount;
  const day = formatDay(r.prorationDate);
  const lines: ProrationLine[] = [];

  if (r.behavior !== 'none') {
    const credit = prorate(r.from.amount, r.from.quantity, remaining, period);
    if (credit !== 0) {
      lines.push({
        description: `Unused time on ${label(r.from)} after ${day}`,
        amount: -credit,
        quantity: r.from.quantity,
        proration: true,
        periodStart: r.prorationDate,
        periodEnd: r.periodEnd,
      });
    }
  }
  if (intervalChange) {
    // A new interval restarts the cycle: the full new price is charged now, anchored at the change.
    const end = addInterval(r.prorationDate, r.to.interval, r.to.intervalCount);
    lines.push({
      description: label(r.to),
      amount: r.to.amount * r.to.quantity,
      quantity: r.to.quantity,
      proration: false,
      periodStart: r.prorationDate,
      periodEnd: end,
    });
  } else if (r.behavior !== 'none') {
    const debit = prorate(r.to.amount, r.to.quantity, remaining, period);
    if (debit !== 0) {
      lines.push({
        description: `Remaining time on ${label(r.to)} after ${day}`,
        amount: debit,
        quantity: r.to.quantity,
        proration: true,
        periodStart: r.prorationDate,
        periodEnd: r.periodEnd,
      });
    }
  }

  const credit = lines.filter((l) => l.amount < 0).reduce((s, l) => s + l.amount, 0);
  const charge = lines.filter((l) => l.amount > 0).reduce((s, l) => s + l.amount, 0);
  const net = credit + charge;
  // An interval change invoices at once whatever the behavior; otherwise only always_invoice does.
  const invoicedNow = intervalChange || r.behavior === 'always_invoice';
  return {
    lines,
    credit,
    charge,
    net,
    dueNow: invoicedNow ? Math.max(net, 0) : 0,
    currency: r.currency.toLowerCase(),
    intervalChange,
    nextPeriod: intervalChange
      ? { start: r.prorationDate, end: addInterval(r.prorationDate, r.to.interval, r.to.intervalCount) }
      : { start: r.periodStart, end: r.periodEnd },
  };
}

export type ChangeTiming = 'IMMEDIATE' | 'PERIOD_END';
export type TierChangePolicy = { upgrade: ChangeTiming; downgrade: ChangeTiming };

/** Upgrades pay the difference now; downgrades wait for the period the member already paid for. */
export const DEFAULT_TIER_CHANGE_POLICY: TierChangePolicy = { upgrade: 'IMMEDIATE', downgrade: 'PERIOD_END' };

/** A higher rank is a higher tier. A change within the same rank (e.g. monthly → annual) is immediate. */
export function tierChangeTiming(
  fromRank: number,
  toRank: number,
  policy: TierChangePolicy = DEFAULT_TIER_CHANGE_POLICY,
): ChangeTiming {
  if (toRank > fromRank) return policy.upgrade;
  if (toRank < fromRank) return policy.downgrade;
  return 'IMMEDIATE';
}

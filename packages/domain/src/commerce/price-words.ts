import type { BillingFrequency } from '../catalog/catalog.events';

/** Minor units → a formatted amount in the currency's own digits (`€12.00`, `¥1,200`). */
export function formatMoney(amount: number, currency: string, locale = 'en'): string {
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency: currency.toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** digits);
}

const EVERY: Record<Exclude<BillingFrequency, 'ONE_TIME' | 'INSTALLMENTS'>, string> = {
  WEEKLY: 'per week',
  MONTHLY: 'per month',
  QUARTERLY: 'every 3 months',
  ANNUAL: 'per year',
};

/** A price in words, as a member reads it on an offer: "€12.00 per month", "3 payments of €40.00". */
export function describePrice(price: {
  amount: number;
  currency: string;
  frequency: BillingFrequency;
  installments?: number;
}): string {
  const money = formatMoney(price.amount, price.currency);
  switch (price.frequency) {
    case 'ONE_TIME':
      return `one payment of ${money}`;
    case 'INSTALLMENTS':
      return `${price.installments ?? 0} payments of ${money}`;
    default:
      return `${money} ${EVERY[price.frequency]}`;
  }
}

export function describeTrial(days: number | undefined): string | null {
  if (!days) return null;
  return `${days}-day free trial`;
}

/** A coupon in words: "20% off for 3 months", "€5.00 off once", "10% off forever". */
export function describeDiscount(promo: {
  percentOff?: number;
  amountOff?: number;
  currency?: string;
  duration: 'ONCE' | 'REPEATING' | 'FOREVER';
  durationInMonths?: number;
}): string {
  const off =
    promo.percentOff !== undefined
      ? `${promo.percentOff}% off`
      : `${formatMoney(promo.amountOff ?? 0, promo.currency ?? 'usd')} off`;
  if (promo.duration === 'ONCE') return `${off} once`;
  if (promo.duration === 'FOREVER') return `${off} forever`;
  const months = promo.durationInMonths ?? 1;
  return `${off} for ${months} ${months === 1 ? 'month' : 'months'}`;
}

import type { EpochMs } from '@gatehouse/domain';
import { bool, expectObject, idOf, isRecord, listData, ms, num, record, str } from './stripe-fields';

export type StripeDiscountView = {
  id: string | null;
  couponId: string | null;
  promotionCodeId: string | null;
};

export type StripeInvoiceLineView = {
  id: string | null;
  amount: number;
  priceId: string | null;
  proration: boolean;
  periodStart: EpochMs | null;
  periodEnd: EpochMs | null;
  description: string;
  quantity: number;
};

export type StripeInvoiceView = {
  id: string;
  customerId: string | null;
  subscriptionId: string | null;
  billingReason: string | null;
  status: string | null;
  paid: boolean;
  amountPaid: number;
  amountDue: number;
  currency: string;
  periodStart: EpochMs | null;
  periodEnd: EpochMs | null;
  lines: StripeInvoiceLineView[];
  discounts: StripeDiscountView[];
};

/** A discount given as an id (`di_…`) or as an expanded object. */
export function discountOf(value: unknown): StripeDiscountView {
  if (!isRecord(value)) return { id: idOf(value), couponId: null, promotionCodeId: null };
  return { id: str(value.id), couponId: idOf(value.coupon), promotionCodeId: idOf(value.promotion_code) };
}

export function translateInvoiceLine(value: unknown): StripeInvoiceLineView {
  const line = record(value);
  const parent = record(line.parent);
  const pricing = record(line.pricing);
  const period = record(line.period);
  // basil moved the flag under the line's parent and the price under `pricing.price_details`.
  const proration =
    bool(line.proration) ??
    bool(record(parent.subscription_item_details).proration) ??
    bool(record(parent.invoice_item_details).proration) ??
    false;
  return {
    id: str(line.id),
    amount: num(line.amount) ?? 0,
    priceId: idOf(line.price) ?? idOf(record(pricing.price_details).price) ?? idOf(line.plan),
    proration,
    periodStart: ms(period.start),
    periodEnd: ms(period.end),
    description: str(line.description) ?? '',
    quantity: num(line.quantity) ?? 1,
  };
}

export function translateInvoice(value: unknown): StripeInvoiceView {
  const inv = expectObject(value, 'invoice');
  const parent = record(inv.parent);
  const status = str(inv.status);
  const discounts = [
    ...(inv.discount ? [inv.discount] : []),
    ...(Array.isArray(inv.discounts) ? inv.discounts : []),
  ].map(discountOf);
  // The singular `discount` is repeated (by id) in `discounts[]` before basil: keep each once.
  const unique = discounts.filter((d, i) => d.id === null || discounts.findIndex((o) => o.id === d.id) === i);
  return {
    id: inv.id as string,
    customerId: idOf(inv.customer),
    subscriptionId: idOf(inv.subscription) ?? idOf(record(parent.subscription_details).subscription),
    billingReason: str(inv.billing_reason),
    status,
    // basil dropped `paid`; the status says the same.
    paid: bool(inv.paid) ?? status === 'paid',
    amountPaid: num(inv.amount_paid) ?? 0,
    amountDue: num(inv.amount_due) ?? 0,
    currency: str(inv.currency) ?? '',
    periodStart: ms(inv.period_start),
    periodEnd: ms(inv.period_end),
    lines: listData(inv.lines).map(translateInvoiceLine),
    discounts: unique,
  };
}

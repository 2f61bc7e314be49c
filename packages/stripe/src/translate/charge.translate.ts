import { bool, expectObject, idOf, num, str } from './stripe-fields';

export type StripeChargeView = {
  id: string;
  amount: number;
  amountRefunded: number;
  refunded: boolean;
  currency: string | null;
  customerId: string | null;
  paymentIntentId: string | null;
  /** Absent since basil (a charge no longer names its invoice). */
  invoiceId: string | null;
};

export type StripeRefundView = {
  id: string;
  amount: number;
  chargeId: string | null;
  paymentIntentId: string | null;
  status: string | null;
};

export function translateCharge(value: unknown): StripeChargeView {
  const ch = expectObject(value, 'charge');
  const amount = num(ch.amount) ?? 0;
  const amountRefunded = num(ch.amount_refunded) ?? 0;
  return {
    id: ch.id as string,
    amount,
    amountRefunded,
    refunded: bool(ch.refunded) ?? (amount > 0 && amountRefunded >= amount),
    currency: str(ch.currency),
    customerId: idOf(ch.customer),
    paymentIntentId: idOf(ch.payment_intent),
    invoiceId: idOf(ch.invoice),
  };
}

export function translateRefund(value: unknown): StripeRefundView {
  const re = expectObject(value, 'refund');
  return {
    id: re.id as string,
    amount: num(re.amount) ?? 0,
    chargeId: idOf(re.charge),
    paymentIntentId: idOf(re.payment_intent),
    status: str(re.status),
  };
}

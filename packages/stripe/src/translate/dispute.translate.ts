import { expectObject, idOf, num, str } from './stripe-fields';

export type StripeDisputeView = {
  id: string;
  status: string | null;
  chargeId: string | null;
  paymentIntentId: string | null;
  amount: number;
  reason: string | null;
};

export function translateDispute(value: unknown): StripeDisputeView {
  const dp = expectObject(value, 'dispute');
  return {
    id: dp.id as string,
    status: str(dp.status),
    chargeId: idOf(dp.charge),
    paymentIntentId: idOf(dp.payment_intent),
    amount: num(dp.amount) ?? 0,
    reason: str(dp.reason),
  };
}

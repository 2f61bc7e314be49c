import { expectObject, idOf, listData, metadataOf, num, record, str } from './stripe-fields';

export type StripeCheckoutSessionView = {
  id: string;
  mode: string | null;
  status: string | null;
  paymentStatus: string | null;
  customerId: string | null;
  customerEmail: string | null;
  subscriptionId: string | null;
  paymentIntentId: string | null;
  invoiceId: string | null;
  clientReferenceId: string | null;
  metadata: Record<string, string>;
  amountTotal: number | null;
  amountDiscount: number;
  currency: string | null;
  discounts: { couponId: string | null; promotionCodeId: string | null }[];
  /** Prices of the line items, when the session was fetched with `line_items` expanded. */
  lineItemPriceIds: string[];
};

export function translateCheckoutSession(value: unknown): StripeCheckoutSessionView {
  const cs = expectObject(value, 'checkout.session');
  return {
    id: cs.id as string,
    mode: str(cs.mode),
    status: str(cs.status),
    paymentStatus: str(cs.payment_status),
    customerId: idOf(cs.customer),
    customerEmail: str(cs.customer_email) ?? str(record(cs.customer_details).email),
    subscriptionId: idOf(cs.subscription),
    paymentIntentId: idOf(cs.payment_intent),
    invoiceId: idOf(cs.invoice),
    clientReferenceId: str(cs.client_reference_id),
    metadata: metadataOf(cs.metadata),
    amountTotal: num(cs.amount_total),
    amountDiscount: num(record(cs.total_details).amount_discount) ?? 0,
    currency: str(cs.currency),
    discounts: listData(cs.discounts).map((d) => ({
      couponId: idOf(d.coupon),
      promotionCodeId: idOf(d.promotion_code),
    })),
    lineItemPriceIds: listData(cs.line_items)
      .map((li) => idOf(li.price))
      .filter((p): p is string => p !== null),
  };
}

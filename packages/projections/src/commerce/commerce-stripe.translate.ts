/**
 * What the commerce read model learns from verbatim Stripe events: promotion codes redeemed,
 * customers of members, trials. Both pre-2025 and `basil` shapes parse; an unexpected shape yields
 * nothing rather than throwing.
 */
export type CommerceStripeReading = {
  kind: 'checkout-completed' | 'checkout-expired' | 'invoice-paid' | 'subscription' | 'other';
  objectId?: string;
  memberId?: string;
  customerId?: string;
  subscriptionId?: string;
  /** Our price id from `gatehouse_price_id` metadata. */
  priceId?: string;
  /** Promotion codes (`promo_…`) the object carries. */
  promotionCodeIds: string[];
  trialEnd?: number;
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const idOf = (v: unknown): string | undefined => str(v) ?? (isObj(v) ? str(v.id) : undefined);
const list = (v: unknown): unknown[] =>
  Array.isArray(v) ? v : isObj(v) && Array.isArray(v.data) ? v.data : [];

export const COMMERCE_STRIPE_TYPES: readonly string[] = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.expired',
  'invoice.paid',
  'invoice.payment_succeeded',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.trial_will_end',
];

/** `promo_…` ids from a discount entry: `{ promotion_code }`, `{ discount: { promotion_code } }`, expanded or not. */
function promotionCodeOf(entry: unknown): string | undefined {
  if (!isObj(entry)) return undefined;
  const direct = idOf(entry.promotion_code);
  if (direct) return direct;
  return isObj(entry.discount) ? idOf(entry.discount.promotion_code) : undefined;
}

function promotionCodes(o: Obj): string[] {
  const found = new Set<string>();
  const add = (entries: unknown[]) => entries.map(promotionCodeOf).forEach((p) => p && found.add(p));
  add(list(o.discounts));
  // Before `basil`: one `discount` object.
  add([o.discount]);
  const breakdown =
    isObj(o.total_details) && isObj(o.total_details.breakdown) ? o.total_details.breakdown : {};
  add(list(breakdown.discounts));
  add(list(o.total_discount_amounts));
  return [...found];
}

function metadata(o: Obj): Obj {
  return isObj(o.metadata) ? o.metadata : {};
}

function invoiceSubscription(o: Obj): string | undefined {
  const parent = isObj(o.parent) ? o.parent : {};
  const details = isObj(parent.subscription_details) ? parent.subscription_details : {};
  return idOf(o.subscription) ?? idOf(details.subscription);
}

export function readCommerceStripeEvent(event: unknown): CommerceStripeReading {
  const none: CommerceStripeReading = { kind: 'other', promotionCodeIds: [] };
  if (!isObj(event) || !isObj(event.data) || !isObj(event.data.object)) return none;
  const type = str(event.type) ?? '';
  const o = event.data.object;
  const md = metadata(o);
  const common = {
    ...(str(o.id) && { objectId: str(o.id) }),
    ...(idOf(o.customer) && { customerId: idOf(o.customer) }),
    ...(str(md.gatehouse_price_id) && { priceId: str(md.gatehouse_price_id) }),
    promotionCodeIds: promotionCodes(o),
  };
  if (type === 'checkout.session.completed' || type === 'checkout.session.async_payment_succeeded') {
    const memberId = str(md.gatehouse_member_id) ?? str(o.client_reference_id);
    return {
      kind: 'checkout-completed',
      ...common,
      ...(memberId && { memberId }),
      ...(idOf(o.subscription) && { subscriptionId: idOf(o.subscription) }),
    };
  }
  if (type === 'checkout.session.expired') return { kind: 'checkout-expired', ...common };
  if (type === 'invoice.paid' || type === 'invoice.payment_succeeded') {
    const sub = invoiceSubscription(o);
    return { kind: 'invoice-paid', ...common, ...(sub && { subscriptionId: sub }) };
  }
  if (type.startsWith('customer.subscription.')) {
    const trialEnd = typeof o.trial_end === 'number' ? o.trial_end * 1000 : undefined;
    return {
      kind: 'subscription',
      ...common,
      ...(str(md.gatehouse_member_id) && { memberId: str(md.gatehouse_member_id) }),
      ...(str(o.id) && { subscriptionId: str(o.id) }),
      ...(trialEnd !== undefined && { trialEnd }),
    };
  }
  return none;
}

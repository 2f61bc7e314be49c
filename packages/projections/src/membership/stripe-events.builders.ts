import type { NewEvent } from '@gatehouse/ledger';

/**
 * Verbatim Stripe event payloads in the `basil` shape (period on the items, invoice subscription under
 * `parent`), trimmed to the fields Gatehouse reads, and their ledger envelopes. Times are epoch ms here
 * and Stripe seconds in the payloads. For tests, demos and the benchmark.
 */
export type StripeEventJson = {
  id: string;
  object: 'event';
  type: string;
  api_version: string;
  created: number;
  account?: string;
  livemode: false;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
};

const API_VERSION = '2025-08-27.basil';
let seq = 0;
const nextId = (prefix: string) =>
  `${prefix}_${(++seq).toString(36).padStart(6, '0')}${Math.random().toString(36).slice(2, 8)}`;
const sec = (ms: number) => Math.floor(ms / 1000);

function event(type: string, at: number, object: Record<string, unknown>, id?: string): StripeEventJson {
  return {
    id: id ?? nextId('evt'),
    object: 'event',
    type,
    api_version: API_VERSION,
    created: sec(at),
    livemode: false,
    data: { object },
  };
}

export type SubscriptionSpec = {
  id: string;
  customer: string;
  status: string;
  price: string;
  product: string;
  periodStart: number;
  periodEnd: number;
  trialEnd?: number;
  cancelAtPeriodEnd?: boolean;
  cancelAt?: number;
  endedAt?: number;
  memberId?: string;
  schedule?: string;
};

export function subscriptionEvent(
  type: 'customer.subscription.created' | 'customer.subscription.updated' | 'customer.subscription.deleted',
  at: number,
  s: SubscriptionSpec,
  id?: string,
): StripeEventJson {
  return event(
    type,
    at,
    {
      id: s.id,
      object: 'subscription',
      customer: s.customer,
      status: s.status,
      cancel_at_period_end: s.cancelAtPeriodEnd ?? false,
      cancel_at: s.cancelAt === undefined ? null : sec(s.cancelAt),
      ended_at: s.endedAt === undefined ? null : sec(s.endedAt),
      trial_end: s.trialEnd === undefined ? null : sec(s.trialEnd),
      schedule: s.schedule ?? null,
      metadata: s.memberId ? { gatehouse_member_id: s.memberId } : {},
      items: {
        object: 'list',
        data: [
          {
            id: `si_${s.id.slice(4)}`,
            object: 'subscription_item',
            quantity: 1,
            current_period_start: sec(s.periodStart),
            current_period_end: sec(s.periodEnd),
            price: { id: s.price, object: 'price', product: s.product, type: 'recurring' },
          },
        ],
      },
    },
    id,
  );
}

export type InvoiceSpec = {
  id: string;
  subscription?: string;
  customer: string;
  billingReason?: string;
  amountPaid?: number;
  currency?: string;
  periodEnd?: number;
};

export function invoiceEvent(
  type: 'invoice.paid' | 'invoice.payment_failed' | 'invoice.payment_action_required',
  at: number,
  inv: InvoiceSpec,
  id?: string,
): StripeEventJson {
  return event(
    type,
    at,
    {
      id: inv.id,
      object: 'invoice',
      customer: inv.customer,
      billing_reason: inv.billingReason ?? 'subscription_cycle',
      amount_paid: type === 'invoice.paid' ? (inv.amountPaid ?? 1000) : 0,
      currency: inv.currency ?? 'usd',
      period_end: inv.periodEnd === undefined ? sec(at) : sec(inv.periodEnd),
      parent: inv.subscription
        ? {
            type: 'subscription_details',
            subscription_details: { subscription: inv.subscription, metadata: {} },
          }
        : null,
      lines: { object: 'list', data: [] },
    },
    id,
  );
}

export type CheckoutSpec = {
  id: string;
  mode: 'payment' | 'subscription';
  customer?: string | null;
  email?: string;
  memberId?: string;
  clientReferenceId?: string;
  paymentIntent?: string;
  subscription?: string;
  priceId?: string;
  stripePriceId?: string;
  paymentStatus?: 'paid' | 'unpaid' | 'no_payment_required';
};

export function checkoutEvent(
  type: 'checkout.session.completed' | 'checkout.session.async_payment_succeeded',
  at: number,
  c: CheckoutSpec,
  id?: string,
): StripeEventJson {
  const metadata: Record<string, string> = {};
  if (c.memberId) metadata.gatehouse_member_id = c.memberId;
  if (c.priceId) metadata.gatehouse_price_id = c.priceId;
  if (c.stripePriceId) metadata.gatehouse_stripe_price_id = c.stripePriceId;
  return event(
    type,
    at,
    {
      id: c.id,
      object: 'checkout.session',
      mode: c.mode,
      customer: c.customer ?? null,
      customer_details: c.email ? { email: c.email } : null,
      client_reference_id: c.clientReferenceId ?? null,
      payment_intent: c.paymentIntent ?? null,
      subscription: c.subscription ?? null,
      payment_status: c.paymentStatus ?? 'paid',
      status: 'complete',
      metadata,
    },
    id,
  );
}

export function chargeRefundedEvent(
  at: number,
  c: { charge: string; paymentIntent: string; customer?: string; amount: number; refunded: number },
  id?: string,
): StripeEventJson {
  return event(
    'charge.refunded',
    at,
    {
      id: c.charge,
      object: 'charge',
      payment_intent: c.paymentIntent,
      customer: c.customer ?? null,
      amount: c.amount,
      amount_refunded: c.refunded,
      refunded: c.refunded >= c.amount,
    },
    id,
  );
}

export function disputeEvent(
  type: 'charge.dispute.created' | 'charge.dispute.closed',
  at: number,
  d: { id: string; charge: string; paymentIntent: string; status?: 'won' | 'lost' | 'needs_response' },
  id?: string,
): StripeEventJson {
  return event(
    type,
    at,
    {
      id: d.id,
      object: 'dispute',
      charge: d.charge,
      payment_intent: d.paymentIntent,
      status: d.status ?? 'needs_response',
    },
    id,
  );
}

export function customerEvent(
  type: 'customer.created' | 'customer.updated',
  at: number,
  c: { id: string; email?: string; memberId?: string },
  id?: string,
): StripeEventJson {
  return event(
    type,
    at,
    {
      id: c.id,
      object: 'customer',
      email: c.email ?? null,
      metadata: c.memberId ? { gatehouse_member_id: c.memberId } : {},
    },
    id,
  );
}

/** The ledger envelope of a Stripe event, as the webhook route appends it. */
export function stripeLedgerEvent(communityId: string, e: StripeEventJson): NewEvent {
  const o = e.data.object;
  return {
    id: e.id,
    type: e.type,
    communityId,
    subject: typeof o.id === 'string' ? o.id : null,
    occurredAt: new Date(e.created * 1000).toISOString(),
    source: 'stripe',
    actor: null,
    data: e,
  };
}

/** An admin fact's envelope (`type` = the domain fact type, `data` = its data). */
export function adminLedgerEvent(
  communityId: string,
  type: string,
  data: Record<string, unknown>,
  at: number,
  actor = 'usr_admin',
  id?: string,
): NewEvent {
  return {
    ...(id && { id }),
    type,
    communityId,
    subject: typeof data.memberId === 'string' ? data.memberId : null,
    occurredAt: new Date(at).toISOString(),
    source: 'admin',
    actor,
    data: { communityId, ...data },
  };
}

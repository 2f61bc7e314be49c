// Stripe objects shaped like the recorded payloads (see /work/shared/stripe-fixtures), rendered in
// the pre-2025 shape or the `basil` one. Only what a test states is meaningful; the rest is filler
// that keeps the shape realistic.
import type { StripeObject } from '../stripe-event';
import { DAY, FIXED_NOW, MONTH, stripeId } from './stripe-ids';

export type ApiVersion = '2024-06-20' | '2025-03-31.basil' | '2025-09-30.clover';
export const LEGACY_API: ApiVersion = '2024-06-20';
export const BASIL_API: ApiVersion = '2025-03-31.basil';

export function isBasilOrLater(version: ApiVersion): boolean {
  return version >= '2025-03-31';
}

type Extra = { extra?: Record<string, unknown> };

export type PriceSpec = {
  priceId?: string;
  productId?: string;
  unitAmount?: number;
  currency?: string;
  interval?: 'day' | 'week' | 'month' | 'year' | null;
  intervalCount?: number;
};

export function buildPrice(spec: PriceSpec = {}): StripeObject {
  const interval = spec.interval === undefined ? 'month' : spec.interval;
  return {
    id: spec.priceId ?? 'price_gold_monthly',
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: FIXED_NOW - 90 * DAY,
    currency: spec.currency ?? 'usd',
    custom_unit_amount: null,
    livemode: false,
    lookup_key: null,
    metadata: {},
    nickname: null,
    product: spec.productId ?? 'prod_gold',
    recurring: interval
      ? {
          interval,
          interval_count: spec.intervalCount ?? 1,
          meter: null,
          trial_period_days: null,
          usage_type: 'licensed',
        }
      : null,
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: interval ? 'recurring' : 'one_time',
    unit_amount: spec.unitAmount ?? 1000,
    unit_amount_decimal: String(spec.unitAmount ?? 1000),
  };
}

function planOf(price: StripeObject): StripeObject {
  const recurring = price.recurring as { interval: string; interval_count: number } | null;
  return {
    id: price.id,
    object: 'plan',
    active: true,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    billing_scheme: 'per_unit',
    created: price.created,
    currency: price.currency,
    interval: recurring?.interval ?? 'month',
    interval_count: recurring?.interval_count ?? 1,
    livemode: false,
    metadata: {},
    nickname: null,
    product: price.product,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: null,
    usage_type: 'licensed',
  };
}

export type SubscriptionItemSpec = PriceSpec & { itemId?: string; quantity?: number };

export type SubscriptionSpec = SubscriptionItemSpec &
  Extra & {
    id?: string;
    customer?: string;
    status?:
      | 'incomplete'
      | 'incomplete_expired'
      | 'trialing'
      | 'active'
      | 'past_due'
      | 'unpaid'
      | 'paused'
      | 'canceled';
    /** More items than the first (which comes from the top-level price fields). */
    moreItems?: SubscriptionItemSpec[];
    periodStart?: number;
    periodEnd?: number;
    trialStart?: number | null;
    trialEnd?: number | null;
    cancelAtPeriodEnd?: boolean;
    cancelAt?: number | null;
    canceledAt?: number | null;
    endedAt?: number | null;
    metadata?: Record<string, string>;
    schedule?: string | null;
    latestInvoice?: string | null;
    startDate?: number;
  };

export function buildSubscription(
  spec: SubscriptionSpec = {},
  apiVersion: ApiVersion = LEGACY_API,
): StripeObject {
  const id = spec.id ?? stripeId('sub');
  const periodStart = spec.periodStart ?? FIXED_NOW;
  const periodEnd = spec.periodEnd ?? periodStart + MONTH;
  const basil = isBasilOrLater(apiVersion);
  const items = [spec, ...(spec.moreItems ?? [])].map((item, i) => {
    const price = buildPrice(item);
    return {
      id: item.itemId ?? (i === 0 ? `si_${id.slice(4)}` : stripeId('si')),
      object: 'subscription_item',
      billing_thresholds: null,
      created: spec.startDate ?? periodStart,
      // Since basil the billing period lives on each item.
      ...(basil && { current_period_end: periodEnd, current_period_start: periodStart }),
      discounts: [],
      metadata: {},
      plan: planOf(price),
      price,
      quantity: item.quantity ?? 1,
      subscription: id,
      tax_rates: [],
    };
  });
  const first = items[0];
  return {
    id,
    object: 'subscription',
    application: null,
    automatic_tax: { enabled: false, liability: null },
    billing_cycle_anchor: periodStart,
    billing_thresholds: null,
    cancel_at: spec.cancelAt ?? null,
    cancel_at_period_end: spec.cancelAtPeriodEnd ?? false,
    canceled_at: spec.canceledAt ?? null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created: spec.startDate ?? periodStart,
    currency: spec.currency ?? 'usd',
    ...(!basil && { current_period_end: periodEnd, current_period_start: periodStart }),
    customer: spec.customer ?? 'cus_member1',
    days_until_due: null,
    default_payment_method: 'pm_card_visa',
    description: null,
    ...(basil ? { discounts: [] } : { discount: null, discounts: [] }),
    ended_at: spec.endedAt ?? null,
    items: {
      object: 'list',
      data: items,
      has_more: false,
      total_count: items.length,
      url: `/v1/subscription_items?subscription=${id}`,
    },
    latest_invoice: spec.latestInvoice === undefined ? stripeId('in') : spec.latestInvoice,
    livemode: false,
    metadata: spec.metadata ?? {},
    pause_collection: null,
    pending_update: null,
    plan: items.length === 1 ? first.plan : null,
    quantity: items.length === 1 ? first.quantity : null,
    schedule: spec.schedule ?? null,
    start_date: spec.startDate ?? periodStart,
    status: spec.status ?? 'active',
    test_clock: null,
    trial_end: spec.trialEnd ?? null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
    trial_start: spec.trialStart ?? null,
    ...spec.extra,
  };
}

export type InvoiceLineSpec = {
  id?: string;
  amount: number;
  priceId?: string;
  productId?: string;
  proration?: boolean;
  periodStart?: number;
  periodEnd?: number;
  description?: string;
  quantity?: number;
  subscriptionItem?: string;
  /** Where a basil line says it comes from; proration items waiting for the next invoice are invoice items. */
  parent?: 'subscription_item_details' | 'invoice_item_details';
};

export type InvoiceSpec = Extra & {
  id?: string;
  customer?: string;
  subscription?: string | null;
  billingReason?: string;
  status?: 'draft' | 'open' | 'paid' | 'uncollectible' | 'void';
  amountPaid?: number;
  amountDue?: number;
  currency?: string;
  periodStart?: number;
  periodEnd?: number;
  lines?: InvoiceLineSpec[];
  discount?: { id?: string; coupon: string; promotionCode?: string | null } | null;
};

function buildLine(
  line: InvoiceLineSpec,
  invoiceId: string,
  spec: InvoiceSpec,
  basil: boolean,
): StripeObject {
  const currency = spec.currency ?? 'usd';
  const quantity = line.quantity ?? 1;
  const period = {
    start: line.periodStart ?? spec.periodStart ?? FIXED_NOW,
    end: line.periodEnd ?? spec.periodEnd ?? FIXED_NOW + MONTH,
  };
  const priceId = line.priceId ?? 'price_gold_monthly';
  const productId = line.productId ?? 'prod_gold';
  const proration = line.proration ?? false;
  const subscription = spec.subscription ?? null;
  const subscriptionItem = line.subscriptionItem ?? (subscription ? `si_${subscription.slice(4)}` : null);
  const invoiceItem = proration ? stripeId('ii') : null;
  const description =
    line.description ??
    (proration
      ? line.amount < 0
        ? 'Unused time on Gold'
        : 'Remaining time on Gold'
      : `${quantity} × Gold (at ${currency} ${line.amount / 100} / month)`);
  const common = {
    id: line.id ?? stripeId('il'),
    object: 'line_item',
    amount: line.amount,
    currency,
    description,
    discount_amounts: [],
    discountable: !proration,
    discounts: [],
    invoice: invoiceId,
    livemode: false,
    metadata: {},
    period,
    quantity,
  };
  if (basil) {
    const parentType = line.parent ?? 'subscription_item_details';
    return {
      ...common,
      parent:
        parentType === 'subscription_item_details'
          ? {
              type: 'subscription_item_details',
              invoice_item_details: null,
              subscription_item_details: {
                invoice_item: invoiceItem,
                proration,
                proration_details: { credited_items: null },
                subscription,
                subscription_item: subscriptionItem,
              },
            }
          : {
              type: 'invoice_item_details',
              subscription_item_details: null,
              invoice_item_details: {
                invoice_item: invoiceItem ?? stripeId('ii'),
                proration,
                proration_details: { credited_items: null },
                subscription,
              },
            },
      pricing: {
        price_details: { price: priceId, product: productId },
        type: 'price_details',
        unit_amount_decimal: String(Math.round(line.amount / quantity)),
      },
      taxes: [],
    };
  }
  const price = buildPrice({
    priceId,
    productId,
    currency,
    unitAmount: Math.abs(Math.round(line.amount / quantity)),
  });
  return {
    ...common,
    invoice_item: invoiceItem,
    plan: planOf(price),
    price,
    proration,
    proration_details: { credited_items: null },
    subscription,
    subscription_item: subscriptionItem,
    tax_amounts: [],
    tax_rates: [],
    type: proration ? 'invoiceitem' : 'subscription',
  };
}

export function buildInvoice(spec: InvoiceSpec = {}, apiVersion: ApiVersion = LEGACY_API): StripeObject {
  const id = spec.id ?? stripeId('in');
  const basil = isBasilOrLater(apiVersion);
  const subscription = spec.subscription === undefined ? 'sub_member1' : spec.subscription;
  const withSub = { ...spec, subscription };
  const lines = (spec.lines ?? [{ amount: 1000 }]).map((l) => buildLine(l, id, withSub, basil));
  const total = lines.reduce((sum, l) => sum + (l.amount as number), 0);
  const status = spec.status ?? 'paid';
  const amountDue = spec.amountDue ?? Math.max(total, 0);
  const amountPaid = spec.amountPaid ?? (status === 'paid' ? amountDue : 0);
  const discountObject = spec.discount
    ? {
        id: spec.discount.id ?? stripeId('di'),
        object: 'discount',
        coupon: { id: spec.discount.coupon, object: 'coupon' },
        promotion_code: spec.discount.promotionCode ?? null,
        invoice: id,
        subscription,
      }
    : null;
  return {
    id,
    object: 'invoice',
    account_country: 'US',
    amount_due: amountDue,
    amount_paid: amountPaid,
    amount_remaining: amountDue - amountPaid,
    attempt_count: 1,
    attempted: true,
    billing_reason: spec.billingReason ?? 'subscription_cycle',
    collection_method: 'charge_automatically',
    created: spec.periodEnd ?? FIXED_NOW,
    currency: spec.currency ?? 'usd',
    customer: spec.customer ?? 'cus_member1',
    customer_email: 'member@example.com',
    ...(basil
      ? {
          discounts: discountObject ? [discountObject.id] : [],
          parent: subscription
            ? {
                type: 'subscription_details',
                quote_details: null,
                subscription_details: { metadata: {}, subscription },
              }
            : null,
        }
      : {
          charge: status === 'paid' ? stripeId('ch') : null,
          discount: discountObject,
          discounts: discountObject ? [discountObject.id] : [],
          paid: status === 'paid',
          paid_out_of_band: false,
          payment_intent: stripeId('pi'),
          subscription,
        }),
    lines: {
      object: 'list',
      data: lines,
      has_more: false,
      total_count: lines.length,
      url: `/v1/invoices/${id}/lines`,
    },
    livemode: false,
    metadata: {},
    number: 'GH-0001',
    period_end: spec.periodEnd ?? FIXED_NOW,
    period_start: spec.periodStart ?? FIXED_NOW - MONTH,
    status,
    status_transitions: {
      finalized_at: FIXED_NOW,
      paid_at: status === 'paid' ? FIXED_NOW : null,
      voided_at: null,
    },
    subtotal: total,
    total,
    ...spec.extra,
  };
}

export type CheckoutSessionSpec = Extra & {
  id?: string;
  mode?: 'payment' | 'subscription' | 'setup';
  paymentStatus?: 'paid' | 'unpaid' | 'no_payment_required';
  status?: 'open' | 'complete' | 'expired';
  customer?: string | null;
  customerEmail?: string;
  subscription?: string | null;
  paymentIntent?: string | null;
  clientReferenceId?: string | null;
  metadata?: Record<string, string>;
  amountTotal?: number;
  amountDiscount?: number;
  currency?: string;
  discounts?: { coupon?: string | null; promotionCode?: string | null }[];
  invoice?: string | null;
};

export function buildCheckoutSession(
  spec: CheckoutSessionSpec = {},
  _apiVersion: ApiVersion = LEGACY_API,
): StripeObject {
  const mode = spec.mode ?? 'payment';
  const amountTotal = spec.amountTotal ?? 5000;
  const discount = spec.amountDiscount ?? 0;
  return {
    id: spec.id ?? `cs_test_${stripeId('x').slice(2)}`,
    object: 'checkout.session',
    after_expiration: null,
    allow_promotion_codes: null,
    amount_subtotal: amountTotal + discount,
    amount_total: amountTotal,
    automatic_tax: { enabled: false, status: null },
    cancel_url: 'http://localhost:4000/join/cancelled',
    client_reference_id: spec.clientReferenceId === undefined ? 'member-1' : spec.clientReferenceId,
    created: FIXED_NOW - 60,
    currency: spec.currency ?? 'usd',
    customer: spec.customer === undefined ? 'cus_member1' : spec.customer,
    customer_creation: 'always',
    customer_details: {
      email: spec.customerEmail ?? 'member@example.com',
      name: 'Test Member',
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    },
    customer_email: spec.customerEmail ?? 'member@example.com',
    discounts: (spec.discounts ?? []).map((d) => ({
      coupon: d.coupon ?? null,
      promotion_code: d.promotionCode ?? null,
    })),
    expires_at: FIXED_NOW + DAY,
    invoice: spec.invoice ?? null,
    livemode: false,
    locale: null,
    metadata: spec.metadata ?? {},
    mode,
    payment_intent:
      spec.paymentIntent === undefined ? (mode === 'payment' ? stripeId('pi') : null) : spec.paymentIntent,
    payment_link: null,
    payment_method_types: ['card'],
    payment_status: spec.paymentStatus ?? 'paid',
    status: spec.status ?? 'complete',
    subscription:
      spec.subscription === undefined
        ? mode === 'subscription'
          ? stripeId('sub')
          : null
        : spec.subscription,
    success_url: 'http://localhost:4000/join/success?session_id={CHECKOUT_SESSION_ID}',
    total_details: { amount_discount: discount, amount_shipping: 0, amount_tax: 0 },
    url: null,
    ...spec.extra,
  };
}

export type ChargeSpec = Extra & {
  id?: string;
  amount?: number;
  amountRefunded?: number;
  refunded?: boolean;
  paymentIntent?: string | null;
  invoice?: string | null;
  customer?: string | null;
  currency?: string;
};

export function buildCharge(spec: ChargeSpec = {}, apiVersion: ApiVersion = LEGACY_API): StripeObject {
  const amount = spec.amount ?? 5000;
  const amountRefunded = spec.amountRefunded ?? 0;
  return {
    id: spec.id ?? stripeId('ch'),
    object: 'charge',
    amount,
    amount_captured: amount,
    amount_refunded: amountRefunded,
    balance_transaction: stripeId('txn'),
    captured: true,
    created: FIXED_NOW - DAY,
    currency: spec.currency ?? 'usd',
    customer: spec.customer === undefined ? 'cus_member1' : spec.customer,
    disputed: false,
    // Since basil a charge no longer names its invoice.
    ...(!isBasilOrLater(apiVersion) && { invoice: spec.invoice ?? null }),
    livemode: false,
    metadata: {},
    paid: true,
    payment_intent: spec.paymentIntent === undefined ? stripeId('pi') : spec.paymentIntent,
    payment_method: 'pm_card_visa',
    refunded: spec.refunded ?? (amountRefunded > 0 && amountRefunded >= amount),
    status: 'succeeded',
    ...spec.extra,
  };
}

export type RefundSpec = Extra & {
  id?: string;
  amount?: number;
  charge?: string;
  paymentIntent?: string | null;
  status?: string;
};

export function buildRefund(spec: RefundSpec = {}): StripeObject {
  return {
    id: spec.id ?? stripeId('re'),
    object: 'refund',
    amount: spec.amount ?? 5000,
    charge: spec.charge ?? 'ch_member1',
    created: FIXED_NOW,
    currency: 'usd',
    metadata: {},
    payment_intent: spec.paymentIntent === undefined ? 'pi_member1' : spec.paymentIntent,
    reason: 'requested_by_customer',
    status: spec.status ?? 'succeeded',
    ...spec.extra,
  };
}

export type DisputeSpec = Extra & {
  id?: string;
  status?:
    | 'warning_needs_response'
    | 'warning_under_review'
    | 'warning_closed'
    | 'needs_response'
    | 'under_review'
    | 'won'
    | 'lost';
  charge?: string;
  paymentIntent?: string | null;
  amount?: number;
  reason?: string;
};

export function buildDispute(spec: DisputeSpec = {}): StripeObject {
  return {
    id: spec.id ?? stripeId('dp'),
    object: 'dispute',
    amount: spec.amount ?? 5000,
    balance_transactions: [],
    charge: spec.charge ?? 'ch_member1',
    created: FIXED_NOW,
    currency: 'usd',
    evidence_details: {
      due_by: FIXED_NOW + 7 * DAY,
      has_evidence: false,
      past_due: false,
      submission_count: 0,
    },
    is_charge_refundable: false,
    livemode: false,
    metadata: {},
    payment_intent: spec.paymentIntent === undefined ? 'pi_member1' : spec.paymentIntent,
    reason: spec.reason ?? 'fraudulent',
    status: spec.status ?? 'needs_response',
    ...spec.extra,
  };
}

export type SchedulePhaseSpec = {
  priceId: string;
  quantity?: number;
  start: number;
  end?: number | null;
  /** Rendered as `iterations` before clover, as `duration` from clover on. */
  iterations?: number;
  interval?: 'day' | 'week' | 'month' | 'year';
};

export type SubscriptionScheduleSpec = Extra & {
  id?: string;
  customer?: string;
  subscription?: string | null;
  status?: 'not_started' | 'active' | 'completed' | 'released' | 'canceled';
  endBehavior?: 'release' | 'cancel';
  phases?: SchedulePhaseSpec[];
  metadata?: Record<string, string>;
};

export function buildSubscriptionSchedule(
  spec: SubscriptionScheduleSpec = {},
  apiVersion: ApiVersion = LEGACY_API,
): StripeObject {
  const clover = apiVersion >= '2025-09-30';
  const phases = (
    spec.phases ?? [{ priceId: 'price_gold_monthly', start: FIXED_NOW, end: FIXED_NOW + MONTH }]
  ).map((p) => ({
    add_invoice_items: [],
    billing_cycle_anchor: null,
    collection_method: null,
    currency: 'usd',
    default_payment_method: null,
    discounts: [],
    end_date: p.end ?? null,
    items: [{ discounts: [], metadata: {}, price: p.priceId, quantity: p.quantity ?? 1, tax_rates: [] }],
    metadata: {},
    proration_behavior: 'create_prorations',
    start_date: p.start,
    trial_end: null,
    ...(p.iterations !== undefined &&
      (clover
        ? { duration: { interval: p.interval ?? 'month', interval_count: p.iterations } }
        : { iterations: p.iterations })),
  }));
  const current = phases[0];
  return {
    id: spec.id ?? stripeId('sub_sched'),
    object: 'subscription_schedule',
    canceled_at: null,
    completed_at: spec.status === 'completed' ? FIXED_NOW : null,
    created: FIXED_NOW,
    current_phase:
      spec.status === 'active' || spec.status === undefined
        ? { start_date: current.start_date, end_date: current.end_date }
        : null,
    customer: spec.customer ?? 'cus_member1',
    default_settings: { collection_method: 'charge_automatically' },
    end_behavior: spec.endBehavior ?? 'release',
    livemode: false,
    metadata: spec.metadata ?? {},
    phases,
    released_at: spec.status === 'released' ? FIXED_NOW : null,
    released_subscription: null,
    status: spec.status ?? 'active',
    subscription: spec.subscription === undefined ? 'sub_member1' : spec.subscription,
    test_clock: null,
    ...spec.extra,
  };
}

export type CustomerSpec = Extra & {
  id?: string;
  email?: string | null;
  name?: string | null;
  metadata?: Record<string, string>;
};

export function buildCustomer(spec: CustomerSpec = {}): StripeObject {
  return {
    id: spec.id ?? stripeId('cus'),
    object: 'customer',
    address: null,
    balance: 0,
    created: FIXED_NOW - 90 * DAY,
    currency: 'usd',
    delinquent: false,
    description: null,
    email: spec.email === undefined ? 'member@example.com' : spec.email,
    invoice_prefix: 'GH0001',
    livemode: false,
    metadata: spec.metadata ?? {},
    name: spec.name === undefined ? 'Test Member' : spec.name,
    ...spec.extra,
  };
}

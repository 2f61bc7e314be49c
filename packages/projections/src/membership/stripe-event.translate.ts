import {
  fromStripeSeconds,
  type StripeFact,
  type SubscriptionSnapshot,
  type SubscriptionStatus,
} from '@gatehouse/domain';

/**
 * Reads a verbatim Stripe event (as stored in the ledger) into a domain fact plus the identifiers
 * that tie it to a member. Both the pre-2025 shapes and `basil` parse. A small local reader: it can
 * give way to the `stripe` package's translators once they are published.
 */
export type StripeHints = {
  /** From `gatehouse_member_id` metadata or `client_reference_id`. */
  memberId?: string;
  customerId?: string;
  email?: string;
  subscriptionId?: string;
  paymentIntentId?: string;
  chargeId?: string;
  /** Our price id from `gatehouse_price_id` metadata (Checkout sessions). */
  priceId?: string;
};

export type StripeReading = {
  /** Null for events that only teach identities (customers, subscription checkouts) or are ignored. */
  fact: StripeFact | null;
  hints: StripeHints;
};

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** An expandable field: either the id or the expanded object. */
const idOf = (v: unknown): string | undefined => str(v) ?? (isObj(v) ? str(v.id) : undefined);
const ms = (v: unknown): number | undefined => {
  const n = num(v);
  return n === undefined ? undefined : fromStripeSeconds(n);
};

const STATUSES: ReadonlySet<string> = new Set([
  'incomplete',
  'incomplete_expired',
  'trialing',
  'active',
  'past_due',
  'unpaid',
  'paused',
  'canceled',
]);

function metadataMember(o: Obj): string | undefined {
  const md = isObj(o.metadata) ? o.metadata : {};
  return str(md.gatehouse_member_id);
}

function subscriptionSnapshot(sub: Obj, eventId: string, observedAt: number): SubscriptionSnapshot | null {
  const items =
    isObj(sub.items) && Array.isArray(sub.items.data) ? (sub.items.data as unknown[]).filter(isObj) : [];
  const item = items[0];
  const price = item && isObj(item.price) ? item.price : isObj(sub.plan) ? sub.plan : undefined;
  const status = str(sub.status);
  const id = str(sub.id);
  // `basil` moved the period onto each item; older versions keep it on the subscription.
  const start = ms(item?.current_period_start) ?? ms(sub.current_period_start);
  const end = ms(item?.current_period_end) ?? ms(sub.current_period_end);
  if (!id || !status || !STATUSES.has(status) || !price || start === undefined || end === undefined)
    return null;
  return {
    subscriptionId: id,
    customerId: idOf(sub.customer) ?? '',
    ...(metadataMember(sub) && { memberId: metadataMember(sub) }),
    status: status as SubscriptionStatus,
    priceId: str(price.id) ?? '',
    productId: idOf(price.product) ?? '',
    itemId: str(item?.id) ?? '',
    quantity: num(item?.quantity) ?? num(sub.quantity) ?? 1,
    currentPeriodStart: start,
    currentPeriodEnd: end,
    ...(ms(sub.trial_end) !== undefined && { trialEnd: ms(sub.trial_end) }),
    cancelAtPeriodEnd: sub.cancel_at_period_end === true,
    ...(ms(sub.cancel_at) !== undefined && { cancelAt: ms(sub.cancel_at) }),
    ...(ms(sub.ended_at) !== undefined && { endedAt: ms(sub.ended_at) }),
    ...(idOf(sub.schedule) && { scheduleId: idOf(sub.schedule) }),
    observedAt,
    eventId,
  };
}

function invoiceSubscription(inv: Obj): string | undefined {
  const parent = isObj(inv.parent) ? inv.parent : undefined;
  const details = parent && isObj(parent.subscription_details) ? parent.subscription_details : undefined;
  return idOf(inv.subscription) ?? idOf(details?.subscription);
}

function invoiceFact(inv: Obj, eventId: string, observedAt: number) {
  const lines =
    isObj(inv.lines) && Array.isArray(inv.lines.data) ? (inv.lines.data as unknown[]).filter(isObj) : [];
  return {
    invoiceId: str(inv.id) ?? '',
    ...(invoiceSubscription(inv) && { subscriptionId: invoiceSubscription(inv) }),
    billingReason: str(inv.billing_reason) ?? 'manual',
    amountPaid: num(inv.amount_paid) ?? 0,
    currency: str(inv.currency) ?? '',
    ...(ms(inv.period_end) !== undefined && { periodEnd: ms(inv.period_end) }),
    lines: lines.map((l) => {
      const parent = isObj(l.parent) ? l.parent : {};
      const subItem = isObj(parent.subscription_item_details) ? parent.subscription_item_details : {};
      const invItem = isObj(parent.invoice_item_details) ? parent.invoice_item_details : {};
      const pricing = isObj(l.pricing) && isObj(l.pricing.price_details) ? l.pricing.price_details : {};
      const period = isObj(l.period) ? l.period : {};
      const stripePriceId = idOf(l.price) ?? idOf(pricing.price);
      return {
        amount: num(l.amount) ?? 0,
        proration: l.proration === true || subItem.proration === true || invItem.proration === true,
        ...(stripePriceId && { stripePriceId }),
        periodStart: ms(period.start) ?? observedAt,
        periodEnd: ms(period.end) ?? observedAt,
        description: str(l.description) ?? '',
        quantity: num(l.quantity) ?? 1,
      };
    }),
    observedAt,
    eventId,
  };
}

function checkoutPrice(session: Obj): { stripePriceId?: string; stripeProductId?: string } {
  const items =
    isObj(session.line_items) && Array.isArray(session.line_items.data) ? session.line_items.data : [];
  const first = (items as unknown[]).find(isObj);
  const price = first && isObj(first.price) ? first.price : undefined;
  const md = isObj(session.metadata) ? session.metadata : {};
  return {
    ...((idOf(price) ?? str(md.gatehouse_stripe_price_id)) && {
      stripePriceId: idOf(price) ?? str(md.gatehouse_stripe_price_id),
    }),
    ...(price && idOf(price.product) && { stripeProductId: idOf(price.product) }),
  };
}

/** Translates one verbatim Stripe event; never throws on an unexpected shape (it yields no fact). */
export function readStripeEvent(event: unknown): StripeReading {
  if (!isObj(event) || !isObj(event.data) || !isObj(event.data.object)) return { fact: null, hints: {} };
  const type = str(event.type) ?? '';
  const eventId = str(event.id) ?? '';
  const observedAt = ms(event.created) ?? 0;
  const o = event.data.object;
  if (type.startsWith('customer.subscription.')) {
    const snap = subscriptionSnapshot(o, eventId, observedAt);
    const hints: StripeHints = {
      ...(metadataMember(o) && { memberId: metadataMember(o) }),
      ...(idOf(o.customer) && { customerId: idOf(o.customer) }),
      ...(str(o.id) && { subscriptionId: str(o.id) }),
    };
    if (!snap) return { fact: null, hints };
    const fact: StripeFact =
      type === 'customer.subscription.deleted'
        ? { type: 'SubscriptionDeleted', data: snap }
        : {
            type: 'SubscriptionObserved',
            data: type === 'customer.subscription.updated' ? { ...snap, update: true } : snap,
          };
    return { fact, hints };
  }
  if (type.startsWith('customer.') && str(o.object) === 'customer') {
    return {
      fact: null,
      hints: {
        ...(metadataMember(o) && { memberId: metadataMember(o) }),
        ...(str(o.id) && { customerId: str(o.id) }),
        ...(str(o.email) && { email: str(o.email) }),
      },
    };
  }
  if (type.startsWith('invoice.')) {
    const data = invoiceFact(o, eventId, observedAt);
    const hints: StripeHints = {
      ...(idOf(o.customer) && { customerId: idOf(o.customer) }),
      ...(str(o.customer_email) && { email: str(o.customer_email) }),
      ...(data.subscriptionId && { subscriptionId: data.subscriptionId }),
    };
    if (type === 'invoice.paid' || type === 'invoice.payment_succeeded')
      return { fact: { type: 'InvoicePaid', data }, hints };
    if (type === 'invoice.payment_failed') return { fact: { type: 'InvoicePaymentFailed', data }, hints };
    if (type === 'invoice.payment_action_required')
      return { fact: { type: 'InvoicePaymentActionRequired', data }, hints };
    return { fact: null, hints };
  }
  if (type.startsWith('checkout.session.')) {
    const details = isObj(o.customer_details) ? o.customer_details : {};
    const md = isObj(o.metadata) ? o.metadata : {};
    const memberId = str(md.gatehouse_member_id) ?? str(o.client_reference_id);
    const hints: StripeHints = {
      ...(memberId && { memberId }),
      ...(idOf(o.customer) && { customerId: idOf(o.customer) }),
      ...((str(details.email) ?? str(o.customer_email)) && {
        email: str(details.email) ?? str(o.customer_email),
      }),
      ...(idOf(o.subscription) && { subscriptionId: idOf(o.subscription) }),
      ...(idOf(o.payment_intent) && { paymentIntentId: idOf(o.payment_intent) }),
      ...(str(md.gatehouse_price_id) && { priceId: str(md.gatehouse_price_id) }),
    };
    const completed =
      type === 'checkout.session.completed' || type === 'checkout.session.async_payment_succeeded';
    if (str(o.mode) !== 'payment' || !completed || !str(o.id)) return { fact: null, hints };
    const paid =
      type === 'checkout.session.async_payment_succeeded' ||
      o.payment_status === 'paid' ||
      o.payment_status === 'no_payment_required';
    const fact: StripeFact = {
      type: 'OneTimePurchaseCompleted',
      data: {
        checkoutSessionId: str(o.id) ?? '',
        ...(hints.paymentIntentId && { paymentIntentId: hints.paymentIntentId }),
        stripePriceId: checkoutPrice(o).stripePriceId ?? '',
        ...(checkoutPrice(o).stripeProductId && { stripeProductId: checkoutPrice(o).stripeProductId }),
        memberId: memberId ?? '',
        paid,
        observedAt,
        eventId,
      },
    };
    return { fact, hints };
  }
  if (type === 'charge.refunded') {
    const pi = idOf(o.payment_intent);
    const hints: StripeHints = {
      ...(idOf(o.customer) && { customerId: idOf(o.customer) }),
      ...(pi && { paymentIntentId: pi }),
      ...(str(o.id) && { chargeId: str(o.id) }),
    };
    if (!pi) return { fact: null, hints };
    const amount = num(o.amount) ?? 0;
    const full = o.refunded === true || (amount > 0 && (num(o.amount_refunded) ?? 0) >= amount);
    return {
      fact: { type: 'OneTimePurchaseRefunded', data: { paymentIntentId: pi, full, observedAt, eventId } },
      hints,
    };
  }
  if (type === 'charge.dispute.created' || type === 'charge.dispute.closed') {
    const chargeId = idOf(o.charge);
    const pi = idOf(o.payment_intent);
    const hints: StripeHints = { ...(pi && { paymentIntentId: pi }), ...(chargeId && { chargeId }) };
    if (!chargeId) return { fact: null, hints };
    if (type === 'charge.dispute.created') {
      return {
        fact: {
          type: 'DisputeOpened',
          data: { chargeId, ...(pi && { paymentIntentId: pi }), observedAt, eventId },
        },
        hints,
      };
    }
    // `warning_closed` ends an inquiry that never became a dispute: the money stays, like a win.
    const status =
      o.status === 'lost' ? 'lost' : o.status === 'won' || o.status === 'warning_closed' ? 'won' : undefined;
    if (!status) return { fact: null, hints };
    return {
      fact: {
        type: 'DisputeClosed',
        data: { chargeId, ...(pi && { paymentIntentId: pi }), status, observedAt, eventId },
      },
      hints,
    };
  }
  if (type.startsWith('subscription_schedule.')) {
    // A released schedule names its former subscription apart.
    const sub = idOf(o.subscription) ?? idOf(o.released_subscription);
    const hints: StripeHints = {
      ...(idOf(o.customer) && { customerId: idOf(o.customer) }),
      ...(sub && { subscriptionId: sub }),
    };
    if (!sub || !str(o.id)) return { fact: null, hints };
    const phases = (Array.isArray(o.phases) ? o.phases : []).filter(isObj).flatMap((p) => {
      const item = Array.isArray(p.items) ? (p.items as unknown[]).find(isObj) : undefined;
      const priceId = item ? (idOf(item.price) ?? idOf(item.plan)) : undefined;
      const start = ms(p.start_date);
      if (!priceId || start === undefined) return [];
      const end = ms(p.end_date);
      return [{ priceId, start, ...(end !== undefined && { end }) }];
    });
    const ended =
      ['released', 'canceled', 'completed'].includes(str(o.status) ?? '') ||
      ['released', 'canceled', 'completed', 'aborted'].some((t) => type === `subscription_schedule.${t}`);
    return {
      fact: {
        type: 'ScheduleObserved',
        data: {
          scheduleId: str(o.id) ?? '',
          subscriptionId: sub,
          phases,
          ...(ended && { ended: true }),
          ...(type === 'subscription_schedule.updated' && { update: true }),
          observedAt,
          eventId,
        },
      },
      hints,
    };
  }
  return { fact: null, hints: {} };
}

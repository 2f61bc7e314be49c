import { buildInvoice, BASIL_API } from '../stripe-objects';
import { attempt, createIntent } from './fake-stripe-payments';
import { FakeStripeError, invalid, newId, type FakeAccountStore, type FakeObject } from './fake-stripe-store';

// What Stripe's billing does to a subscription as time passes, as far as a fake goes: an invoice
// for each period (paid at once, by a card charge; $0 for a trial), renewals at the period's end, a trial turning
// into a paid period, the cancellation asked for (`cancel_at`, `cancel_at_period_end`), and the
// phases of a subscription's schedule (the next phase's prices from its start; after the last, the
// schedule's `end_behavior`). Amounts are the price times the quantity less the subscription's
// discounts (its coupons, as Stripe applies them); no proration and no taxes are worked out here.

/** Where billing stores its objects and records its events. */
export type BillingCtx = {
  store: FakeAccountStore;
  now: number;
  emit(type: string, object: FakeObject, previous?: Record<string, unknown>): void;
};

const INTERVAL_SECONDS: Record<string, number> = { day: 86_400, week: 7 * 86_400 };

// Calendar arithmetic for period ends, enough for a fake: months and years keep the day of month.
export function addInterval(at: number, interval: string, count: number): number {
  if (INTERVAL_SECONDS[interval]) return at + INTERVAL_SECONDS[interval] * count;
  const d = new Date(at * 1000);
  if (interval === 'month') d.setUTCMonth(d.getUTCMonth() + count);
  else d.setUTCFullYear(d.getUTCFullYear() + count);
  return Math.floor(d.getTime() / 1000);
}

export function itemsOf(sub: FakeObject): FakeObject[] {
  return (sub.items as { data: FakeObject[] }).data;
}

function recurringOf(item: FakeObject): { interval: string; interval_count: number } {
  const price = item.price as FakeObject;
  return (
    (price.recurring as { interval: string; interval_count: number } | null) ?? {
      interval: 'month',
      interval_count: 1,
    }
  );
}

/**
 * A paid invoice for the subscription's period `[start, end)`, with its events (`invoice.created`,
 * `invoice.finalized`, `invoice.paid`, `invoice.payment_succeeded`), in the `basil` shape. What it
 * asks for is charged to the customer's card first: a payment intent, its charge and an
 * `invoice_payment` tying it to the invoice (`invoice_payment.paid`), as `basil` invoices no longer
 * name their charge.
 */
export function invoicePeriod(
  ctx: BillingCtx,
  sub: FakeObject,
  reason: 'subscription_create' | 'subscription_cycle',
  start: number,
  end: number,
  trial: boolean,
): FakeObject {
  const items = itemsOf(sub);
  const currency = String(sub.currency ?? 'usd');
  const lines = items.map((item) => {
    const price = item.price as FakeObject;
    const quantity = Number(item.quantity ?? 1);
    const product = ctx.store.find(String(price.product));
    const name = String(product?.name ?? price.product);
    return {
      amount: trial ? 0 : Number(price.unit_amount) * quantity,
      priceId: price.id,
      productId: String(price.product),
      periodStart: start,
      periodEnd: end,
      quantity,
      subscriptionItem: item.id,
      description: trial ? `Trial period for ${name}` : `${quantity} × ${name}`,
    };
  });
  const customer = ctx.store.find(String(sub.customer));
  const invoice = buildInvoice(
    {
      id: newId('in'),
      customer: String(sub.customer),
      subscription: sub.id,
      billingReason: reason,
      status: 'paid',
      currency,
      periodStart: start,
      periodEnd: start,
      lines,
      extra: {
        created: ctx.now,
        customer_email: (customer?.email as string | null | undefined) ?? null,
        number: null,
        status_transitions: { finalized_at: ctx.now, paid_at: ctx.now, voided_at: null },
      },
    },
    BASIL_API,
  ) as FakeObject;
  if (!trial) applyDiscounts(ctx.store, sub, invoice, start);
  ctx.store.put(invoice);
  sub.latest_invoice = invoice.id;
  const due = Number(invoice.amount_due ?? 0);
  if (due === 0) {
    ctx.emit('invoice.created', invoice);
    ctx.emit('invoice.finalized', invoice);
    ctx.emit('invoice.paid', invoice);
    ctx.emit('invoice.payment_succeeded', invoice);
    // Created for a declining card, but nothing was due: nothing stands in the way.
    if (sub.status === 'incomplete') {
      sub.status = 'active';
      ctx.emit('customer.subscription.updated', sub, { status: 'incomplete' });
    }
    return invoice;
  }
  // Finalized open; paid once its charge goes through.
  Object.assign(invoice, {
    amount_paid: 0,
    amount_remaining: due,
    status: 'open',
    status_transitions: { finalized_at: ctx.now, paid_at: null, voided_at: null },
  });
  // An Indian card's renewal is charged after the pre-debit notice its e-mandate requires.
  const notice = reason === 'subscription_cycle' && ctx.store.cardCountry.get(String(sub.customer)) === 'IN';
  if (notice) invoice.next_payment_attempt = ctx.now + INDIA_PRE_DEBIT_SECONDS;
  ctx.emit('invoice.created', invoice);
  ctx.emit('invoice.finalized', invoice);
  if (!notice) collect(ctx, sub, invoice, reason === 'subscription_cycle');
  return invoice;
}

type Phase = {
  start_date: number;
  end_date: number | null;
  items: { price: string; quantity: number }[];
};

/** The active schedule the subscription follows, if any. */
function scheduleOf(store: FakeAccountStore, sub: FakeObject): FakeObject | undefined {
  const schedule = sub.schedule ? store.find(String(sub.schedule)) : undefined;
  return schedule?.status === 'active' ? schedule : undefined;
}

/**
 * Days between the attempts to charge a renewal that was declined (after the first, then each
 * retry); when the last fails, the subscription is canceled. Stripe's Smart Retries pick their own
 * moments (by default up to 8 tries within 2 weeks) and its settings say what happens after: the
 * fake keeps to this fixed schedule and cancels.
 */
export const FAKE_PAYMENT_RETRY_DAYS = [3, 5, 7] as const;

/** An Indian card's renewal is charged this long after its invoice is finalized (the pre-debit notice). */
export const INDIA_PRE_DEBIT_SECONDS = 26 * 3600;

/** INR 15,000 in paise: above it, an Indian card's recurring charge needs the cardholder. */
const INDIA_AUTHENTICATION_ABOVE = 1_500_000;

const DAY = 86_400;

/** A subscription's open invoice, when Stripe will next try to charge it (a retry, a pre-debit notice ending). */
function pendingRetry(store: FakeAccountStore, sub: FakeObject): { at: number; invoice: string } | null {
  if (sub.status === 'canceled' || sub.status === 'incomplete_expired') return null;
  const invoice = store.find(String(sub.latest_invoice));
  const at = invoice?.status === 'open' ? invoice.next_payment_attempt : null;
  return typeof at === 'number' ? { at, invoice: invoice!.id } : null;
}

export type BillingMoment = { at: number; ends: boolean; retry?: string; expires?: boolean };

/** How long a subscription whose first payment failed stays `incomplete` before it expires. */
const INCOMPLETE_SECONDS = 23 * 3600;

/** When the subscription next needs billing, and what happens then; null when it has ended. */
export function nextBillingMoment(store: FakeAccountStore, sub: FakeObject): BillingMoment | null {
  const due = periodMoment(store, sub);
  const retry = pendingRetry(store, sub);
  return retry && (!due || retry.at < due.at) ? { at: retry.at, ends: false, retry: retry.invoice } : due;
}

function periodMoment(store: FakeAccountStore, sub: FakeObject): BillingMoment | null {
  if (sub.status === 'canceled' || sub.status === 'incomplete_expired') return null;
  if (sub.status === 'incomplete')
    return { at: Number(sub.created) + INCOMPLETE_SECONDS, ends: true, expires: true };
  const items = itemsOf(sub);
  if (items.length === 0) return null;
  const periodEnd = Number(items[0].current_period_end);
  const cancelAt = typeof sub.cancel_at === 'number' ? sub.cancel_at : null;
  if (cancelAt !== null && cancelAt <= periodEnd) return { at: cancelAt, ends: true };
  // A schedule that cancels when its last phase ends.
  const schedule = scheduleOf(store, sub);
  if (schedule && schedule.end_behavior === 'cancel') {
    const last = (schedule.phases as Phase[]).at(-1);
    if (last?.end_date != null && last.end_date <= periodEnd) return { at: last.end_date, ends: true };
  }
  return { at: periodEnd, ends: sub.cancel_at_period_end === true };
}

/**
 * At a period boundary, the schedule's phase that starts then sets the subscription's prices; past
 * its last phase, a releasing schedule lets the subscription go on as it is (`subscription_schedule.released`).
 */
function followSchedule(ctx: BillingCtx, sub: FakeObject, at: number): void {
  const schedule = scheduleOf(ctx.store, sub);
  if (!schedule) return;
  const phases = schedule.phases as Phase[];
  const phase = phases.find((p) => p.start_date <= at && (p.end_date === null || at < p.end_date));
  if (!phase) {
    Object.assign(schedule, {
      status: 'released',
      released_at: at,
      released_subscription: sub.id,
      subscription: null,
      current_phase: null,
    });
    sub.schedule = null;
    ctx.emit('subscription_schedule.released', schedule);
    return;
  }
  schedule.current_phase = { start_date: phase.start_date, end_date: phase.end_date };
  const items = itemsOf(sub);
  phase.items.forEach((want, i) => {
    const item = items[i];
    const price = ctx.store.find(want.price);
    if (!item || !price) return;
    item.price = price;
    item.quantity = want.quantity;
  });
}

/**
 * Bills the subscription at `ctx.now`, the moment `nextBillingMoment` named: it ends
 * (`customer.subscription.deleted`), or its next period starts (`customer.subscription.updated`,
 * a trial becoming active) and is invoiced.
 */
export function billAt(ctx: BillingCtx, sub: FakeObject, moment: BillingMoment): void {
  if (moment.retry) {
    collect(ctx, sub, ctx.store.get('invoice', moment.retry), true);
    return;
  }
  const before = structuredClone(sub);
  if (moment.expires) {
    // Its first invoice never paid: `incomplete_expired`, a final status, told by an update.
    Object.assign(sub, { status: 'incomplete_expired', ended_at: moment.at, canceled_at: moment.at });
    ctx.emit('customer.subscription.updated', sub, {
      status: 'incomplete',
      ended_at: null,
      canceled_at: before.canceled_at ?? null,
    });
    return;
  }
  if (moment.ends) {
    Object.assign(sub, {
      status: 'canceled',
      ended_at: moment.at,
      canceled_at: sub.canceled_at ?? moment.at,
    });
    ctx.emit('customer.subscription.deleted', sub);
    return;
  }
  followSchedule(ctx, sub, moment.at);
  const items = itemsOf(sub);
  const { interval, interval_count } = recurringOf(items[0]);
  const start = moment.at;
  const end = addInterval(start, interval, interval_count);
  for (const item of items) Object.assign(item, { current_period_start: start, current_period_end: end });
  if (sub.status === 'trialing') sub.status = 'active';
  const previous: Record<string, unknown> = {};
  for (const key of ['items', 'status', 'schedule'])
    if (JSON.stringify(before[key]) !== JSON.stringify(sub[key])) previous[key] = before[key];
  ctx.emit('customer.subscription.updated', sub, previous);
  invoicePeriod(ctx, sub, 'subscription_cycle', start, end, false);
}

/**
 * Stripe tries a declined renewal again: paid, the invoice is (`invoice_payment.paid`,
 * `invoice.paid`) and the subscription is `active` again; declined, `invoice.payment_failed` with
 * the next attempt, and after the last one the subscription is canceled
 * (`customer.subscription.deleted`, `cancellation_details.reason: payment_failed`).
 */
function collect(ctx: BillingCtx, sub: FakeObject, invoice: FakeObject, renewal: boolean): void {
  const customer = String(sub.customer);
  const due = Number(invoice.amount_due);
  let payment = paymentOf(ctx, invoice);
  let intent: FakeObject;
  if (payment) {
    intent = intentOf(ctx, payment);
    invoice.attempt_count = Number(invoice.attempt_count) + 1;
  } else {
    const email = ctx.store.find(customer)?.email as string | null | undefined;
    intent = createIntent(ctx, {
      amount: due,
      currency: String(invoice.currency),
      customer,
      email: email ?? null,
      metadata: {},
      description: renewal ? 'Subscription update' : 'Subscription creation',
    });
    payment = {
      id: newId('inpay'),
      object: 'invoice_payment',
      amount_paid: null,
      amount_requested: due,
      created: ctx.now,
      currency: invoice.currency,
      invoice: invoice.id,
      is_default: true,
      livemode: false,
      payment: { type: 'payment_intent', payment_intent: intent.id },
      status: 'open',
      status_transitions: { canceled_at: null, paid_at: null },
    } as FakeObject;
    ctx.store.put(payment);
    // Above INR 15,000 an Indian card's recurring charge needs the cardholder to authenticate.
    const india = ctx.store.cardCountry.get(customer) === 'IN';
    if (renewal && india && invoice.currency === 'inr' && due > INDIA_AUTHENTICATION_ABOVE) {
      Object.assign(intent, { next_action: { type: 'use_stripe_sdk' }, status: 'requires_action' });
      ctx.emit('payment_intent.requires_action', intent);
      invoice.next_payment_attempt = null;
      ctx.emit('invoice.payment_action_required', invoice);
      // Its latest invoice unpaid, the subscription is past due until the cardholder acts.
      if (sub.status === 'active') {
        sub.status = 'past_due';
        ctx.emit('customer.subscription.updated', sub, { status: 'active' });
      }
      return;
    }
  }
  charge(ctx, sub, invoice, payment, intent, renewal);
}

/**
 * `POST /v1/invoices/:id/pay`: one more attempt to charge an open invoice now (the first invoice of
 * an `incomplete` subscription, or a past-due renewal). A declined card is a 402, with the attempt's
 * events recorded all the same.
 */
export function payInvoice(ctx: BillingCtx, invoice: FakeObject): FakeObject {
  if (invoice.status !== 'open')
    throw invalid(
      'invoice',
      `Invoice ${invoice.id} is ${String(invoice.status)}: only an open invoice can be paid.`,
    );
  const sub = ctx.store.find(String(subscriptionOfInvoice(invoice)));
  if (!sub || sub.status === 'incomplete_expired' || sub.status === 'canceled')
    throw invalid('invoice', `The subscription of invoice ${invoice.id} has ended.`);
  collect(ctx, sub, invoice, invoice.billing_reason === 'subscription_cycle');
  if ((invoice.status as string) !== 'paid')
    throw new FakeStripeError(402, 'card_error', 'Your card was declined.', undefined, 'card_declined');
  return invoice;
}

/** The invoice's open payment (a first attempt that failed or waits for the cardholder), if any. */
function paymentOf(ctx: BillingCtx, invoice: FakeObject): FakeObject | undefined {
  return ctx.store.all('invoice_payment').find((p) => p.invoice === invoice.id && p.status === 'open');
}

function intentOf(ctx: BillingCtx, payment: FakeObject): FakeObject {
  return ctx.store.get(
    'payment_intent',
    String((payment.payment as { payment_intent: string }).payment_intent),
  );
}

/**
 * The cardholder authenticates the charge an invoice waits for (an Indian e-mandate above its
 * limit): it is charged now, as any attempt. Returns the invoice.
 */
export function authenticateInvoicePayment(ctx: BillingCtx, intent: FakeObject): FakeObject {
  if (intent.status !== 'requires_action')
    throw invalid(
      'payment_intent',
      `This PaymentIntent is ${String(intent.status)}: nothing to authenticate.`,
    );
  const payment = ctx.store
    .all('invoice_payment')
    .find((p) => (p.payment as { payment_intent?: string }).payment_intent === intent.id);
  const invoice = payment && ctx.store.find(String(payment.invoice));
  const sub = invoice && ctx.store.find(String(subscriptionOfInvoice(invoice)));
  if (!payment || !invoice || !sub) throw invalid('payment_intent', `No invoice waits for ${intent.id}.`);
  intent.next_action = null;
  charge(ctx, sub, invoice, payment, intent, true);
  return invoice;
}

function subscriptionOfInvoice(invoice: FakeObject): string | undefined {
  const parent = invoice.parent as { subscription_details?: { subscription?: string } } | null | undefined;
  return parent?.subscription_details?.subscription;
}

/**
 * One attempt to charge an open invoice: paid (`invoice_payment.paid`, `invoice.paid`; a past-due
 * subscription is `active` again), or declined (`invoice.payment_failed`; a renewal's subscription
 * goes `past_due`, is tried again on `FAKE_PAYMENT_RETRY_DAYS`, and is canceled after the last).
 */
function charge(
  ctx: BillingCtx,
  sub: FakeObject,
  invoice: FakeObject,
  payment: FakeObject,
  intent: FakeObject,
  renewal: boolean,
): void {
  const declined = ctx.store.declining.has(String(sub.customer));
  attempt(ctx, intent, 'card', declined ? 'failed' : 'succeeded');
  if (!declined) {
    const due = Number(invoice.amount_due);
    Object.assign(payment, {
      amount_paid: due,
      status: 'paid',
      status_transitions: { canceled_at: null, paid_at: ctx.now },
    });
    ctx.emit('invoice_payment.paid', payment);
    Object.assign(invoice, {
      amount_paid: due,
      amount_remaining: 0,
      next_payment_attempt: null,
      status: 'paid',
      status_transitions: { ...(invoice.status_transitions as object), paid_at: ctx.now },
    });
    ctx.emit('invoice.paid', invoice);
    ctx.emit('invoice.payment_succeeded', invoice);
    if (sub.status === 'past_due' || sub.status === 'incomplete') {
      const before = sub.status;
      sub.status = 'active';
      ctx.emit('customer.subscription.updated', sub, { status: before });
    }
    return;
  }
  if (!renewal) {
    // A first payment is not retried: the subscription stays `incomplete` until paid or expired.
    invoice.next_payment_attempt = null;
    ctx.emit('invoice.payment_failed', invoice);
    return;
  }
  const wait = FAKE_PAYMENT_RETRY_DAYS[Number(invoice.attempt_count) - 1];
  invoice.next_payment_attempt = wait === undefined ? null : ctx.now + wait * DAY;
  ctx.emit('invoice.payment_failed', invoice);
  if (sub.status !== 'past_due' && sub.status !== 'canceled') {
    const before = sub.status;
    sub.status = 'past_due';
    ctx.emit('customer.subscription.updated', sub, { status: before });
  }
  if (wait !== undefined) return;
  Object.assign(sub, {
    status: 'canceled',
    canceled_at: ctx.now,
    ended_at: ctx.now,
    cancellation_details: { comment: null, feedback: null, reason: 'payment_failed' },
  });
  ctx.emit('customer.subscription.deleted', sub);
}

/** A coupon or promotion code as an API call or a Checkout session names it. */
export type DiscountRequest = { coupon: string | null; promotion_code: string | null };

/** The coupon a request applies: its own, or its promotion code's. */
export function couponOf(store: FakeAccountStore, d: DiscountRequest): FakeObject | undefined {
  const promotion = d.promotion_code ? store.find(d.promotion_code) : undefined;
  return store.find(d.coupon ?? (promotion?.coupon as FakeObject | undefined)?.id ?? '');
}

type Line = { amount: number; product: string | null };

/**
 * What one coupon takes off each line: a percentage of each line it applies to (rounded per line),
 * or a fixed amount in the coupon's currency, spread over those lines by their amounts and never
 * more than they come to. `applies_to.products` limits the lines.
 */
export function couponAmounts(coupon: FakeObject, currency: string, lines: readonly Line[]): number[] {
  const products = (coupon.applies_to as { products: string[] } | null)?.products;
  const base = lines.map((l) =>
    l.amount > 0 && (!products || (l.product !== null && products.includes(l.product))) ? l.amount : 0,
  );
  if (typeof coupon.percent_off === 'number') {
    const percent = coupon.percent_off;
    return base.map((a) => Math.round((a * percent) / 100));
  }
  const total = base.reduce((sum, a) => sum + a, 0);
  if (typeof coupon.amount_off !== 'number' || total === 0) return base.map(() => 0);
  if (String(coupon.currency).toLowerCase() !== currency.toLowerCase()) return base.map(() => 0);
  const off = Math.min(coupon.amount_off, total);
  const last = base.reduce((at, a, i) => (a > 0 ? i : at), -1);
  let left = off;
  return base.map((a, i) => {
    const share = i === last ? left : Math.floor((off * a) / total);
    left -= share;
    return share;
  });
}

/**
 * Discount objects (`di_…`) for a subscription's coupons, from `at`; a `repeating` coupon's ends
 * after its months. Returns their ids, which is how a subscription lists them. A coupon (or code)
 * among the `kept` discounts keeps its discount, as Stripe keeps it when the list is set again.
 */
export function attachDiscounts(
  store: FakeAccountStore,
  requests: readonly DiscountRequest[],
  at: number,
  owner: { customer: string; subscription: string; checkoutSession?: string | null },
  kept: readonly unknown[] = [],
): string[] {
  return requests.map((d) => {
    const coupon = couponOf(store, d);
    if (!coupon) throw new Error(`No coupon for discount ${JSON.stringify(d)}`);
    const same = kept
      .map((id) => (typeof id === 'string' ? store.find(id) : undefined))
      .find(
        (k) =>
          k?.object === 'discount' &&
          (k.coupon as FakeObject).id === coupon.id &&
          (k.promotion_code ?? null) === d.promotion_code,
      );
    if (same) return same.id;
    const months = coupon.duration === 'repeating' ? Number(coupon.duration_in_months) : null;
    const discount = {
      id: newId('di'),
      object: 'discount',
      checkout_session: owner.checkoutSession ?? null,
      coupon: structuredClone(coupon),
      customer: owner.customer,
      end: months === null ? null : addInterval(at, 'month', months),
      invoice: null,
      invoice_item: null,
      promotion_code: d.promotion_code,
      start: at,
      subscription: owner.subscription,
      subscription_item: null,
    };
    store.put(discount as unknown as FakeObject);
    return discount.id;
  });
}

/** `once` discounts that have had their invoice. */
const spent = new WeakSet<object>();

/**
 * The subscription's discounts on an invoice for the period from `start`, as Stripe shows them:
 * each line's `discount_amounts`, the invoice's `discounts` and `total_discount_amounts`, and the
 * total and amounts due and paid less them. A `once` coupon takes off the first invoice with
 * something to discount; a `repeating` one those of periods that start before its end.
 */
export function applyDiscounts(
  store: FakeAccountStore,
  sub: FakeObject,
  invoice: FakeObject,
  start: number,
): void {
  const ids = ((sub.discounts ?? []) as unknown[]).filter((d): d is string => typeof d === 'string');
  const lines = (invoice.lines as { data: FakeObject[] }).data;
  const currency = String(invoice.currency);
  const remaining: Line[] = lines.map((l) => ({
    amount: Number(l.amount),
    product:
      ((l.pricing as { price_details?: { product?: string } } | undefined)?.price_details?.product ??
        ((l.price as FakeObject | undefined)?.product as string | undefined)) ||
      null,
  }));
  const totals: { amount: number; discount: string }[] = [];
  for (const id of ids) {
    const discount = store.find(id);
    if (!discount || (discount.end != null && start >= Number(discount.end))) continue;
    const coupon = discount.coupon as FakeObject;
    if (coupon.duration === 'once' && spent.has(discount)) continue;
    const off = couponAmounts(coupon, currency, remaining);
    const sum = off.reduce((a, b) => a + b, 0);
    if (sum === 0) continue;
    if (coupon.duration === 'once') spent.add(discount);
    off.forEach((amount, i) => {
      if (amount === 0) return;
      (lines[i].discount_amounts as unknown[]).push({ amount, discount: id });
      (lines[i].discounts as unknown[]).push(id);
      remaining[i].amount -= amount;
    });
    totals.push({ amount: sum, discount: id });
  }
  if (totals.length === 0) return;
  const total = Number(invoice.subtotal) - totals.reduce((a, t) => a + t.amount, 0);
  const due = Math.max(total, 0);
  Object.assign(invoice, {
    discounts: totals.map((t) => t.discount),
    total_discount_amounts: totals,
    total,
    total_excluding_tax: total,
    amount_due: due,
    amount_paid: invoice.status === 'paid' ? due : 0,
    amount_remaining: invoice.status === 'paid' ? 0 : due,
  });
}

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { StripeEvent } from '../../stripe-event';
import { buildEvent } from '../stripe-events';
import { BASIL_API } from '../stripe-objects';
import { randomCode } from '../stripe-ids';
import {
  FakeAccountStore,
  FakeStripeError,
  invalid,
  missing,
  newId,
  required,
  type FakeObject,
} from './fake-stripe-store';
import {
  arrayParam,
  boolParam,
  expandParam,
  intParam,
  metadataParam,
  numParam,
  objParam,
  requiredStr,
  strParam,
  type Params,
} from './fake-stripe-params';
import {
  addInterval,
  attachDiscounts,
  authenticateInvoicePayment,
  billAt,
  payInvoice,
  couponAmounts,
  couponOf,
  invoicePeriod,
  itemsOf,
  nextBillingMoment,
  type BillingCtx,
  type BillingMoment,
  type DiscountRequest,
} from './fake-stripe-billing';
import {
  FAKE_RETRY_DELAYS_SECONDS,
  WebhookSender,
  type FakeDelivery,
  type FakeWebhookTarget,
} from './fake-stripe-webhooks';
import { closeDispute, openDispute, pay, refund, settle, type PaymentMethod } from './fake-stripe-payments';

export { FAKE_RETRY_DELAYS_SECONDS, type FakeDelivery, type FakeWebhookTarget } from './fake-stripe-webhooks';
export { FAKE_PAYMENT_RETRY_DAYS, INDIA_PRE_DEBIT_SECONDS } from './fake-stripe-billing';

export type FakeStripeRequest = {
  method: string;
  /** e.g. `/v1/subscriptions/sub_…` */
  path: string;
  /** Query (GET) or form body (POST, DELETE), parsed with Stripe's bracket notation, values verbatim. */
  params: Params;
  idempotencyKey: string | null;
  stripeAccount: string | null;
  /** The secret key it was made with (`Authorization: Bearer sk_…`), to tell clients apart. */
  apiKey: string | null;
  status: number;
};

export type FakeStripeOptions = {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Unix seconds for `created` and period starts; the wall clock by default. */
  clock?: () => number;
  /**
   * An endpoint to send every recorded event to, signed with its secret, as Stripe sends to a
   * webhook endpoint: in order; a failed delivery is listed with `delivery_success=false` and tried
   * again after 1, 3 and 6 hours of the fake's time (`FAKE_RETRY_DELAYS_SECONDS`), while an endpoint
   * is set.
   */
  webhooks?: FakeWebhookTarget;
  /** Called after each delivery attempt (for progress output). */
  onDelivery?: (delivery: FakeDelivery) => void;
  /**
   * Milliseconds each API request waits before it is handled (default 0): Stripe's own time to
   * answer, and the network's, for measuring code that waits on them.
   */
  latencyMs?: number;
  /**
   * Stripe's rate limiter: API requests past this many in the last second (all endpoints and
   * accounts together) are refused with a 429, as Stripe refuses them (`rate_limit`). Off by
   * default; Stripe's test mode allows 25.
   */
  rateLimitPerSecond?: number;
};

/** What a buyer enters on the Checkout page. */
export type CheckoutPayment = {
  email?: string;
  /** A customer-facing code (`LAUNCH-10`), when the session allows promotion codes. */
  promotionCode?: string;
  /**
   * `card` (the default) is paid at once; `sepa_debit` (payment mode, in euros) completes the
   * session unpaid, its payment `processing` until `settlePayment`.
   */
  method?: PaymentMethod;
};

export type FakeStripe = {
  /** Base URL, e.g. `http://127.0.0.1:12111`: what `STRIPE_API_BASE` is set to. */
  url: string;
  port: number;
  /** Every API request received, in order. */
  readonly requests: FakeStripeRequest[];
  /** From now on, refuses API requests past `perSecond` in the last second (as `rateLimitPerSecond`); `undefined` takes them all. */
  setRateLimit(perSecond: number | undefined): void;
  /**
   * The connected account takes the platform's access away (it disconnects the platform, as
   * `account.application.deauthorized` tells): from now on every request made for it is refused
   * with 401, as Stripe refuses a key that no longer has access to the account. `false` gives it
   * back (the account connects again).
   */
  revokeAccess(account: string, revoked?: boolean): void;
  /**
   * Adds an event to the Events API (of `event.account`, or the platform), as if it had happened;
   * it is not sent to the webhook endpoint. The fake records its own events for what its API and
   * its Checkout page change.
   */
  emit(event: StripeEvent, options?: { deliverySuccess?: boolean }): void;
  /**
   * Pays an open Checkout session, as a buyer on the Checkout page would: the customer (created when
   * the session names none), the subscription (subscription mode) or a payment intent (payment
   * mode), the completed session, and their events. Returns the session as it is now.
   */
  completeCheckout(sessionId: string, options?: CheckoutPayment): FakeObject;
  /**
   * Moves the fake's time forward, billing every subscription on the way as Stripe would (renewals
   * with their paid invoices, trials ending, cancellations falling due) and retrying the failed
   * deliveries that fall due, in time order; each event is dated when it happened. Also
   * `POST /fake/advance` with `days` or `seconds`.
   */
  advance(seconds: number): { now: number; events: number };
  /**
   * From now on the customer's card is declined (or, with `false`, accepted again): a renewal's
   * payment fails (`invoice.payment_failed`, the subscription `past_due`) and Stripe tries again
   * after 3, 5 and 7 days of the fake's time (`FAKE_PAYMENT_RETRY_DAYS`), paying the invoice once
   * the card is accepted, else canceling the subscription after the last try. A new subscription
   * with something to pay is `incomplete` (not retried; `POST /v1/invoices/:id/pay` pays it) and
   * expires after 23 hours (`incomplete_expired`); Checkout turns the customer away. Also
   * `POST /fake/customers/cus_…/card_declines` with `declines=true|false`.
   */
  setCardDeclines(customerId: string, declines?: boolean): void;
  /**
   * Where the customer's card was issued (null: anywhere else). `IN` follows the RBI e-mandate
   * rules: a renewal is charged 26 hours after its invoice is finalized (the pre-debit notice,
   * `INDIA_PRE_DEBIT_SECONDS`), and one above INR 15,000 waits for the cardholder
   * (`invoice.payment_action_required`, the intent `requires_action`, the subscription `past_due`)
   * until `authenticatePayment`.
   * Also `POST /fake/customers/cus_…/card_country` with `country`.
   */
  setCardCountry(customerId: string, country: string | null): void;
  /**
   * The cardholder authenticates the charge an invoice waits for: it is charged now (paid, or
   * declined like any attempt). Also `POST /fake/payments/pi_…/authenticate`. Returns the invoice.
   */
  authenticatePayment(paymentIntentId: string): FakeObject;
  /**
   * The bank settles a debit left `processing` (a SEPA payment on the Checkout page): `succeeded`
   * (`charge.succeeded`, `payment_intent.succeeded`, `checkout.session.async_payment_succeeded`,
   * the session now `paid`) or `failed` (`charge.failed`, `payment_intent.payment_failed`,
   * `checkout.session.async_payment_failed`). Also `POST /fake/payments/pi_…/settle` with
   * `outcome`. Returns the payment intent.
   */
  settlePayment(paymentIntentId: string, outcome: 'succeeded' | 'failed'): FakeObject;
  /**
   * The buyer's bank disputes a payment (named by its charge or payment intent): the dispute and
   * `charge.dispute.created`, which no API call makes happen. Also `POST /fake/disputes` with `charge`
   * or `payment_intent` (and `reason`). Returns the dispute.
   */
  dispute(chargeOrPaymentIntent: string, options?: { reason?: string }): FakeObject;
  /**
   * The card network decides a dispute (`charge.dispute.closed`); `POST /v1/disputes/:id/close`, the
   * merchant accepting it, loses it too. Also `POST /fake/disputes/:id/close` with `status`.
   */
  closeDispute(disputeId: string, status: 'won' | 'lost'): FakeObject;
  /** The fake's time (unix seconds): its clock plus what `advance` added. */
  now(): number;
  /** Every webhook delivery attempted so far, in order. */
  readonly deliveries: readonly FakeDelivery[];
  /**
   * Sends the events recorded from now on, and the retries still due, to this endpoint, like
   * `webhooks`; null removes the endpoint, and with it the retries (as Stripe drops them).
   */
  forward(target: FakeWebhookTarget | null): void;
  /** Resolves once every event recorded so far has had its delivery attempt. */
  settled(): Promise<void>;
  /** Puts any Stripe object (an invoice built with the kit, say) where the API will find it. */
  seed(object: FakeObject, account?: string): void;
  /** An object as the fake holds it now. */
  get(id: string, account?: string): FakeObject | undefined;
  close(): Promise<void>;
};

/** The events a request caused, recorded once it succeeds (Stripe answers before it sends them). */
type PendingEvent = { type: string; object: FakeObject; previous?: Record<string, unknown> };

type Ctx = {
  store: FakeAccountStore;
  account: string | null;
  params: Params;
  now: number;
  base: string;
  events: PendingEvent[];
};

/** How long Stripe keeps an Idempotency-Key (it may forget it any time after). */
const IDEMPOTENCY_KEY_SECONDS = 86_400;

/** The API version whose object shapes the fake serves (period dates on items, `discounts[]`). */
export const FAKE_STRIPE_API_VERSION = BASIL_API;

/** Billing's view of a request: its store, its time, and its events. */
function billingOf(ctx: Ctx): BillingCtx {
  return {
    store: ctx.store,
    now: ctx.now,
    emit: (type, object, previous) =>
      ctx.events.push({
        type,
        object: structuredClone(object),
        ...(previous && Object.keys(previous).length > 0 && { previous }),
      }),
  };
}

/** Records `type` for `object` as it is now. */
function emitEvent(ctx: Ctx, type: string, object: FakeObject): void {
  ctx.events.push({ type, object: structuredClone(object) });
}

/**
 * Records `type` when `object` differs from `before` (a copy taken before the change), with the
 * earlier values of the top-level fields that changed, as Stripe's `previous_attributes`.
 */
function emitChange(ctx: Ctx, type: string, before: FakeObject, object: FakeObject): void {
  const previous: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(object)])) {
    if (JSON.stringify(before[key]) !== JSON.stringify(object[key])) previous[key] = before[key] ?? null;
  }
  if (Object.keys(previous).length === 0) return;
  ctx.events.push({ type, object: structuredClone(object), previous });
}
type Handler = (ctx: Ctx, req: Request) => unknown;

function list(items: FakeObject[], params: Params, url: string): Record<string, unknown> {
  const limit = Math.min(Math.max(intParam(params, 'limit') ?? 10, 1), 100);
  const after = strParam(params, 'starting_after');
  const before = strParam(params, 'ending_before');
  let start = 0;
  let end = items.length;
  if (after) {
    const i = items.findIndex((o) => o.id === after);
    if (i < 0) throw invalid('starting_after', `No such object: '${after}'`);
    start = i + 1;
  }
  if (before) {
    const i = items.findIndex((o) => o.id === before);
    if (i < 0) throw invalid('ending_before', `No such object: '${before}'`);
    end = i;
    start = Math.max(start, end - limit);
  }
  const page = items.slice(start, Math.min(end, start + limit));
  return { object: 'list', data: page, has_more: start + page.length < end, url };
}

/** `GET /v1/<kind>s/:id`. */
function retrieveRoute(kind: string): Handler {
  return (ctx, req) => ctx.store.get(kind, String(req.params.id));
}

/** `GET` of a list of one kind, narrowed by the request's `fields` that are set (each an id the objects name). */
function listRoute(kind: string, url: string, fields: readonly string[]): Handler {
  return (ctx) => {
    const wanted = fields.flatMap((f) => {
      const v = strParam(ctx.params, f);
      return v === undefined ? [] : [[f, v] as const];
    });
    return list(
      ctx.store.all(kind).filter((o) => wanted.every(([f, v]) => o[f] === v)),
      ctx.params,
      url,
    );
  };
}

function createdFilter(params: Params): (o: FakeObject) => boolean {
  const created = objParam(params, 'created');
  const exact = created ? undefined : intParam(params, 'created');
  const bound = (k: string) => (created && typeof created[k] === 'string' ? Number(created[k]) : undefined);
  const [gt, gte, lt, lte] = ['gt', 'gte', 'lt', 'lte'].map(bound);
  return (o) =>
    (exact === undefined || o.created === exact) &&
    (gt === undefined || o.created > gt) &&
    (gte === undefined || o.created >= gte) &&
    (lt === undefined || o.created < lt) &&
    (lte === undefined || o.created <= lte);
}

function priceOf(ctx: Ctx, id: string, paramName: string): FakeObject {
  const price = ctx.store.find(id);
  if (!price || price.object !== 'price')
    throw new FakeStripeError(
      400,
      'invalid_request_error',
      `No such price: '${id}'`,
      paramName,
      'resource_missing',
    );
  return price;
}

function subscriptionItem(
  ctx: Ctx,
  subscriptionId: string,
  spec: Params,
  periodStart: number,
  periodEnd: number,
  index: number,
): FakeObject {
  const priceId = strParam(spec, 'price');
  if (!priceId) throw required(`items[${index}][price]`);
  const quantity = intParam(spec, 'quantity') ?? 1;
  return {
    id: newId('si'),
    object: 'subscription_item',
    created: ctx.now,
    current_period_start: periodStart,
    current_period_end: periodEnd,
    discounts: [],
    metadata: metadataParam(spec),
    price: priceOf(ctx, priceId, `items[${index}][price]`),
    quantity,
    subscription: subscriptionId,
    tax_rates: [],
  };
}

function setItems(sub: FakeObject, items: FakeObject[]): void {
  sub.items = {
    object: 'list',
    data: items,
    has_more: false,
    total_count: items.length,
    url: `/v1/subscription_items?subscription=${sub.id}`,
  };
}

function discountsParam(ctx: Ctx, params: Params): DiscountRequest[] {
  return arrayParam(params, 'discounts').map((d, i) => {
    const coupon = strParam(d, 'coupon') ?? null;
    const promotionCode = strParam(d, 'promotion_code') ?? null;
    if (coupon) ctx.store.get('coupon', coupon);
    if (promotionCode) ctx.store.get('promotion_code', promotionCode, 'promotion code');
    if (!coupon && !promotionCode)
      throw invalid(`discounts[${i}]`, 'A discount needs a coupon or a promotion_code');
    return { coupon, promotion_code: promotionCode };
  });
}

function schedulePhases(ctx: Ctx, params: Params, firstStart: number | null = null): FakeObject[] {
  let cursor: number | null = firstStart;
  return arrayParam(params, 'phases').map((p, i) => {
    const startRaw = strParam(p, 'start_date');
    const start =
      startRaw === 'now' ? ctx.now : startRaw !== undefined ? Number(startRaw) : (cursor ?? ctx.now);
    const endRaw = strParam(p, 'end_date');
    const iterations = intParam(p, 'iterations');
    const duration = objParam(p, 'duration');
    const items = arrayParam(p, 'items').map((it, j) => {
      const price = strParam(it, 'price');
      if (!price) throw required(`phases[${i}][items][${j}][price]`);
      priceOf(ctx, price, `phases[${i}][items][${j}][price]`);
      return {
        price,
        quantity: intParam(it, 'quantity') ?? 1,
        metadata: metadataParam(it),
        discounts: [],
        tax_rates: [],
      };
    });
    if (items.length === 0) throw required(`phases[${i}][items]`);
    // The end of a phase given by iterations follows the price's interval; no proration is involved.
    let end: number | null = endRaw !== undefined ? Number(endRaw) : null;
    if (end === null && (iterations !== undefined || duration)) {
      const price = priceOf(ctx, items[0].price, `phases[${i}][items][0][price]`);
      const recurring = (price.recurring ?? { interval: 'month', interval_count: 1 }) as {
        interval: string;
        interval_count: number;
      };
      end = duration
        ? addInterval(start, String(duration.interval), Number(duration.interval_count ?? 1))
        : addInterval(start, recurring.interval, recurring.interval_count * (iterations as number));
    }
    cursor = end;
    return {
      id: `phase_${i}`,
      object: 'subscription_schedule_phase',
      created: ctx.now,
      start_date: start,
      end_date: end,
      items,
      metadata: metadataParam(p),
      proration_behavior: strParam(p, 'proration_behavior') ?? 'create_prorations',
      ...(iterations !== undefined && { iterations }),
      ...(duration && { duration }),
    };
  });
}

/** Stores a new object and records `<event prefix>.created` for it (null: no event). */
function created(
  ctx: Ctx,
  obj: Omit<FakeObject, 'created' | 'livemode'> & { created?: number },
  eventPrefix: string | null = String(obj.object),
): FakeObject {
  const stored = ctx.store.put({ created: ctx.now, livemode: false, ...obj } as unknown as FakeObject);
  if (eventPrefix) emitEvent(ctx, `${eventPrefix}.created`, stored);
  return stored;
}

type NewSubscription = {
  customer: string;
  /** `items[]` as the API takes them: `{ price, quantity?, metadata? }`. */
  items: Params[];
  trialDays?: number;
  metadata: Record<string, string>;
  discounts: DiscountRequest[];
  /** The Checkout session it comes from. */
  checkoutSession?: string;
  /** The schedule that starts it. */
  schedule?: string;
};

/** A subscription whose first period starts now (or its trial), and `customer.subscription.created`. */
function createSubscription(ctx: Ctx, spec: NewSubscription): FakeObject {
  ctx.store.get('customer', spec.customer);
  const id = newId('sub');
  if (spec.items.length === 0) throw required('items');
  const trialDays = spec.trialDays;
  if (trialDays !== undefined && (trialDays < 0 || trialDays > 730))
    throw invalid('trial_period_days', 'trial_period_days must be at most 730');
  const first = priceOf(ctx, strParam(spec.items[0], 'price') ?? '', 'items[0][price]');
  const recurring = first.recurring as { interval: string; interval_count: number } | null;
  if (!recurring) throw invalid('items[0][price]', 'The price must be recurring');
  const trialEnd = trialDays ? ctx.now + trialDays * 86_400 : null;
  const periodEnd = trialEnd ?? addInterval(ctx.now, recurring.interval, recurring.interval_count);
  const discounts = attachDiscounts(ctx.store, spec.discounts, ctx.now, {
    customer: spec.customer,
    subscription: id,
    checkoutSession: spec.checkoutSession,
  });
  const sub = created(
    ctx,
    {
      id,
      object: 'subscription',
      customer: spec.customer,
      // A card that declines leaves a subscription with something to pay `incomplete`.
      status: trialEnd ? 'trialing' : ctx.store.declining.has(spec.customer) ? 'incomplete' : 'active',
      billing_cycle_anchor: periodEnd,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      ended_at: null,
      currency: first.currency,
      discounts,
      latest_invoice: null,
      metadata: spec.metadata,
      pending_update: null,
      schedule: spec.schedule ?? null,
      start_date: ctx.now,
      trial_start: trialEnd ? ctx.now : null,
      trial_end: trialEnd,
    },
    null,
  );
  setItems(
    sub,
    spec.items.map((s, i) => subscriptionItem(ctx, id, s, ctx.now, periodEnd, i)),
  );
  emitEvent(ctx, 'customer.subscription.created', sub);
  // Stripe invoices the first period at once; a trial's invoice is for $0 (and is paid all the same).
  invoicePeriod(billingOf(ctx), sub, 'subscription_create', ctx.now, periodEnd, trialEnd !== null);
  return sub;
}

/** A new schedule's `start_date`: `now` (the default) or a unix time. */
function scheduleStartParam(ctx: Ctx): number {
  const raw = strParam(ctx.params, 'start_date');
  if (raw === undefined || raw === 'now') return ctx.now;
  const at = Number(raw);
  if (!Number.isInteger(at) || at <= 0) throw invalid('start_date', `Invalid start_date: ${raw}`);
  return at;
}

/** When a schedule that has not started yet starts its subscription; null once it has. */
function scheduleStart(schedule: FakeObject): number | null {
  if (schedule.status !== 'not_started') return null;
  return Number((schedule.phases as { start_date: number }[])[0].start_date);
}

/**
 * A schedule's start: its subscription, from the first phase's prices (and metadata), billed from
 * now, and the schedule active (`subscription_schedule.updated`).
 */
function startSchedule(ctx: Ctx, schedule: FakeObject, announce = true): void {
  const [phase] = schedule.phases as {
    start_date: number;
    end_date: number | null;
    items: { price: string; quantity: number }[];
    metadata: object;
  }[];
  const before = structuredClone(schedule);
  const sub = createSubscription(ctx, {
    customer: String(schedule.customer),
    items: phase.items.map((it) => ({ price: it.price, quantity: String(it.quantity) })),
    metadata: {
      ...(schedule.metadata as Record<string, string>),
      ...(phase.metadata as Record<string, string>),
    },
    discounts: [],
    schedule: String(schedule.id),
  });
  Object.assign(schedule, {
    status: 'active',
    subscription: sub.id,
    current_phase: { start_date: phase.start_date, end_date: phase.end_date },
  });
  if (announce) emitChange(ctx, 'subscription_schedule.updated', before, schedule);
}

/** The active promotion code a buyer typed, checked as Checkout checks it, or a 400. */
function redeemablePromotionCode(ctx: Ctx, code: string): FakeObject {
  const promo = ctx.store
    .all('promotion_code')
    .find((p) => p.active && String(p.code).toLowerCase() === code.toLowerCase());
  const coupon = promo?.coupon as FakeObject | undefined;
  const usable =
    promo &&
    (promo.expires_at === null || ctx.now < Number(promo.expires_at)) &&
    (promo.max_redemptions === null || Number(promo.times_redeemed) < Number(promo.max_redemptions)) &&
    coupon?.valid !== false;
  if (!usable) throw invalid('promotion_code', `This code is invalid: ${code}`);
  return promo;
}

/**
 * What Stripe does when a buyer pays an open Checkout session: a customer when the session names
 * none (always in subscription mode, on `customer_creation=always` in payment mode), the
 * subscription from the line items and `subscription_data` (its first invoice paid at once), or the
 * card payment (a payment intent and its charge; none when nothing is due), then the session
 * completes.
 */
function completeSession(ctx: Ctx, session: FakeObject, payment: CheckoutPayment): FakeObject {
  if (session.status === 'complete') return session;
  const email = payment.email;
  // Stripe expires a session at `expires_at`; the fake does when it is next paid for.
  if (session.status === 'open' && ctx.now >= Number(session.expires_at)) expireSession(ctx, session);
  if (session.status !== 'open')
    throw invalid('checkout_session', `This Checkout session is ${String(session.status)}.`);
  const mode = String(session.mode);
  const method = payment.method ?? 'card';
  if (method !== 'card' && (mode !== 'payment' || session.currency !== 'eur'))
    throw invalid('payment_method', `${method} is offered for one-time payments in euros only.`);
  const buyerEmail = email ?? (session.customer_email as string | null) ?? null;
  let customer = (session.customer as string | null) ?? null;
  if (!customer && (mode !== 'payment' || session.customer_creation === 'always')) {
    customer = created(ctx, {
      id: newId('cus'),
      object: 'customer',
      email: buyerEmail,
      name: null,
      metadata: {},
    }).id;
  }
  if (payment.promotionCode !== undefined) {
    if (!session.allow_promotion_codes)
      throw invalid('promotion_code', 'This Checkout session does not take promotion codes.');
    const promo = redeemablePromotionCode(ctx, payment.promotionCode);
    session.discounts = [{ coupon: null, promotion_code: promo.id }];
    priceSession(ctx, session);
  }
  const discounts = (session.discounts ?? []) as DiscountRequest[];
  // Checkout shows a declined card to the buyer and completes nothing.
  const paysToday =
    mode === 'payment' ? Number(session.amount_total) > 0 : mode === 'subscription' && !trialDaysOf(session);
  if (customer && paysToday && ctx.store.declining.has(customer))
    throw new FakeStripeError(402, 'card_error', 'Your card was declined.', undefined, 'card_declined');
  let subscription: FakeObject | null = null;
  if (mode === 'subscription') {
    const data = (session.subscription_data ?? {}) as Params;
    const lineItems = (session.line_items as { data: FakeObject[] }).data;
    subscription = createSubscription(ctx, {
      customer: customer!,
      items: lineItems.map((li) => ({
        price: (li.price as FakeObject).id,
        quantity: String(li.quantity),
      })),
      trialDays: intParam(data, 'trial_period_days'),
      metadata: metadataParam(data),
      discounts,
      checkoutSession: String(session.id),
    });
  }
  for (const d of discounts) {
    const promotion = d.promotion_code ? ctx.store.find(d.promotion_code) : undefined;
    if (promotion) promotion.times_redeemed = Number(promotion.times_redeemed ?? 0) + 1;
    const coupon = couponOf(ctx.store, d);
    if (coupon) coupon.times_redeemed = Number(coupon.times_redeemed ?? 0) + 1;
  }
  const due = mode === 'payment' ? Number(session.amount_total) : 0;
  const intentData = (session.payment_intent_data ?? {}) as Params;
  const intent =
    due > 0
      ? pay(
          billingOf(ctx),
          {
            amount: due,
            currency: String(session.currency),
            customer,
            email: buyerEmail,
            metadata: metadataParam(intentData),
            description: strParam(intentData, 'description') ?? null,
          },
          method,
        )
      : null;
  Object.assign(session, {
    status: 'complete',
    // Nothing is due today in setup mode, when a trial starts, or when a coupon takes it all off;
    // a debit is paid once the bank says so.
    payment_status:
      mode === 'setup' || subscription?.status === 'trialing' || (mode === 'payment' && due === 0)
        ? 'no_payment_required'
        : intent?.status === 'processing'
          ? 'unpaid'
          : 'paid',
    customer,
    customer_details: { email: buyerEmail, name: null, phone: null, address: null, tax_exempt: 'none' },
    subscription: subscription?.id ?? null,
    payment_intent: intent?.id ?? null,
  });
  emitEvent(ctx, 'checkout.session.completed', withoutLineItems(session));
  return session;
}

/** The free days a subscription-mode session starts with, if any. */
function trialDaysOf(session: FakeObject): number | undefined {
  if (session.mode !== 'subscription') return undefined;
  return intParam((session.subscription_data ?? {}) as Params, 'trial_period_days') || undefined;
}

/**
 * A session's totals, what is paid today: `amount_subtotal` from its line items (nothing when a
 * trial starts), `amount_total` less its discounts (whatever the coupon's duration),
 * `total_details.amount_discount`.
 */
function priceSession(ctx: Ctx, session: FakeObject): void {
  const items = (session.line_items as { data: FakeObject[] }).data;
  const currency = String(session.currency ?? '');
  const trial = trialDaysOf(session) !== undefined;
  const lines = items.map((li) => ({
    amount: trial ? 0 : Number(li.amount_total),
    product: String((li.price as FakeObject).product),
  }));
  const subtotal = lines.reduce((sum, l) => sum + l.amount, 0);
  let discount = 0;
  for (const d of (session.discounts ?? []) as DiscountRequest[]) {
    const coupon = couponOf(ctx.store, d);
    if (!coupon) continue;
    const off = couponAmounts(coupon, currency, lines);
    off.forEach((amount, i) => (lines[i].amount -= amount));
    discount += off.reduce((a, b) => a + b, 0);
  }
  Object.assign(session, {
    amount_subtotal: subtotal,
    amount_total: subtotal - discount,
    total_details: { amount_discount: discount, amount_shipping: 0, amount_tax: 0 },
  });
}

/** Stripe's session objects carry no line items unless asked to expand them: nor do its events. */
function withoutLineItems(session: FakeObject): FakeObject {
  const { line_items: _lineItems, ...shown } = session;
  return shown as FakeObject;
}

/** An open session ends unpaid: `checkout.session.expired`. */
function expireSession(ctx: Ctx, session: FakeObject): void {
  session.status = 'expired';
  emitEvent(ctx, 'checkout.session.expired', withoutLineItems(session));
}

/**
 * The customer's changes in the billing portal: `email` (their billing e-mail), `cancel` (at the end
 * of the period, Stripe's default) and `renew` (undo a pending cancellation) of one of their
 * subscriptions, named by `subscription`.
 */
function portalAction(ctx: Ctx, portal: FakeObject, action: string, body: Record<string, unknown>): void {
  const customer = ctx.store.get('customer', String(portal.customer));
  if (action === 'email') {
    const email = typeof body.email === 'string' ? body.email.trim() : '';
    if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw invalid('email', 'Enter a valid e-mail address.');
    const before = structuredClone(customer);
    customer.email = email;
    emitChange(ctx, 'customer.updated', before, customer);
    return;
  }
  if (action !== 'cancel' && action !== 'renew') throw missing('billing portal action', action);
  const sub = ctx.store.find(String(body.subscription ?? ''));
  if (!sub || sub.object !== 'subscription' || sub.customer !== customer.id || sub.status === 'canceled')
    throw missing('subscription', String(body.subscription ?? ''));
  const before = structuredClone(sub);
  sub.cancel_at_period_end = action === 'cancel';
  sub.canceled_at = action === 'cancel' ? ctx.now : null;
  emitChange(ctx, 'customer.subscription.updated', before, sub);
}

function portalPage(
  portal: FakeObject,
  customer: FakeObject | undefined,
  subscriptions: FakeObject[],
): string {
  const id = escapeHtml(String(portal.id));
  const form = (action: string, fields: string, label: string) =>
    `<form method="post" action="/billing_portal/${id}/${action}">${fields}<button type="submit">${label}</button></form>`;
  const rows = subscriptions.map((s) => {
    const item = itemsOf(s)[0];
    const price = item?.price as FakeObject | undefined;
    const what = `${escapeHtml(String(price?.id ?? ''))} (${escapeHtml(String(s.status))})`;
    const hidden = `<input type="hidden" name="subscription" value="${escapeHtml(s.id)}">`;
    return s.cancel_at_period_end
      ? `<li>${what}, ends at the end of its period ${form('renew', hidden, 'Renew plan')}</li>`
      : `<li>${what} ${form('cancel', hidden, 'Cancel plan')}</li>`;
  });
  const email = form(
    'email',
    `<label>Billing e-mail <input type="email" name="email" value="${escapeHtml(String(customer?.email ?? ''))}"></label>`,
    'Update',
  );
  const back = portal.return_url
    ? `<p><a href="${escapeHtml(String(portal.return_url))}">Return</a></p>`
    : '';
  return `<!doctype html><meta charset="utf-8"><title>Fake billing portal</title><h1>Fake Stripe billing portal</h1>${email}<h2>Subscriptions</h2><ul>${rows.join('') || '<li>None</li>'}</ul>${back}`;
}

/** A refused page action (a Stripe-shaped error) as a short HTML page; anything else is a fault. */
function sendErrorPage(res: Response, err: unknown): void {
  if (!(err instanceof FakeStripeError)) throw err;
  res
    .status(err.status)
    .type('html')
    .send(`<!doctype html><p>${escapeHtml(err.message)}</p>`);
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function checkoutPage(session: FakeObject): string {
  const id = escapeHtml(String(session.id));
  const total = `${Number(session.amount_total)} ${escapeHtml(String(session.currency ?? ''))}`;
  const email = session.customer
    ? ''
    : `<p><label>Email <input type="email" name="email" value="${escapeHtml(String(session.customer_email ?? ''))}"></label></p>`;
  const promotion = session.allow_promotion_codes
    ? '<p><label>Promotion code <input name="promotion_code"></label></p>'
    : '';
  // As Stripe's page does, a trial is started rather than paid for.
  const trialDays = trialDaysOf(session);
  const trial = trialDays ? `<p>${trialDays}-day free trial: nothing is paid today.</p>` : '';
  const debit =
    session.mode === 'payment' && session.currency === 'eur'
      ? ` <button type="submit" name="method" value="sepa_debit">Pay by SEPA Direct Debit</button>`
      : '';
  const action =
    session.status === 'open'
      ? `<form method="post" action="/checkout/${id}/complete">${email}${promotion}${trial}<p><button type="submit">${trialDays ? 'Start trial' : `Pay ${total}`}</button>${debit}</p></form>` +
        (session.cancel_url ? `<p><a href="${escapeHtml(String(session.cancel_url))}">Cancel</a></p>` : '')
      : `<p>This session is ${escapeHtml(String(session.status))}.</p>`;
  return `<!doctype html><meta charset="utf-8"><title>Fake Stripe Checkout</title><h1>Fake Stripe Checkout</h1><p>Session <code>${id}</code> (${escapeHtml(String(session.mode))}), total ${total}.</p>${action}<p>This page stands in for Stripe Checkout in tests and demos.</p>`;
}

function buildRoutes(fake: { failed: Map<string, Set<string>> }): [string, string, Handler][] {
  return [
    // Customers
    [
      'post',
      '/v1/customers',
      (ctx) =>
        created(ctx, {
          id: newId('cus'),
          object: 'customer',
          email: strParam(ctx.params, 'email') ?? null,
          name: strParam(ctx.params, 'name') ?? null,
          metadata: metadataParam(ctx.params),
        }),
    ],
    ['get', '/v1/customers/:id', (ctx, req) => ctx.store.get('customer', String(req.params.id))],
    [
      'post',
      '/v1/customers/:id',
      (ctx, req) => {
        const c = ctx.store.get('customer', String(req.params.id));
        const before = structuredClone(c);
        const email = strParam(ctx.params, 'email');
        if (email !== undefined) c.email = email;
        c.metadata = { ...(c.metadata as object), ...metadataParam(ctx.params) };
        emitChange(ctx, 'customer.updated', before, c);
        return c;
      },
    ],
    [
      'get',
      '/v1/customers',
      (ctx) => {
        const email = strParam(ctx.params, 'email');
        return list(
          ctx.store.all('customer').filter((c) => !email || c.email === email),
          ctx.params,
          '/v1/customers',
        );
      },
    ],

    // Products and prices
    [
      'post',
      '/v1/products',
      (ctx) =>
        created(ctx, {
          id: strParam(ctx.params, 'id') ?? newId('prod'),
          object: 'product',
          active: boolParam(ctx.params, 'active') ?? true,
          name: requiredStr(ctx.params, 'name'),
          metadata: metadataParam(ctx.params),
        }),
    ],
    ['get', '/v1/products/:id', (ctx, req) => ctx.store.get('product', String(req.params.id))],
    ['get', '/v1/products', (ctx) => list(ctx.store.all('product'), ctx.params, '/v1/products')],
    [
      'post',
      '/v1/prices',
      (ctx) => {
        const product = requiredStr(ctx.params, 'product');
        ctx.store.get('product', product);
        const unitAmount = intParam(ctx.params, 'unit_amount');
        if (unitAmount === undefined) throw required('unit_amount');
        const recurring = objParam(ctx.params, 'recurring');
        return created(ctx, {
          id: newId('price'),
          object: 'price',
          active: boolParam(ctx.params, 'active') ?? true,
          currency: requiredStr(ctx.params, 'currency'),
          product,
          unit_amount: unitAmount,
          unit_amount_decimal: String(unitAmount),
          nickname: strParam(ctx.params, 'nickname') ?? null,
          lookup_key: strParam(ctx.params, 'lookup_key') ?? null,
          recurring: recurring
            ? {
                interval: requiredStr(recurring, 'interval'),
                interval_count: intParam(recurring, 'interval_count') ?? 1,
                usage_type: 'licensed',
                meter: null,
                trial_period_days: null,
              }
            : null,
          type: recurring ? 'recurring' : 'one_time',
          metadata: metadataParam(ctx.params),
        });
      },
    ],
    ['get', '/v1/prices/:id', (ctx, req) => ctx.store.get('price', String(req.params.id))],
    [
      'post',
      '/v1/prices/:id',
      (ctx, req) => {
        const p = ctx.store.get('price', String(req.params.id));
        const before = structuredClone(p);
        const active = boolParam(ctx.params, 'active');
        if (active !== undefined) p.active = active;
        p.metadata = { ...(p.metadata as object), ...metadataParam(ctx.params) };
        emitChange(ctx, 'price.updated', before, p);
        return p;
      },
    ],
    [
      'get',
      '/v1/prices',
      (ctx) => {
        const product = strParam(ctx.params, 'product');
        const active = boolParam(ctx.params, 'active');
        return list(
          ctx.store
            .all('price')
            .filter(
              (p) => (!product || p.product === product) && (active === undefined || p.active === active),
            ),
          ctx.params,
          '/v1/prices',
        );
      },
    ],

    // Coupons and promotion codes
    [
      'post',
      '/v1/coupons',
      (ctx) => {
        const percentOff = numParam(ctx.params, 'percent_off');
        const amountOff = intParam(ctx.params, 'amount_off');
        if (percentOff === undefined && amountOff === undefined) throw required('percent_off');
        if (percentOff !== undefined && (percentOff <= 0 || percentOff > 100))
          throw invalid('percent_off', 'percent_off must be in (0, 100]');
        if (amountOff !== undefined && !strParam(ctx.params, 'currency')) throw required('currency');
        const duration = strParam(ctx.params, 'duration') ?? 'once';
        if (!['once', 'repeating', 'forever'].includes(duration))
          throw invalid('duration', `Invalid duration: ${duration}`);
        const months = intParam(ctx.params, 'duration_in_months');
        if (duration === 'repeating' && months === undefined) throw required('duration_in_months');
        const appliesTo = objParam(ctx.params, 'applies_to');
        return created(ctx, {
          id: strParam(ctx.params, 'id') ?? newId('co').replace(/^co_/, ''),
          object: 'coupon',
          percent_off: percentOff ?? null,
          amount_off: amountOff ?? null,
          currency: strParam(ctx.params, 'currency') ?? null,
          duration,
          duration_in_months: months ?? null,
          max_redemptions: intParam(ctx.params, 'max_redemptions') ?? null,
          redeem_by: intParam(ctx.params, 'redeem_by') ?? null,
          applies_to: appliesTo ? { products: arrayParam(appliesTo, 'products').map((p) => p.value) } : null,
          name: strParam(ctx.params, 'name') ?? null,
          times_redeemed: 0,
          valid: true,
          metadata: metadataParam(ctx.params),
        });
      },
    ],
    ['get', '/v1/coupons/:id', (ctx, req) => ctx.store.get('coupon', String(req.params.id))],
    [
      'post',
      '/v1/promotion_codes',
      (ctx) => {
        const promotion = objParam(ctx.params, 'promotion');
        const couponId =
          strParam(ctx.params, 'coupon') ?? (promotion ? strParam(promotion, 'coupon') : undefined);
        if (!couponId) throw required('promotion');
        const coupon = ctx.store.get('coupon', couponId);
        const code = strParam(ctx.params, 'code') ?? randomCode(8).toUpperCase();
        if (!/^[A-Za-z0-9-]+$/.test(code))
          throw invalid('code', 'Promotion codes may only contain letters, digits and dashes');
        if (
          ctx.store
            .all('promotion_code')
            .some((p) => p.active && String(p.code).toLowerCase() === code.toLowerCase())
        ) {
          throw invalid('code', `An active promotion code with code ${code} already exists.`);
        }
        const restrictions = objParam(ctx.params, 'restrictions') ?? {};
        return created(ctx, {
          id: newId('promo'),
          object: 'promotion_code',
          active: boolParam(ctx.params, 'active') ?? true,
          code,
          coupon,
          promotion: { type: 'coupon', coupon: coupon.id },
          customer: strParam(ctx.params, 'customer') ?? null,
          expires_at: intParam(ctx.params, 'expires_at') ?? null,
          max_redemptions: intParam(ctx.params, 'max_redemptions') ?? null,
          restrictions: {
            first_time_transaction: boolParam(restrictions, 'first_time_transaction') ?? false,
            minimum_amount: intParam(restrictions, 'minimum_amount') ?? null,
            minimum_amount_currency: strParam(restrictions, 'minimum_amount_currency') ?? null,
          },
          times_redeemed: 0,
          metadata: metadataParam(ctx.params),
        });
      },
    ],
    [
      'get',
      '/v1/promotion_codes/:id',
      (ctx, req) => ctx.store.get('promotion_code', String(req.params.id), 'promotion code'),
    ],
    [
      'post',
      '/v1/promotion_codes/:id',
      (ctx, req) => {
        const p = ctx.store.get('promotion_code', String(req.params.id), 'promotion code');
        const before = structuredClone(p);
        const active = boolParam(ctx.params, 'active');
        if (active !== undefined) p.active = active;
        emitChange(ctx, 'promotion_code.updated', before, p);
        return p;
      },
    ],
    [
      'get',
      '/v1/promotion_codes',
      (ctx) => {
        const code = strParam(ctx.params, 'code');
        const active = boolParam(ctx.params, 'active');
        return list(
          ctx.store
            .all('promotion_code')
            .filter(
              (p) =>
                (!code || String(p.code).toLowerCase() === code.toLowerCase()) &&
                (active === undefined || p.active === active),
            ),
          ctx.params,
          '/v1/promotion_codes',
        );
      },
    ],

    // Checkout
    [
      'post',
      '/v1/checkout/sessions',
      (ctx) => {
        const mode = requiredStr(ctx.params, 'mode');
        if (!['payment', 'subscription', 'setup'].includes(mode))
          throw invalid('mode', `Invalid mode: ${mode}`);
        const lineItems = arrayParam(ctx.params, 'line_items').map((li, i) => {
          const price = priceOf(ctx, strParam(li, 'price') ?? '', `line_items[${i}][price]`);
          const quantity = intParam(li, 'quantity') ?? 1;
          if ((mode === 'subscription') !== Boolean(price.recurring)) {
            throw invalid(
              `line_items[${i}][price]`,
              `A ${mode}-mode session cannot use this ${String(price.type)} price`,
            );
          }
          return {
            id: newId('li'),
            object: 'item',
            price,
            quantity,
            amount_total: (price.unit_amount as number) * quantity,
            currency: price.currency,
          };
        });
        if (mode !== 'setup' && lineItems.length === 0) throw required('line_items');
        const customer = strParam(ctx.params, 'customer');
        if (customer) ctx.store.get('customer', customer);
        const discounts = discountsParam(ctx, ctx.params);
        if (discounts.length && boolParam(ctx.params, 'allow_promotion_codes')) {
          throw invalid(
            'discounts',
            'You may only specify one of these parameters: allow_promotion_codes, discounts.',
          );
        }
        const id = `cs_test_${newId('x').slice(2)}`;
        const subscriptionData = objParam(ctx.params, 'subscription_data');
        const expiresAt = intParam(ctx.params, 'expires_at') ?? ctx.now + 86_400;
        if (expiresAt < ctx.now + 1_800 || expiresAt > ctx.now + 86_400)
          throw invalid(
            'expires_at',
            'The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.',
          );
        const customerCreation = strParam(ctx.params, 'customer_creation');
        if (customerCreation && !['always', 'if_required'].includes(customerCreation))
          throw invalid('customer_creation', `Invalid customer_creation: ${customerCreation}`);
        // Stripe records no event for a new session: its first is `checkout.session.completed`.
        const session = created(
          ctx,
          {
            id,
            object: 'checkout.session',
            mode,
            status: 'open',
            payment_status: 'unpaid',
            url: `${ctx.base}/checkout/${id}`,
            success_url: strParam(ctx.params, 'success_url') ?? null,
            cancel_url: strParam(ctx.params, 'cancel_url') ?? null,
            customer: customer ?? null,
            customer_email: strParam(ctx.params, 'customer_email') ?? null,
            client_reference_id: strParam(ctx.params, 'client_reference_id') ?? null,
            metadata: metadataParam(ctx.params),
            allow_promotion_codes: boolParam(ctx.params, 'allow_promotion_codes') ?? null,
            customer_creation: customerCreation ?? null,
            customer_details: null,
            discounts,
            subscription_data: subscriptionData ?? null,
            payment_intent_data: objParam(ctx.params, 'payment_intent_data') ?? null,
            amount_total: lineItems.reduce((s, li) => s + li.amount_total, 0),
            currency: (lineItems[0]?.currency as string | undefined) ?? null,
            subscription: null,
            payment_intent: null,
            invoice: null,
            expires_at: expiresAt,
            line_items: {
              object: 'list',
              data: lineItems,
              has_more: false,
              url: `/v1/checkout/sessions/${id}/line_items`,
            },
          },
          null,
        );
        priceSession(ctx, session);
        return session;
      },
    ],
    [
      'get',
      '/v1/checkout/sessions/:id',
      (ctx, req) => ctx.store.get('checkout.session', String(req.params.id), 'checkout session'),
    ],
    [
      'post',
      '/v1/checkout/sessions/:id/expire',
      (ctx, req) => {
        const session = ctx.store.get('checkout.session', String(req.params.id), 'checkout session');
        if (session.status !== 'open')
          throw invalid(
            'session',
            `Only Checkout Sessions with a status of open can be expired. This session has a status of ${String(session.status)}.`,
          );
        expireSession(ctx, session);
        return session;
      },
    ],
    [
      'get',
      '/v1/checkout/sessions/:id/line_items',
      (ctx, req) => ctx.store.get('checkout.session', String(req.params.id), 'checkout session').line_items,
    ],

    // Subscriptions
    [
      'post',
      '/v1/subscriptions',
      (ctx) =>
        createSubscription(ctx, {
          customer: requiredStr(ctx.params, 'customer'),
          items: arrayParam(ctx.params, 'items'),
          trialDays: intParam(ctx.params, 'trial_period_days'),
          metadata: metadataParam(ctx.params),
          discounts: discountsParam(ctx, ctx.params),
        }),
    ],
    ['get', '/v1/subscriptions/:id', (ctx, req) => ctx.store.get('subscription', String(req.params.id))],
    [
      'post',
      '/v1/subscriptions/:id',
      (ctx, req) => {
        const sub = ctx.store.get('subscription', String(req.params.id));
        if (sub.status === 'canceled')
          throw invalid(
            'subscription',
            'A canceled subscription can only update its cancellation_details and metadata.',
          );
        const before = structuredClone(sub);
        const items = [...itemsOf(sub)];
        arrayParam(ctx.params, 'items').forEach((spec, i) => {
          const itemId = strParam(spec, 'id');
          if (!itemId) {
            // Without an item id Stripe adds an item rather than changing one.
            const [start, end] = [
              items[0].current_period_start as number,
              items[0].current_period_end as number,
            ];
            items.push(subscriptionItem(ctx, sub.id, spec, start, end, i));
            return;
          }
          const item = items.find((it) => it.id === itemId);
          if (!item) throw invalid(`items[${i}][id]`, `No such subscription item: '${itemId}'`);
          if (boolParam(spec, 'deleted')) {
            items.splice(items.indexOf(item), 1);
            return;
          }
          const priceId = strParam(spec, 'price');
          const quantity = intParam(spec, 'quantity');
          if (priceId) {
            item.price = priceOf(ctx, priceId, `items[${i}][price]`);
            // A new price without a quantity starts again at 1.
            item.quantity = quantity ?? 1;
          } else if (quantity !== undefined) item.quantity = quantity;
        });
        setItems(sub, items);
        const cancelAtPeriodEnd = boolParam(ctx.params, 'cancel_at_period_end');
        if (cancelAtPeriodEnd !== undefined) {
          sub.cancel_at_period_end = cancelAtPeriodEnd;
          sub.canceled_at = cancelAtPeriodEnd ? ctx.now : null;
        }
        if (ctx.params.cancel_at !== undefined) {
          // An empty value clears it; a time must be in the future. (No proration: none is computed here.)
          const cancelAt = intParam(ctx.params, 'cancel_at');
          if (cancelAt !== undefined && cancelAt <= ctx.now)
            throw invalid('cancel_at', 'cancel_at must be in the future.');
          sub.cancel_at = cancelAt ?? null;
        }
        if (ctx.params.metadata !== undefined)
          sub.metadata = { ...(sub.metadata as object), ...metadataParam(ctx.params) };
        if (ctx.params.discounts !== undefined)
          sub.discounts = attachDiscounts(
            ctx.store,
            discountsParam(ctx, ctx.params),
            ctx.now,
            { customer: String(sub.customer), subscription: sub.id },
            sub.discounts as unknown[],
          );
        emitChange(ctx, 'customer.subscription.updated', before, sub);
        return sub;
      },
    ],
    [
      'delete',
      '/v1/subscriptions/:id',
      (ctx, req) => {
        const sub = ctx.store.get('subscription', String(req.params.id));
        if (sub.status !== 'canceled') {
          Object.assign(sub, { status: 'canceled', canceled_at: ctx.now, ended_at: ctx.now });
          emitEvent(ctx, 'customer.subscription.deleted', sub);
        }
        return sub;
      },
    ],
    [
      'get',
      '/v1/subscriptions',
      (ctx) => {
        const price = strParam(ctx.params, 'price');
        const customer = strParam(ctx.params, 'customer');
        const status = strParam(ctx.params, 'status');
        return list(
          ctx.store
            .all('subscription')
            .filter(
              (s) =>
                (!customer || s.customer === customer) &&
                (!price || itemsOf(s).some((it) => (it.price as FakeObject).id === price)) &&
                (status === 'all' || (status ? s.status === status : s.status !== 'canceled')),
            ),
          ctx.params,
          '/v1/subscriptions',
        );
      },
    ],

    // Subscription schedules
    [
      'post',
      '/v1/subscription_schedules',
      (ctx) => {
        const fromSubscription = strParam(ctx.params, 'from_subscription');
        const id = newId('sub_sched');
        if (fromSubscription) {
          const sub = ctx.store.get('subscription', fromSubscription);
          if (sub.schedule)
            throw invalid(
              'from_subscription',
              `The subscription is already attached to a schedule (${String(sub.schedule)}).`,
            );
          const subBefore = structuredClone(sub);
          sub.schedule = id;
          emitChange(ctx, 'customer.subscription.updated', subBefore, sub);
          const items = itemsOf(sub);
          return created(ctx, {
            id,
            object: 'subscription_schedule',
            customer: sub.customer,
            subscription: sub.id,
            status: 'active',
            end_behavior: 'release',
            metadata: {},
            released_subscription: null,
            phases: [
              {
                start_date: items[0].current_period_start,
                end_date: items[0].current_period_end,
                items: items.map((it) => ({
                  price: (it.price as FakeObject).id,
                  quantity: it.quantity,
                  metadata: {},
                  discounts: [],
                  tax_rates: [],
                })),
                proration_behavior: 'create_prorations',
                metadata: {},
              },
            ],
          });
        }
        const customer = requiredStr(ctx.params, 'customer');
        ctx.store.get('customer', customer);
        const schedule = created(
          ctx,
          {
            id,
            object: 'subscription_schedule',
            customer,
            subscription: null,
            status: 'not_started',
            current_phase: null,
            end_behavior: strParam(ctx.params, 'end_behavior') ?? 'release',
            metadata: metadataParam(ctx.params),
            released_subscription: null,
            phases: schedulePhases(ctx, ctx.params, scheduleStartParam(ctx)),
          },
          null,
        );
        // A first phase from `now` (or an earlier date) starts at once, and the schedule is created
        // active; a later one starts as the clock gets there.
        if (scheduleStart(schedule)! <= ctx.now) startSchedule(ctx, schedule, false);
        emitEvent(ctx, 'subscription_schedule.created', schedule);
        return schedule;
      },
    ],
    [
      'get',
      '/v1/subscription_schedules/:id',
      (ctx, req) => ctx.store.get('subscription_schedule', String(req.params.id), 'subscription schedule'),
    ],
    [
      'post',
      '/v1/subscription_schedules/:id',
      (ctx, req) => {
        const s = ctx.store.get('subscription_schedule', String(req.params.id), 'subscription schedule');
        if (s.status === 'released' || s.status === 'canceled' || s.status === 'completed') {
          throw invalid('schedule', `You cannot update a subscription schedule that is ${String(s.status)}.`);
        }
        const before = structuredClone(s);
        if (ctx.params.phases !== undefined) s.phases = schedulePhases(ctx, ctx.params);
        const endBehavior = strParam(ctx.params, 'end_behavior');
        if (endBehavior) s.end_behavior = endBehavior;
        if (ctx.params.metadata !== undefined)
          s.metadata = { ...(s.metadata as object), ...metadataParam(ctx.params) };
        emitChange(ctx, 'subscription_schedule.updated', before, s);
        return s;
      },
    ],
    [
      'post',
      '/v1/subscription_schedules/:id/release',
      (ctx, req) => {
        const s = ctx.store.get('subscription_schedule', String(req.params.id), 'subscription schedule');
        if (s.status !== 'active' && s.status !== 'not_started')
          throw invalid(
            'schedule',
            `You cannot release a subscription schedule that is ${String(s.status)}.`,
          );
        const sub = s.subscription ? ctx.store.find(String(s.subscription)) : undefined;
        if (sub) {
          const subBefore = structuredClone(sub);
          sub.schedule = null;
          emitChange(ctx, 'customer.subscription.updated', subBefore, sub);
        }
        Object.assign(s, {
          status: 'released',
          released_at: ctx.now,
          released_subscription: s.subscription,
          subscription: null,
        });
        emitEvent(ctx, 'subscription_schedule.released', s);
        return s;
      },
    ],

    // Billing portal
    [
      'post',
      '/v1/billing_portal/sessions',
      (ctx) => {
        const customer = requiredStr(ctx.params, 'customer');
        ctx.store.get('customer', customer);
        const id = newId('bps');
        return created(ctx, {
          id,
          object: 'billing_portal.session',
          customer,
          return_url: strParam(ctx.params, 'return_url') ?? null,
          url: `${ctx.base}/billing_portal/${id}`,
        });
      },
    ],

    // Payments: what Checkout's payment mode and invoices charged, refunds, disputes
    ['get', '/v1/payment_intents/:id', retrieveRoute('payment_intent')],
    ['get', '/v1/charges/:id', retrieveRoute('charge')],
    ['get', '/v1/charges', listRoute('charge', '/v1/charges', ['customer', 'payment_intent'])],
    ['get', '/v1/invoice_payments/:id', retrieveRoute('invoice_payment')],
    ['get', '/v1/invoice_payments', listRoute('invoice_payment', '/v1/invoice_payments', ['invoice'])],
    ['post', '/v1/refunds', (ctx) => refund(billingOf(ctx), ctx.params)],
    ['get', '/v1/refunds/:id', retrieveRoute('refund')],
    ['get', '/v1/refunds', listRoute('refund', '/v1/refunds', ['charge', 'payment_intent'])],
    ['get', '/v1/disputes/:id', retrieveRoute('dispute')],
    ['get', '/v1/disputes', listRoute('dispute', '/v1/disputes', ['charge', 'payment_intent'])],
    // Accepting a dispute loses it.
    [
      'post',
      '/v1/disputes/:id/close',
      (ctx, req) => closeDispute(billingOf(ctx), ctx.store.get('dispute', String(req.params.id)), 'lost'),
    ],

    // Events
    [
      'get',
      '/v1/events',
      (ctx) => {
        const inWindow = createdFilter(ctx.params);
        const type = strParam(ctx.params, 'type');
        const types = arrayParam(ctx.params, 'types').map((t) => String(t.value));
        const deliverySuccess = boolParam(ctx.params, 'delivery_success');
        const failed = fake.failed.get(ctx.account ?? '') ?? new Set<string>();
        return list(
          ctx.store
            .all('event')
            .filter(
              (e) =>
                inWindow(e) &&
                (!type ||
                  e.type === type ||
                  (type.endsWith('*') && String(e.type).startsWith(type.slice(0, -1)))) &&
                (types.length === 0 || types.includes(String(e.type))) &&
                (deliverySuccess === undefined || deliverySuccess === !failed.has(e.id)),
            ),
          ctx.params,
          '/v1/events',
        );
      },
    ],
    ['get', '/v1/events/:id', (ctx, req) => ctx.store.get('event', String(req.params.id))],

    // Invoices
    ['get', '/v1/invoices/:id', (ctx, req) => ctx.store.get('invoice', String(req.params.id))],
    [
      'post',
      '/v1/invoices/:id/pay',
      (ctx, req) => payInvoice(billingOf(ctx), ctx.store.get('invoice', String(req.params.id))),
    ],
    [
      'get',
      '/v1/invoices',
      (ctx) => {
        const subscription = strParam(ctx.params, 'subscription');
        const customer = strParam(ctx.params, 'customer');
        return list(
          ctx.store.all('invoice').filter((inv) => {
            const parent = inv.parent as
              { subscription_details?: { subscription?: string } } | null | undefined;
            const subId =
              (inv.subscription as string | undefined) ?? parent?.subscription_details?.subscription;
            return (!subscription || subId === subscription) && (!customer || inv.customer === customer);
          }),
          ctx.params,
          '/v1/invoices',
        );
      },
    ],
  ];
}

function expand(obj: unknown, ctx: Ctx): unknown {
  // Expansion of the string references named in `expand[]`, along dotted paths as Stripe allows
  // (`customer`, `latest_invoice.payment_intent`; `data.customer` on each object of a list).
  return expandParam(ctx.params).reduce((out, path) => expandPath(out, path.split('.'), ctx), obj);
}

function expandPath(value: unknown, path: readonly string[], ctx: Ctx): unknown {
  if (path.length === 0 || typeof value !== 'object' || value === null) return value;
  const [field, ...rest] = path;
  const obj = value as Record<string, unknown>;
  if (!(field in obj)) return value;
  const ref = obj[field];
  if (field === 'data' && Array.isArray(ref) && obj.object === 'list')
    return { ...obj, data: ref.map((item) => expandPath(item, rest, ctx)) };
  const found = typeof ref === 'string' ? (ctx.store.find(ref) ?? ref) : ref;
  return { ...obj, [field]: expandPath(found, rest, ctx) };
}

const RATE_LIMITED = new FakeStripeError(
  429,
  'invalid_request_error',
  'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
  undefined,
  'rate_limit',
);

/** Stripe's answer to a request for a connected account that has taken the platform's access away. */
function noAccess(account: string): FakeStripeError {
  return new FakeStripeError(
    401,
    'invalid_request_error',
    `The provided key does not have access to account '${account}' (or that account does not exist). ` +
      'Application access may have been revoked.',
  );
}

/** Whether one more request now goes past `perSecond` in the last second (never without a limit). */
function rateLimiter(perSecond: number | undefined): () => boolean {
  if (perSecond === undefined) return () => false;
  if (!(Number.isInteger(perSecond) && perSecond >= 1))
    throw new RangeError(`rateLimitPerSecond must be a whole number of 1 or more; got ${perSecond}`);
  const taken: number[] = [];
  return () => {
    const now = performance.now();
    while (taken.length > 0 && taken[0] <= now - 1_000) taken.shift();
    if (taken.length >= perSecond) return true;
    taken.push(now);
    return false;
  };
}

/**
 * Starts a small stateful imitation of Stripe's v1 API for tests and demos. Point the real SDK at it:
 * `STRIPE_API_BASE=http://127.0.0.1:12111` ⇒ `new Stripe(key, stripeConfigForApiBase(base))`.
 * It stores and echoes what it is told, records the events Stripe would record for those changes
 * (in the Events API, and sent to `webhooks` when given), completes Checkout sessions paid on its
 * Checkout page (charging the card in payment mode), bills what falls due as its time moves on,
 * refunds, and opens and closes disputes on request; it does not prorate or tax.
 */
export async function startFakeStripe(options: FakeStripeOptions = {}): Promise<FakeStripe> {
  const clock = options.clock ?? (() => Math.floor(Date.now() / 1000));
  /** How far `advance` has moved the fake's time past its clock (seconds). */
  let offset = 0;
  const now = () => clock() + offset;
  const host = options.host ?? '127.0.0.1';
  const accounts = new Map<string, FakeAccountStore>();
  const storeFor = (account: string | null | undefined) => {
    const key = account ?? '';
    let s = accounts.get(key);
    if (!s) accounts.set(key, (s = new FakeAccountStore()));
    return s;
  };
  const requests: FakeStripeRequest[] = [];
  const idempotent = new Map<string, { status: number; body: unknown; fingerprint: string; at: number }>();
  /** Per account: events whose delivery failed (what `delivery_success=false` lists). */
  const state = { failed: new Map<string, Set<string>>() };
  const markFailed = (account: string | null, eventId: string) => {
    const key = account ?? '';
    if (!state.failed.has(key)) state.failed.set(key, new Set());
    state.failed.get(key)!.add(eventId);
  };
  const deliveries: FakeDelivery[] = [];
  let target: FakeWebhookTarget | null = options.webhooks ?? null;
  /** Failed deliveries to try again, earliest first. */
  let retries: { event: FakeObject; attempt: number; due: number }[] = [];
  const sender = new WebhookSender((d) => {
    const stored = storeFor(d.account).find(d.eventId);
    if (d.ok) {
      state.failed.get(d.account ?? '')?.delete(d.eventId);
      if (stored) stored.pending_webhooks = 0;
    } else {
      markFailed(d.account, d.eventId);
      const delay = FAKE_RETRY_DELAYS_SECONDS[d.attempt - 1];
      if (delay !== undefined && target && stored) {
        d.nextAttemptAt = now() + delay;
        retries.push({ event: stored, attempt: d.attempt + 1, due: d.nextAttemptAt });
        retries.sort((a, b) => a.due - b.due);
      }
    }
    deliveries.push(d);
    options.onDelivery?.(d);
  });
  /** Sends the retries due by `at` (the fake's time), in the order they fell due. */
  const sendRetriesDue = (at: number) => {
    if (!target) {
      retries = [];
      return;
    }
    while (retries.length > 0 && retries[0].due <= at) {
      const { event, attempt } = retries.shift()!;
      sender.send(structuredClone(event), target, attempt);
    }
  };
  // Retries also fall due as the fake's clock runs on by itself.
  const retryTimer = setInterval(() => sendRetriesDue(now()), 1_000);
  retryTimer.unref();
  let base = '';

  const newCtx = (account: string | null, params: Params): Ctx => ({
    store: storeFor(account),
    account,
    params,
    now: now(),
    base,
    events: [],
  });
  /** Records what a request (or the Checkout page: no request) caused, and sends it to the endpoint. */
  const record = (ctx: Ctx, request: { id: string | null; idempotency_key: string | null }) => {
    for (const pending of ctx.events) {
      const event = buildEvent(pending.type, pending.object, {
        apiVersion: FAKE_STRIPE_API_VERSION,
        created: ctx.now,
        ...(ctx.account && { account: ctx.account }),
        ...(pending.previous && { previousAttributes: pending.previous }),
        pendingWebhooks: target ? 1 : 0,
      });
      event.request = request;
      ctx.store.put(event as unknown as FakeObject);
      if (target) sender.send(structuredClone(event) as unknown as FakeObject, target);
    }
    ctx.events.length = 0;
  };
  const advance = (seconds: number): { now: number; events: number } => {
    if (!Number.isInteger(seconds) || seconds <= 0 || seconds > 10 * 366 * 86_400)
      throw invalid('seconds', 'Advance by a whole number of seconds (or days), up to ten years.');
    const end = now() + seconds;
    let events = 0;
    for (;;) {
      // The earliest moment any subscription of any account falls due, up to the end.
      let next: { account: string | null; sub: FakeObject; moment: BillingMoment } | null = null;
      for (const [key, store] of accounts) {
        for (const sub of store.all('subscription')) {
          const moment = nextBillingMoment(store, sub);
          if (moment && moment.at <= end && (!next || moment.at < next.moment.at))
            next = { account: key === '' ? null : key, sub, moment };
        }
      }
      // Schedules that start their subscription before then.
      let starting: { account: string | null; schedule: FakeObject; at: number } | null = null;
      for (const [key, store] of accounts) {
        for (const schedule of store.all('subscription_schedule')) {
          const at = scheduleStart(schedule);
          if (at !== null && at <= end && (!starting || at < starting.at))
            starting = { account: key === '' ? null : key, schedule, at };
        }
      }
      // Retries due before the next billing moment (or the end) go first, at their time.
      const until = Math.min(next?.moment.at ?? end, starting?.at ?? end);
      if (retries.length > 0 && retries[0].due <= until) {
        offset += Math.max(0, retries[0].due - now());
        sendRetriesDue(retries[0].due);
        continue;
      }
      if (starting && (!next || starting.at <= next.moment.at)) {
        offset += Math.max(0, starting.at - now());
        const ctx = newCtx(starting.account, {});
        startSchedule(ctx, starting.schedule);
        events += ctx.events.length;
        record(ctx, { id: null, idempotency_key: null });
        continue;
      }
      if (!next) break;
      offset += Math.max(0, next.moment.at - now());
      const ctx = newCtx(next.account, {});
      billAt(billingOf(ctx), next.sub, next.moment);
      events += ctx.events.length;
      record(ctx, { id: null, idempotency_key: null });
    }
    offset += end - now();
    return { now: now(), events };
  };
  /** An object of this kind in whichever account holds it (pages are reached by id alone). */
  const findAnywhere = (
    id: string,
    kind: string,
  ): { object: FakeObject; account: string | null } | undefined => {
    for (const [key, store] of accounts) {
      const o = store.find(id);
      if (o?.object === kind) return { object: o, account: key === '' ? null : key };
    }
    return undefined;
  };
  const findSession = (id: string) => {
    const found = findAnywhere(id, 'checkout.session');
    return found && { session: found.object, account: found.account };
  };
  const complete = (id: string, payment: CheckoutPayment): FakeObject => {
    const found = findSession(id);
    if (!found) throw missing('checkout session', id);
    const ctx = newCtx(found.account, {});
    try {
      completeSession(ctx, found.session, payment);
    } finally {
      // A session found past its expiry is expired (and its event recorded) even as payment is refused.
      record(ctx, { id: null, idempotency_key: null });
    }
    return found.session;
  };

  const disputeOf = (id: string, reason: string | undefined): FakeObject => {
    const found =
      findAnywhere(id, 'charge') ??
      (() => {
        const intent = findAnywhere(id, 'payment_intent');
        const charge = intent && storeFor(intent.account).find(String(intent.object.latest_charge));
        return charge && { object: charge, account: intent.account };
      })();
    if (!found) throw missing('charge or payment intent', id);
    const ctx = newCtx(found.account, {});
    const dispute = openDispute(billingOf(ctx), found.object, reason);
    record(ctx, { id: null, idempotency_key: null });
    return dispute;
  };
  const settlePayment = (id: string, outcome: string): FakeObject => {
    if (outcome !== 'succeeded' && outcome !== 'failed')
      throw invalid('outcome', 'A payment settles as succeeded or failed.');
    const found = findAnywhere(id, 'payment_intent');
    if (!found) throw missing('payment_intent', id);
    const ctx = newCtx(found.account, {});
    const billing = billingOf(ctx);
    settle(billing, found.object, outcome);
    const session = ctx.store.all('checkout.session').find((x) => x.payment_intent === id);
    if (session) {
      if (outcome === 'succeeded') session.payment_status = 'paid';
      emitEvent(ctx, `checkout.session.async_payment_${outcome}`, withoutLineItems(session));
    }
    record(ctx, { id: null, idempotency_key: null });
    return found.object;
  };
  const setCardCountry = (id: string, country: string | null): void => {
    const found = findAnywhere(id, 'customer');
    if (!found) throw missing('customer', id);
    if (country !== null && !/^[A-Z]{2}$/.test(country))
      throw invalid('country', 'A card country is a two-letter ISO code, such as IN.');
    const countries = storeFor(found.account).cardCountry;
    if (country === null) countries.delete(id);
    else countries.set(id, country);
  };
  const authenticatePayment = (id: string): FakeObject => {
    const found = findAnywhere(id, 'payment_intent');
    if (!found) throw missing('payment_intent', id);
    const ctx = newCtx(found.account, {});
    const invoice = authenticateInvoicePayment(billingOf(ctx), found.object);
    record(ctx, { id: null, idempotency_key: null });
    return invoice;
  };
  const setCardDeclines = (id: string, declines: boolean): void => {
    const found = findAnywhere(id, 'customer');
    if (!found) throw missing('customer', id);
    const declining = storeFor(found.account).declining;
    if (declines) declining.add(id);
    else declining.delete(id);
  };
  const decide = (id: string, status: string): FakeObject => {
    if (status !== 'won' && status !== 'lost') throw invalid('status', 'A dispute closes as won or lost.');
    const found = findAnywhere(id, 'dispute');
    if (!found) throw missing('dispute', id);
    const ctx = newCtx(found.account, {});
    closeDispute(billingOf(ctx), found.object, status);
    record(ctx, { id: null, idempotency_key: null });
    return found.object;
  };

  const app = express();
  app.disable('x-powered-by');
  const latencyMs = options.latencyMs ?? 0;
  if (!(latencyMs >= 0)) throw new RangeError(`latencyMs must be 0 or more; got ${latencyMs}`);
  if (latencyMs > 0)
    app.use((_req: Request, _res: Response, next: NextFunction) => setTimeout(next, latencyMs));
  app.set('query parser', 'extended');
  app.use(express.urlencoded({ extended: true, parameterLimit: 10_000 }));

  /** Answers a call to the fake's own routes (`/fake/…`): its result, or a Stripe-shaped error. */
  const fakeCall = (res: Response, call: () => unknown) => {
    try {
      res.json(structuredClone(call()));
    } catch (err) {
      if (!(err instanceof FakeStripeError)) throw err;
      res.status(err.status).json(err.toBody());
    }
  };
  // Not Stripe's API: moves the fake's time (see `advance`), e.g. `curl -X POST …/fake/advance -d days=30`.
  app.post('/fake/advance', (req, res) => {
    const body = {
      ...(req.query as Record<string, unknown>),
      ...((req.body ?? {}) as Record<string, unknown>),
    };
    const number = (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN);
    const seconds =
      body.days !== undefined
        ? number(body.days) * 86_400
        : body.seconds !== undefined
          ? number(body.seconds)
          : NaN;
    fakeCall(res, () => ({ object: 'fake_clock', ...advance(seconds) }));
  });
  // Not Stripe's API either: what a card network or a bank does, e.g.
  // `curl -X POST …/fake/disputes -d charge=ch_…`.
  app.post('/fake/disputes', (req, res) => {
    const body = (req.body ?? {}) as Params;
    fakeCall(res, () => {
      const id = strParam(body, 'charge') ?? strParam(body, 'payment_intent');
      if (!id) throw required('charge');
      return disputeOf(id, strParam(body, 'reason'));
    });
  });
  app.post('/fake/customers/:id/card_declines', (req, res) => {
    const body = (req.body ?? {}) as Params;
    fakeCall(res, () => {
      const declines = boolParam(body, 'declines') ?? true;
      setCardDeclines(String(req.params.id), declines);
      return { object: 'fake_card_declines', customer: String(req.params.id), declines };
    });
  });
  app.post('/fake/customers/:id/card_country', (req, res) => {
    const body = (req.body ?? {}) as Params;
    fakeCall(res, () => {
      const country = strParam(body, 'country') ?? null;
      setCardCountry(String(req.params.id), country);
      return { object: 'fake_card_country', customer: String(req.params.id), country };
    });
  });
  app.post('/fake/payments/:id/authenticate', (req, res) => {
    fakeCall(res, () => authenticatePayment(String(req.params.id)));
  });
  app.post('/fake/payments/:id/settle', (req, res) => {
    const body = (req.body ?? {}) as Params;
    fakeCall(res, () => settlePayment(String(req.params.id), strParam(body, 'outcome') ?? ''));
  });
  app.post('/fake/disputes/:id/close', (req, res) => {
    const body = (req.body ?? {}) as Params;
    fakeCall(res, () => decide(String(req.params.id), strParam(body, 'status') ?? ''));
  });
  const notFoundPage = '<!doctype html><title>Not found</title><p>No such checkout session.</p>';
  app.get('/checkout/:id', (req, res) => {
    const found = findSession(String(req.params.id));
    if (!found) {
      res.status(404).type('html').send(notFoundPage);
      return;
    }
    res.type('html').send(checkoutPage(found.session));
  });
  // The buyer pays: the session completes and the buyer returns to `success_url`, as from Stripe.
  app.post('/checkout/:id/complete', (req, res) => {
    const found = findSession(String(req.params.id));
    if (!found) {
      res.status(404).type('html').send(notFoundPage);
      return;
    }
    const field = (name: string): string | undefined => {
      const v = (req.body as Record<string, unknown> | undefined)?.[name];
      return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
    };
    let session: FakeObject;
    try {
      const method = field('method');
      session = complete(found.session.id, {
        email: field('email'),
        promotionCode: field('promotion_code'),
        ...(method && { method: method as PaymentMethod }),
      });
    } catch (err) {
      sendErrorPage(res, err);
      return;
    }
    const success = session.success_url ? String(session.success_url) : null;
    if (success) res.redirect(303, success.replace('{CHECKOUT_SESSION_ID}', session.id));
    else res.type('html').send(checkoutPage(session));
  });
  const findPortal = (id: string) => {
    const found = findAnywhere(id, 'billing_portal.session');
    return found && { portal: found.object, account: found.account };
  };
  const portalNotFound = '<!doctype html><title>Not found</title><p>No such billing portal session.</p>';
  app.get('/billing_portal/:id', (req, res) => {
    const found = findPortal(String(req.params.id));
    if (!found) {
      res.status(404).type('html').send(portalNotFound);
      return;
    }
    const store = storeFor(found.account);
    const customer = store.find(String(found.portal.customer));
    const subscriptions = store
      .all('subscription')
      .filter((s) => s.customer === found.portal.customer && s.status !== 'canceled');
    res.type('html').send(portalPage(found.portal, customer, subscriptions));
  });
  // What a customer changes in the portal, as Stripe records it: the object updated and its event.
  app.post('/billing_portal/:id/:action', (req, res) => {
    const found = findPortal(String(req.params.id));
    if (!found) {
      res.status(404).type('html').send(portalNotFound);
      return;
    }
    const ctx = newCtx(found.account, {});
    const body = (req.body ?? {}) as Record<string, unknown>;
    try {
      portalAction(ctx, found.portal, String(req.params.action), body);
    } catch (err) {
      sendErrorPage(res, err);
      return;
    }
    record(ctx, { id: null, idempotency_key: null });
    res.redirect(303, `/billing_portal/${found.portal.id}`);
  });

  let overRate = rateLimiter(options.rateLimitPerSecond);
  const revoked = new Set<string>();
  for (const [method, path, handler] of buildRoutes(state)) {
    app[method as 'get' | 'post' | 'delete'](path, (req: Request, res: Response) => {
      const account = req.header('stripe-account') ?? null;
      const key = req.header('idempotency-key') ?? null;
      const params = (method === 'get' ? req.query : (req.body ?? {})) as Params;
      const logRequest = (status: number) =>
        requests.push({
          method: req.method,
          path: req.path,
          params: structuredClone(params),
          idempotencyKey: key,
          stripeAccount: account,
          apiKey: /^Bearer (.+)$/.exec(req.header('authorization') ?? '')?.[1] ?? null,
          status,
        });
      if (account !== null && revoked.has(account)) {
        logRequest(401);
        res.status(401).json(noAccess(account).toBody());
        return;
      }
      if (overRate()) {
        logRequest(429);
        res.status(429).json(RATE_LIMITED.toBody());
        return;
      }
      const fingerprint = JSON.stringify([req.method, req.path, account, params]);
      const slot = key && method !== 'get' ? `${account ?? ''}|${key}` : null;
      // Stripe forgets a key 24 hours after its first use: the same key then makes a new object.
      const kept = slot ? idempotent.get(slot) : undefined;
      const seen = kept && now() - kept.at < IDEMPOTENCY_KEY_SECONDS ? kept : undefined;
      if (seen) {
        if (seen.fingerprint !== fingerprint) {
          const err = new FakeStripeError(
            400,
            'idempotency_error',
            `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
          );
          logRequest(400);
          res.status(400).json(err.toBody());
          return;
        }
        logRequest(seen.status);
        res.status(seen.status).setHeader('idempotent-replayed', 'true').json(seen.body);
        return;
      }
      let status = 200;
      let body: unknown;
      const requestId = `req_${randomCode(14)}`;
      const ctx = newCtx(account, params);
      try {
        body = structuredClone(expand(handler(ctx, req), ctx));
      } catch (err) {
        if (!(err instanceof FakeStripeError)) throw err;
        status = err.status;
        body = err.toBody();
      }
      // What a refused request did all the same (a declined charge) is recorded too.
      record(ctx, { id: requestId, idempotency_key: key });
      if (slot) idempotent.set(slot, { status, body, fingerprint, at: now() });
      logRequest(status);
      res.status(status).setHeader('request-id', requestId).json(body);
    });
  }
  app.use((req: Request, res: Response) => {
    res.status(404).json({
      error: {
        type: 'invalid_request_error',
        message: `Unrecognized request URL (${req.method}: ${req.path}).`,
      },
    });
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).json({ error: { type: 'api_error', message: err.message } });
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 0, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const port = (server.address() as AddressInfo).port;
  base = `http://${host}:${port}`;

  return {
    url: base,
    port,
    requests,
    setRateLimit: (perSecond) => void (overRate = rateLimiter(perSecond)),
    revokeAccess: (account, revoke = true) => void (revoke ? revoked.add(account) : revoked.delete(account)),
    deliveries,
    advance,
    now,
    forward(next) {
      target = next;
      if (!next) retries = [];
    },
    emit(event, opts = {}) {
      storeFor(event.account).put(structuredClone(event) as unknown as FakeObject);
      if (opts.deliverySuccess === false) markFailed(event.account ?? null, event.id);
    },
    setCardDeclines: (id, declines = true) => setCardDeclines(id, declines),
    setCardCountry,
    authenticatePayment: (id) => structuredClone(authenticatePayment(id)),
    settlePayment: (id, outcome) => structuredClone(settlePayment(id, outcome)),
    dispute: (id, opts = {}) => structuredClone(disputeOf(id, opts.reason)),
    closeDispute: (id, status) => structuredClone(decide(id, status)),
    completeCheckout(sessionId, payment = {}) {
      return structuredClone(complete(sessionId, payment));
    },
    settled: () => sender.settled(),
    seed(object, account) {
      if (!object.id || !object.object) throw missing('object', String(object.id));
      storeFor(account).put(
        structuredClone({ livemode: false, ...object, created: object.created ?? now() }),
      );
    },
    get(id, account) {
      const obj = storeFor(account).find(id);
      return obj && structuredClone(obj);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        clearInterval(retryTimer);
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** `STRIPE_API_BASE` (e.g. `http://127.0.0.1:12111`) → the `stripe` SDK's `{ host, port, protocol }`. */
export function stripeConfigForApiBase(base: string): {
  host: string;
  port: number;
  protocol: 'http' | 'https';
} {
  const url = new URL(base);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return { host: url.hostname, port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443, protocol };
}

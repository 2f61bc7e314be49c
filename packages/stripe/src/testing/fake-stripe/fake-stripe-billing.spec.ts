import Stripe from 'stripe';
import { translateInvoice } from '../../translate/invoice.translate';
import { translateSubscription } from '../../translate/subscription.translate';
import { INDIA_PRE_DEBIT_SECONDS, type FakeStripe } from './fake-stripe';
import { fakeStripeWithSdk, PAID_INVOICE_EVENTS } from './fake-stripe-sdk';

// The fake's billing as time passes: first invoices, renewals, trials ending, cancellations.

const NOW = 1_767_225_600; // 2026-01-01T00:00:00Z
const DAY = 86_400;

describe('fake Stripe billing', () => {
  let fake: FakeStripe;
  let stripe: Stripe;

  beforeEach(async () => ({ fake, stripe } = await fakeStripeWithSdk(NOW)));
  afterEach(() => fake.close());

  async function subscribe(interval: 'week' | 'month', extra: Partial<Stripe.SubscriptionCreateParams> = {}) {
    const product = await stripe.products.create({ name: 'Gold' });
    const price = await stripe.prices.create({
      product: product.id,
      unit_amount: 1200,
      currency: 'eur',
      recurring: { interval },
    });
    const customer = await stripe.customers.create({ email: 'm@example.com' });
    const sub = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id, quantity: 2 }],
      ...extra,
    });
    return { product, price, customer, sub };
  }

  const invoicesOf = async (sub: string) =>
    (await stripe.invoices.list({ subscription: sub, limit: 100 })).data
      .map((i) => translateInvoice(i))
      .reverse();
  const typesSince = async (created: number) =>
    (await stripe.events.list({ created: { gte: created }, limit: 100 })).data.map((e) => e.type).reverse();

  it('invoices the first period at once, paid, in the shape the translators read', async () => {
    const { sub, price, customer } = await subscribe('month');
    const [first] = await invoicesOf(sub.id);
    expect(first).toMatchObject({
      customerId: customer.id,
      subscriptionId: sub.id,
      billingReason: 'subscription_create',
      status: 'paid',
      paid: true,
      amountPaid: 2400,
      currency: 'eur',
    });
    expect(first.lines).toEqual([
      expect.objectContaining({
        amount: 2400,
        priceId: price.id,
        quantity: 2,
        proration: false,
        periodStart: NOW * 1000,
        periodEnd: Date.UTC(2026, 1, 1),
        description: '2 × Gold',
      }),
    ]);
    expect((await stripe.subscriptions.retrieve(sub.id)).latest_invoice).toBe(first.id);
    const paid = (await stripe.events.list({ type: 'invoice.paid' })).data[0];
    expect(paid.data.object).toMatchObject({ id: first.id, customer_email: 'm@example.com' });
  });

  it('charges the card for each invoice, tied to it by an invoice payment, and refunds it on request', async () => {
    const { sub, customer } = await subscribe('month');
    fake.advance(31 * DAY);
    const invoices = await invoicesOf(sub.id);
    expect(invoices.map((i) => i.amountPaid)).toEqual([2400, 2400]);
    const charges = [];
    for (const invoice of invoices) {
      const [payment] = (await stripe.invoicePayments.list({ invoice: invoice.id })).data;
      expect(payment).toMatchObject({
        invoice: invoice.id,
        amount_paid: 2400,
        status: 'paid',
        is_default: true,
      });
      const intent = await stripe.paymentIntents.retrieve(payment.payment.payment_intent as string);
      expect(intent).toMatchObject({ amount: 2400, customer: customer.id, status: 'succeeded' });
      charges.push(await stripe.charges.retrieve(intent.latest_charge as string));
    }
    expect(charges.map((c) => [c.amount, c.customer, c.billing_details.email])).toEqual([
      [2400, customer.id, 'm@example.com'],
      [2400, customer.id, 'm@example.com'],
    ]);
    expect(charges[0].created).toBe(NOW);
    expect(charges[1].created).toBe(Date.UTC(2026, 1, 1) / 1000);
    // The owner refunds the renewal: the charge says so; the subscription goes on.
    await stripe.refunds.create({ charge: charges[1].id });
    expect(await stripe.charges.retrieve(charges[1].id)).toMatchObject({
      refunded: true,
      amount_refunded: 2400,
    });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  });

  it('a declined renewal leaves the subscription past due; a retry once the card is accepted pays it', async () => {
    const { sub, customer } = await subscribe('month');
    fake.setCardDeclines(customer.id);
    const renewal = Date.UTC(2026, 1, 1) / 1000;
    fake.advance(renewal - NOW + 3600);
    expect(await typesSince(renewal)).toEqual([
      'customer.subscription.updated',
      'invoice.created',
      'invoice.finalized',
      'payment_intent.created',
      'charge.failed',
      'payment_intent.payment_failed',
      'invoice.payment_failed',
      'customer.subscription.updated',
    ]);
    const open = (await stripe.invoices.list({ subscription: sub.id })).data[0];
    expect(open).toMatchObject({
      status: 'open',
      amount_due: 2400,
      amount_paid: 0,
      amount_remaining: 2400,
      attempt_count: 1,
      next_payment_attempt: renewal + 3 * DAY,
    });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    const [payment] = (await stripe.invoicePayments.list({ invoice: open.id })).data;
    expect(payment).toMatchObject({ status: 'open', amount_paid: null });
    const intent = await stripe.paymentIntents.retrieve(payment.payment.payment_intent as string);
    expect(intent).toMatchObject({
      status: 'requires_payment_method',
      last_payment_error: { code: 'card_declined', type: 'card_error' },
    });

    // The first retry, three days on, is declined too.
    fake.advance(3 * DAY);
    expect(await typesSince(renewal + 3 * DAY)).toEqual([
      'charge.failed',
      'payment_intent.payment_failed',
      'invoice.payment_failed',
    ]);
    expect((await stripe.invoices.retrieve(open.id)).next_payment_attempt).toBe(renewal + 8 * DAY);

    // The card is accepted again: the next retry pays the invoice and the subscription is active.
    fake.setCardDeclines(customer.id, false);
    fake.advance(5 * DAY);
    expect(await typesSince(renewal + 8 * DAY)).toEqual([
      'charge.succeeded',
      'payment_intent.succeeded',
      'invoice_payment.paid',
      'invoice.paid',
      'invoice.payment_succeeded',
      'customer.subscription.updated',
    ]);
    expect(await stripe.invoices.retrieve(open.id)).toMatchObject({
      status: 'paid',
      amount_paid: 2400,
      attempt_count: 3,
      next_payment_attempt: null,
    });
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
    expect((await stripe.charges.list({ payment_intent: intent.id })).data.map((c) => c.status)).toEqual([
      'succeeded',
      'failed',
      'failed',
    ]);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  });

  it('cancels a subscription whose renewal is declined at every retry', async () => {
    const { sub, customer } = await subscribe('month');
    const post = (path: string, body: string) =>
      fetch(`${fake.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    expect((await post('/fake/customers/cus_unknown/card_declines', 'declines=true')).status).toBe(404);
    const declining = await post(`/fake/customers/${customer.id}/card_declines`, 'declines=true');
    expect(declining.status).toBe(200);
    expect(await declining.json()).toEqual({
      object: 'fake_card_declines',
      customer: customer.id,
      declines: true,
    });
    const renewal = Date.UTC(2026, 1, 1) / 1000;
    fake.advance(renewal - NOW + 20 * DAY);
    const failures = (await stripe.events.list({ type: 'invoice.payment_failed', limit: 10 })).data;
    expect(failures.map((e) => e.created).reverse()).toEqual([
      renewal,
      renewal + 3 * DAY,
      renewal + 8 * DAY,
      renewal + 15 * DAY,
    ]);
    const [deleted] = (await stripe.events.list({ type: 'customer.subscription.deleted' })).data;
    expect(deleted.created).toBe(renewal + 15 * DAY);
    expect(deleted.data.object).toMatchObject({
      id: sub.id,
      status: 'canceled',
      ended_at: renewal + 15 * DAY,
      cancellation_details: { reason: 'payment_failed' },
    });
    expect((await stripe.invoices.list({ subscription: sub.id })).data[0]).toMatchObject({
      status: 'open',
      attempt_count: 4,
      next_payment_attempt: null,
    });
  });

  it('charges an Indian card’s renewal after the 26-hour pre-debit notice, and one above INR 15,000 once authenticated', async () => {
    const customer = await stripe.customers.create({ email: 'asha@example.in' });
    const product = await stripe.products.create({ name: 'Gold' });
    const price = (unit_amount: number) =>
      stripe.prices.create({
        product: product.id,
        unit_amount,
        currency: 'inr',
        recurring: { interval: 'month' },
      });
    const small = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: (await price(99_900)).id }],
    });
    const large = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: (await price(2_000_000)).id }],
    });
    fake.setCardCountry(customer.id, 'IN');
    expect(() => fake.setCardCountry(customer.id, 'India')).toThrow(/two-letter/);
    const renewal = Date.UTC(2026, 1, 1) / 1000;

    // At the renewal: invoiced, finalized, not charged yet; the subscriptions stay active.
    fake.advance(renewal - NOW + 3600);
    const latest = async (sub: string) => (await stripe.invoices.list({ subscription: sub })).data[0];
    for (const sub of [small, large]) {
      expect(await latest(sub.id)).toMatchObject({
        billing_reason: 'subscription_cycle',
        status: 'open',
        amount_paid: 0,
        next_payment_attempt: renewal + INDIA_PRE_DEBIT_SECONDS,
      });
      expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
    }

    // 26 hours on: the small one is charged and paid; the large one waits for the cardholder.
    fake.advance(INDIA_PRE_DEBIT_SECONDS);
    expect(await latest(small.id)).toMatchObject({ status: 'paid', amount_paid: 99_900 });
    const waiting = await latest(large.id);
    expect(waiting).toMatchObject({ status: 'open', next_payment_attempt: null });
    const [action] = (await stripe.events.list({ type: 'invoice.payment_action_required' })).data;
    expect(action.created).toBe(renewal + INDIA_PRE_DEBIT_SECONDS);
    expect((action.data.object as Stripe.Invoice).id).toBe(waiting.id);
    const [payment] = (await stripe.invoicePayments.list({ invoice: waiting.id })).data;
    const pi = payment.payment.payment_intent as string;
    expect(await stripe.paymentIntents.retrieve(pi)).toMatchObject({
      status: 'requires_action',
      next_action: { type: 'use_stripe_sdk' },
    });
    expect((await stripe.subscriptions.retrieve(large.id)).status).toBe('past_due');
    expect((await stripe.subscriptions.retrieve(small.id)).status).toBe('active');
    // Nothing more happens by itself: Stripe does not retry an Indian card.
    fake.advance(10 * DAY);
    expect((await latest(large.id)).status).toBe('open');

    // Authenticated (over HTTP here): charged and paid.
    const post = (path: string) => fetch(`${fake.url}${path}`, { method: 'POST' });
    const authenticated = await post(`/fake/payments/${pi}/authenticate`);
    expect(authenticated.status).toBe(200);
    expect(await authenticated.json()).toMatchObject({
      id: waiting.id,
      status: 'paid',
      amount_paid: 2_000_000,
    });
    expect((await stripe.paymentIntents.retrieve(pi)).status).toBe('succeeded');
    expect((await stripe.subscriptions.retrieve(large.id)).status).toBe('active');
    expect((await post(`/fake/payments/${pi}/authenticate`)).status).toBe(400);
  });

  it('leaves a subscription whose first payment is declined incomplete: paid later it is active, else it expires after 23 hours', async () => {
    const product = await stripe.products.create({ name: 'Gold' });
    const price = await stripe.prices.create({
      product: product.id,
      unit_amount: 1200,
      currency: 'eur',
      recurring: { interval: 'month' },
    });
    const customer = await stripe.customers.create({ email: 'kim@example.com' });
    fake.setCardDeclines(customer.id);
    const subscribe = () =>
      stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });

    const paidLater = await subscribe();
    expect(paidLater.status).toBe('incomplete');
    const invoice = (await stripe.invoices.list({ subscription: paidLater.id })).data[0];
    expect(invoice).toMatchObject({
      status: 'open',
      billing_reason: 'subscription_create',
      next_payment_attempt: null,
    });
    expect(
      (await stripe.events.list({ type: 'customer.subscription.created' })).data[0].data.object,
    ).toMatchObject({
      status: 'incomplete',
    });
    // Paying while the card still declines: a card error, and the attempt is on record.
    await expect(stripe.invoices.pay(invoice.id)).rejects.toMatchObject({
      statusCode: 402,
      code: 'card_declined',
    });
    expect((await stripe.events.list({ type: 'invoice.payment_failed' })).data).toHaveLength(2);
    fake.setCardDeclines(customer.id, false);
    expect(await stripe.invoices.pay(invoice.id)).toMatchObject({
      status: 'paid',
      amount_paid: 1200,
      attempt_count: 3,
    });
    expect((await stripe.subscriptions.retrieve(paidLater.id)).status).toBe('active');
    await expect(stripe.invoices.pay(invoice.id)).rejects.toMatchObject({ statusCode: 400 });

    fake.setCardDeclines(customer.id);
    const neverPaid = await subscribe();
    expect(neverPaid.status).toBe('incomplete');
    fake.advance(23 * 3600 - 1);
    expect((await stripe.subscriptions.retrieve(neverPaid.id)).status).toBe('incomplete');
    fake.advance(1);
    const expired = await stripe.subscriptions.retrieve(neverPaid.id);
    expect(expired).toMatchObject({ status: 'incomplete_expired', ended_at: NOW + 23 * 3600 });
    const [update] = (await stripe.events.list({ type: 'customer.subscription.updated' })).data;
    expect(update.data.object).toMatchObject({ id: neverPaid.id, status: 'incomplete_expired' });
    expect(update.data.previous_attributes).toMatchObject({ status: 'incomplete' });
    // Nothing is billed for it afterwards, and its invoice cannot be paid.
    fake.advance(40 * DAY);
    expect((await stripe.invoices.list({ subscription: neverPaid.id })).data).toHaveLength(1);
    const unpaid = (await stripe.invoices.list({ subscription: neverPaid.id })).data[0];
    await expect(stripe.invoices.pay(unpaid.id)).rejects.toMatchObject({ statusCode: 400 });

    // On Checkout, a customer whose card declines is turned away: nothing completes.
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      line_items: [{ price: price.id, quantity: 1 }],
      success_url: 'https://example.com/thanks',
    });
    expect(() => fake.completeCheckout(session.id)).toThrow(/declined/);
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
  });

  it('gives a trial a $0 first invoice, then bills the first paid period when the trial ends', async () => {
    const { sub } = await subscribe('month', { trial_period_days: 14 });
    expect(sub.status).toBe('trialing');
    const [trial] = await invoicesOf(sub.id);
    expect(trial).toMatchObject({ amountPaid: 0, billingReason: 'subscription_create' });
    expect(trial.lines[0]).toMatchObject({ amount: 0, description: 'Trial period for Gold' });

    expect(fake.advance(13 * DAY)).toEqual({ now: NOW + 13 * DAY, events: 0 });
    const trialEnd = NOW + 14 * DAY;
    expect(fake.advance(2 * DAY)).toEqual({ now: NOW + 15 * DAY, events: 9 });
    expect(await typesSince(trialEnd)).toEqual(['customer.subscription.updated', ...PAID_INVOICE_EVENTS]);
    const [updated] = (await stripe.events.list({ type: 'customer.subscription.updated' })).data;
    expect(updated.created).toBe(trialEnd);
    expect(updated.data.previous_attributes).toMatchObject({ status: 'trialing' });
    const now = translateSubscription(await stripe.subscriptions.retrieve(sub.id));
    expect(now).toMatchObject({ status: 'active' });
    expect(now.items[0]).toMatchObject({
      currentPeriodStart: trialEnd * 1000,
      currentPeriodEnd: Date.UTC(2026, 1, 15),
    });
    const invoices = await invoicesOf(sub.id);
    expect(invoices.map((i) => [i.billingReason, i.amountPaid])).toEqual([
      ['subscription_create', 0],
      ['subscription_cycle', 2400],
    ]);
  });

  it('renews subscriptions of every account in time order, each event dated when it happened', async () => {
    const weekly = (await subscribe('week')).sub;
    const account = { stripeAccount: 'acct_billing' };
    const product = await stripe.products.create({ name: 'Silver' }, account);
    const price = await stripe.prices.create(
      { product: product.id, unit_amount: 500, currency: 'eur', recurring: { interval: 'month' } },
      account,
    );
    const customer = await stripe.customers.create({}, account);
    const monthly = await stripe.subscriptions.create(
      { customer: customer.id, items: [{ price: price.id }] },
      account,
    );

    fake.advance(35 * DAY);
    expect(fake.now()).toBe(NOW + 35 * DAY);
    const weeklyCycles = (await invoicesOf(weekly.id)).filter(
      (i) => i.billingReason === 'subscription_cycle',
    );
    expect(weeklyCycles.map((i) => i.lines[0].periodStart)).toEqual(
      [7, 14, 21, 28, 35].map((d) => (NOW + d * DAY) * 1000),
    );
    const monthlyPaid = (await stripe.events.list({ type: 'invoice.paid' }, account)).data;
    expect(monthlyPaid.map((e) => e.created)).toEqual([Date.UTC(2026, 1, 1) / 1000, NOW]);
    expect(monthlyPaid.every((e) => e.account === 'acct_billing')).toBe(true);
    expect(
      translateSubscription(await stripe.subscriptions.retrieve(monthly.id, {}, account)).items[0]
        .currentPeriodEnd,
    ).toBe(Date.UTC(2026, 2, 1));
    // The platform's events follow one another in time.
    const created = (await stripe.events.list({ limit: 100 })).data.map((e) => e.created).reverse();
    expect(created).toEqual([...created].sort((a, b) => a - b));
  });

  it('ends a subscription at the period end asked for, or at cancel_at, and bills nothing after', async () => {
    const atEnd = (await subscribe('month')).sub;
    await stripe.subscriptions.update(atEnd.id, { cancel_at_period_end: true });
    const bounded = (await subscribe('week')).sub;
    const cancelAt = NOW + 10 * DAY;
    await stripe.subscriptions.update(bounded.id, { cancel_at: cancelAt });

    fake.advance(90 * DAY);
    expect(await stripe.subscriptions.retrieve(atEnd.id)).toMatchObject({
      status: 'canceled',
      ended_at: Date.UTC(2026, 1, 1) / 1000,
      canceled_at: NOW,
    });
    expect(await stripe.subscriptions.retrieve(bounded.id)).toMatchObject({
      status: 'canceled',
      ended_at: cancelAt,
    });
    // One renewal of the weekly plan (day 7) before its cancel_at (day 10); none of the other.
    expect((await invoicesOf(atEnd.id)).map((i) => i.billingReason)).toEqual(['subscription_create']);
    expect((await invoicesOf(bounded.id)).map((i) => i.billingReason)).toEqual([
      'subscription_create',
      'subscription_cycle',
    ]);
    const deleted = (await stripe.events.list({ type: 'customer.subscription.deleted' })).data;
    expect(deleted.map((e) => e.created).sort()).toEqual([cancelAt, Date.UTC(2026, 1, 1) / 1000]);
  });

  it('follows a schedule: the next phase’s price from the period end, then the release', async () => {
    const { sub, price, product } = await subscribe('month');
    const silver = await stripe.prices.create({
      product: product.id,
      unit_amount: 700,
      currency: 'eur',
      recurring: { interval: 'month' },
    });
    const schedule = await stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    const periodEnd = Date.UTC(2026, 1, 1) / 1000;
    await stripe.subscriptionSchedules.update(schedule.id, {
      end_behavior: 'release',
      phases: [
        { items: [{ price: price.id, quantity: 2 }], start_date: NOW, end_date: periodEnd },
        { items: [{ price: silver.id, quantity: 2 }], duration: { interval: 'month', interval_count: 1 } },
      ],
    });

    fake.advance(32 * DAY);
    const switched = await stripe.subscriptions.retrieve(sub.id);
    expect(switched.items.data[0].price.id).toBe(silver.id);
    expect(switched.schedule).toBe(schedule.id);
    const cycle = (await invoicesOf(sub.id)).at(-1)!;
    expect(cycle).toMatchObject({ billingReason: 'subscription_cycle', amountPaid: 1400 });
    const [updated] = (await stripe.events.list({ type: 'customer.subscription.updated' })).data;
    expect(updated.created).toBe(periodEnd);
    expect(
      (updated.data.previous_attributes as { items: Stripe.ApiList<Stripe.SubscriptionItem> }).items.data[0]
        .price.id,
    ).toBe(price.id);

    // The last phase ends with the next period: the schedule lets go, the subscription goes on.
    fake.advance(30 * DAY);
    expect(await stripe.subscriptionSchedules.retrieve(schedule.id)).toMatchObject({
      status: 'released',
      released_subscription: sub.id,
    });
    const released = await stripe.subscriptions.retrieve(sub.id);
    expect(released).toMatchObject({ status: 'active', schedule: null });
    expect(released.items.data[0].price.id).toBe(silver.id);
    expect((await stripe.events.list({ type: 'subscription_schedule.released' })).data[0].created).toBe(
      Date.UTC(2026, 2, 1) / 1000,
    );
  });

  it('ends a subscription whose schedule cancels after its last phase', async () => {
    const { sub, price } = await subscribe('month');
    const schedule = await stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    await stripe.subscriptionSchedules.update(schedule.id, {
      end_behavior: 'cancel',
      phases: [{ items: [{ price: price.id, quantity: 2 }], start_date: NOW, end_date: NOW + 10 * DAY }],
    });
    fake.advance(40 * DAY);
    expect(await stripe.subscriptions.retrieve(sub.id)).toMatchObject({
      status: 'canceled',
      ended_at: NOW + 10 * DAY,
    });
    expect((await invoicesOf(sub.id)).map((i) => i.billingReason)).toEqual(['subscription_create']);
  });

  it('starts a schedule’s subscription when its start date comes: at once for now, later as time passes', async () => {
    const { price, customer } = await subscribe('month');
    const now = await stripe.subscriptionSchedules.create({
      customer: customer.id,
      start_date: 'now',
      end_behavior: 'cancel',
      phases: [{ items: [{ price: price.id }], duration: { interval: 'month', interval_count: 2 } }],
    });
    expect(now).toMatchObject({ status: 'active', current_phase: { start_date: NOW } });
    const first = await stripe.subscriptions.retrieve(now.subscription as string);
    expect(first).toMatchObject({ status: 'active', schedule: now.id, start_date: NOW });
    expect((await invoicesOf(first.id)).map((i) => [i.billingReason, i.amountPaid])).toEqual([
      ['subscription_create', 1200],
    ]);
    const [announced] = (await stripe.events.list({ type: 'subscription_schedule.created' })).data;
    expect(announced.data.object).toMatchObject({ id: now.id, status: 'active', subscription: first.id });

    const later = NOW + 10 * DAY;
    const planned = await stripe.subscriptionSchedules.create({
      customer: customer.id,
      start_date: later,
      metadata: { gatehouse_member_id: 'mem_later' },
      phases: [{ items: [{ price: price.id, quantity: 3 }] }],
    });
    expect(planned).toMatchObject({ status: 'not_started', subscription: null });
    fake.advance(10 * DAY - 1);
    expect(await stripe.subscriptionSchedules.retrieve(planned.id)).toMatchObject({ status: 'not_started' });
    const subscriptionsBefore = (await stripe.subscriptions.list({ customer: customer.id })).data.length;

    fake.advance(1);
    const started = await stripe.subscriptionSchedules.retrieve(planned.id);
    expect(started).toMatchObject({ status: 'active', current_phase: { start_date: later } });
    const sub = await stripe.subscriptions.retrieve(started.subscription as string);
    expect(sub).toMatchObject({
      status: 'active',
      schedule: planned.id,
      start_date: later,
      metadata: { gatehouse_member_id: 'mem_later' },
    });
    expect(sub.items.data[0]).toMatchObject({ quantity: 3, current_period_start: later });
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toHaveLength(
      subscriptionsBefore + 1,
    );
    const [update] = (await stripe.events.list({ type: 'subscription_schedule.updated' })).data;
    expect(update).toMatchObject({
      created: later,
      data: { object: { id: planned.id, status: 'active' }, previous_attributes: { status: 'not_started' } },
    });
    expect((await invoicesOf(sub.id)).map((i) => [i.billingReason, i.amountPaid])).toEqual([
      ['subscription_create', 3600],
    ]);

    // The first schedule's two months are over by then: it cancels its subscription.
    fake.advance(60 * DAY);
    expect(await stripe.subscriptions.retrieve(first.id)).toMatchObject({ status: 'canceled' });
    await expect(
      stripe.subscriptionSchedules.create({
        customer: customer.id,
        start_date: -5 as unknown as number,
        phases: [{ items: [{ price: price.id }] }],
      }),
    ).rejects.toMatchObject({ statusCode: 400, param: 'start_date' });
  });

  it('takes a subscription’s coupons off its invoices for as long as each lasts', async () => {
    const { price, customer, product } = await subscribe('month'); // 2 × 1200 a month
    const repeating = await stripe.coupons.create({
      percent_off: 25,
      duration: 'repeating',
      duration_in_months: 2,
    });
    const flat = await stripe.coupons.create({ amount_off: 500, currency: 'eur', duration: 'forever' });
    const dollars = await stripe.coupons.create({ amount_off: 500, currency: 'usd', duration: 'forever' });
    const other = await stripe.products.create({ name: 'Other' });
    const elsewhere = await stripe.coupons.create({
      percent_off: 50,
      duration: 'forever',
      applies_to: { products: [other.id] },
    });
    const sub = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id, quantity: 2 }],
      discounts: [
        { coupon: repeating.id },
        { coupon: flat.id },
        { coupon: dollars.id },
        { coupon: elsewhere.id },
      ],
    });
    expect(sub.discounts).toHaveLength(4);
    const [quarter, fixed] = sub.discounts as string[];

    fake.advance(95 * DAY);
    const invoices = (await stripe.invoices.list({ subscription: sub.id, limit: 100 })).data.reverse();
    // 25 % of 2,400, then 500 off the rest; the dollar coupon and the other product's take nothing.
    expect(invoices.map((i) => [i.subtotal, i.total, i.amount_paid])).toEqual([
      [2400, 1300, 1300],
      [2400, 1300, 1300],
      [2400, 1900, 1900],
      [2400, 1900, 1900],
    ]);
    expect(invoices[0].total_discount_amounts).toEqual([
      { amount: 600, discount: quarter },
      { amount: 500, discount: fixed },
    ]);
    expect(invoices[0].lines.data[0]).toMatchObject({
      amount: 2400,
      discount_amounts: [
        { amount: 600, discount: quarter },
        { amount: 500, discount: fixed },
      ],
    });
    expect(invoices[2].discounts).toEqual([fixed]);
    expect(product.id).not.toBe(other.id);
  });

  it('takes a once coupon off the first invoice with something to pay, after a trial', async () => {
    const once = await stripe.coupons.create({ amount_off: 5000, currency: 'eur', duration: 'once' });
    const { sub } = await subscribe('month', { trial_period_days: 7, discounts: [{ coupon: once.id }] });
    fake.advance(40 * DAY);
    const paid = (await invoicesOf(sub.id)).map((i) => i.amountPaid);
    // The trial's $0, then the whole 2,400 taken (never below zero), then the full price.
    expect(paid).toEqual([0, 0, 2400]);
  });

  it('keeps a discount when the subscription’s discounts are set again, and adds one for a new coupon', async () => {
    const once = await stripe.coupons.create({ amount_off: 300, currency: 'eur', duration: 'once' });
    const tenth = await stripe.coupons.create({ percent_off: 10, duration: 'forever' });
    const { sub } = await subscribe('month', { discounts: [{ coupon: once.id }] });
    const updated = await stripe.subscriptions.update(sub.id, {
      discounts: [{ coupon: once.id }, { coupon: tenth.id }],
    });
    expect(updated.discounts[0]).toBe(sub.discounts[0]);
    expect(updated.discounts[1]).not.toBe(sub.discounts[0]);
    fake.advance(31 * DAY);
    // The once coupon had its invoice; setting it again does not give it another.
    expect((await invoicesOf(sub.id)).map((i) => i.amountPaid)).toEqual([2100, 2160]);
  });

  it('moves its time over HTTP, and refuses a step that is not a positive whole number', async () => {
    await subscribe('week');
    const post = (body: string) =>
      fetch(`${fake.url}/fake/advance`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    const moved = await post('days=8');
    expect(moved.status).toBe(200);
    expect(await moved.json()).toEqual({ object: 'fake_clock', now: NOW + 8 * DAY, events: 9 });
    expect(await (await post('seconds=60')).json()).toMatchObject({ now: NOW + 8 * DAY + 60, events: 0 });
    for (const bad of ['days=0', 'days=-1', 'days=1.5', 'seconds=abc', ''])
      expect((await post(bad)).status).toBe(400);
    expect(fake.now()).toBe(NOW + 8 * DAY + 60);
    // New objects are dated at the fake's time.
    expect((await stripe.customers.create({})).created).toBe(NOW + 8 * DAY + 60);
  });
});

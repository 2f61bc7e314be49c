import Stripe from 'stripe';
import { translateCharge } from '../../translate/charge.translate';
import { translateDispute } from '../../translate/dispute.translate';
import type { FakeStripe } from './fake-stripe';
import { fakeStripeWithSdk } from './fake-stripe-sdk';

// What a one-time Checkout payment leaves in the fake, and what happens to it afterwards: refunds
// through the API (as from the Dashboard) and disputes (which only the fake's own routes start).

const NOW = 1_767_225_600;
const ACCOUNT = 'acct_fakepayments';
const opts = { stripeAccount: ACCOUNT };

describe('fake Stripe payments, refunds and disputes', () => {
  let fake: FakeStripe;
  let stripe: Stripe;

  beforeEach(async () => ({ fake, stripe } = await fakeStripeWithSdk(NOW)));
  afterEach(() => fake.close());

  /** A paid one-time purchase of 2,500 (less `coupon`'s percent), as a buyer pays on the page. */
  async function purchase(percentOff?: number, method?: 'card' | 'sepa_debit') {
    const product = await stripe.products.create({ name: 'Workshop' }, opts);
    const price = await stripe.prices.create(
      { product: product.id, unit_amount: 2500, currency: 'eur' },
      opts,
    );
    const coupon = percentOff ? await stripe.coupons.create({ percent_off: percentOff }, opts) : undefined;
    const session = await stripe.checkout.sessions.create(
      {
        mode: 'payment',
        line_items: [{ price: price.id, quantity: 1 }],
        customer_creation: 'always',
        payment_intent_data: { metadata: { gatehouse_member_id: 'mem_ada' }, description: 'Workshop' },
        ...(coupon && { discounts: [{ coupon: coupon.id }] }),
        success_url: 'https://example.com/thanks',
      },
      opts,
    );
    fake.completeCheckout(session.id, { email: 'ada@example.com', ...(method && { method }) });
    return stripe.checkout.sessions.retrieve(session.id, {}, opts);
  }

  const eventsOf = async (types?: string[]) =>
    (await stripe.events.list({ limit: 100, ...(types && { types }) }, opts)).data.reverse();

  it('a paid session leaves a succeeded payment intent and its charge, before the session’s event', async () => {
    const session = await purchase();
    expect(session.payment_status).toBe('paid');
    const intent = await stripe.paymentIntents.retrieve(session.payment_intent as string, {}, opts);
    expect(intent).toMatchObject({
      object: 'payment_intent',
      amount: 2500,
      amount_received: 2500,
      currency: 'eur',
      customer: session.customer,
      status: 'succeeded',
      metadata: { gatehouse_member_id: 'mem_ada' },
      description: 'Workshop',
    });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string, {}, opts);
    expect(charge).toMatchObject({
      object: 'charge',
      amount: 2500,
      amount_captured: 2500,
      amount_refunded: 0,
      refunded: false,
      disputed: false,
      paid: true,
      status: 'succeeded',
      payment_intent: intent.id,
      customer: session.customer,
      billing_details: { email: 'ada@example.com' },
    });
    expect(charge.id).toMatch(/^ch_1/);
    expect((await stripe.charges.list({ customer: session.customer as string }, opts)).data).toEqual([
      charge,
    ]);
    expect((await eventsOf()).map((e) => e.type)).toEqual([
      'product.created',
      'price.created',
      'customer.created',
      'payment_intent.created',
      'charge.succeeded',
      'payment_intent.succeeded',
      'checkout.session.completed',
    ]);
    const [created] = await eventsOf(['payment_intent.created']);
    expect(created.data.object).toMatchObject({ status: 'requires_payment_method', latest_charge: null });
  });

  it('a session a coupon takes all off charges nothing: no payment intent, nothing to pay', async () => {
    const session = await purchase(100);
    expect(session).toMatchObject({
      amount_total: 0,
      payment_status: 'no_payment_required',
      payment_intent: null,
    });
    expect((await stripe.charges.list({}, opts)).data).toEqual([]);
  });

  it('refunds part, then the rest: charge.refunded each time, `refunded` once nothing is left', async () => {
    const session = await purchase();
    const pi = session.payment_intent as string;
    const part = await stripe.refunds.create(
      { payment_intent: pi, amount: 1000, reason: 'requested_by_customer' },
      opts,
    );
    expect(part).toMatchObject({ object: 'refund', amount: 1000, payment_intent: pi, status: 'succeeded' });
    const rest = await stripe.refunds.create({ charge: part.charge as string }, opts);
    expect(rest.amount).toBe(1500);

    const refunded = await eventsOf(['charge.refunded']);
    expect(refunded.map((e) => e.data.object)).toMatchObject([
      { amount_refunded: 1000, refunded: false },
      { amount_refunded: 2500, refunded: true },
    ]);
    expect(refunded.map((e) => e.data.previous_attributes)).toEqual([
      { amount_refunded: 0, refunded: false },
      { amount_refunded: 1000, refunded: false },
    ]);
    // What Gatehouse reads of them: a partial refund, then a full one, of this payment.
    expect(refunded.map((e) => translateCharge(e.data.object))).toMatchObject([
      { paymentIntentId: pi, refunded: false },
      { paymentIntentId: pi, refunded: true },
    ]);
    expect((await eventsOf(['refund.created'])).map((e) => (e.data.object as Stripe.Refund).id)).toEqual([
      part.id,
      rest.id,
    ]);
    expect((await stripe.refunds.list({ payment_intent: pi }, opts)).data.map((r) => r.id)).toEqual([
      rest.id,
      part.id,
    ]);
  });

  it('refuses a refund of more than is left, of a refunded charge, of nothing, and of an unknown payment', async () => {
    const session = await purchase();
    const pi = session.payment_intent as string;
    const refusal = (params: Stripe.RefundCreateParams) =>
      stripe.refunds.create(params, opts).then(
        () => 'refunded',
        (err: Stripe.errors.StripeError) => ({ status: err.statusCode, code: err.code }),
      );
    expect(await refusal({ payment_intent: pi, amount: 2501 })).toEqual({
      status: 400,
      code: 'amount_too_large',
    });
    expect(await refusal({ payment_intent: pi, amount: 0 })).toEqual({
      status: 400,
      code: 'parameter_invalid',
    });
    expect(await refusal({ payment_intent: pi, reason: 'changed_mind' as 'duplicate' })).toEqual({
      status: 400,
      code: 'parameter_invalid',
    });
    expect(await refusal({})).toEqual({ status: 400, code: 'parameter_missing' });
    expect(await refusal({ payment_intent: 'pi_unknown' })).toEqual({
      status: 404,
      code: 'resource_missing',
    });
    expect(await refusal({ payment_intent: pi })).toBe('refunded');
    expect(await refusal({ payment_intent: pi })).toEqual({ status: 400, code: 'charge_already_refunded' });
    // Nothing refused was recorded: one refund, one charge.refunded.
    expect((await eventsOf(['charge.refunded', 'refund.created'])).map((e) => e.type)).toEqual([
      'charge.refunded',
      'refund.created',
    ]);
  });

  it('a dispute opened by the bank, then lost by accepting it; a disputed charge is not refunded', async () => {
    const session = await purchase();
    const pi = session.payment_intent as string;
    const opened = fake.dispute(pi);
    expect(opened).toMatchObject({
      object: 'dispute',
      amount: 2500,
      payment_intent: pi,
      status: 'needs_response',
    });
    const charge = await stripe.charges.retrieve(opened.charge as string, {}, opts);
    expect(charge.disputed).toBe(true);
    await expect(stripe.refunds.create({ payment_intent: pi }, opts)).rejects.toMatchObject({
      code: 'charge_disputed',
    });
    expect(() => fake.dispute(charge.id)).toThrow(/already disputed/);

    const lost = await stripe.disputes.close(opened.id, {}, opts);
    expect(lost.status).toBe('lost');
    await expect(stripe.disputes.close(opened.id, {}, opts)).rejects.toMatchObject({
      code: 'dispute_already_closed',
    });
    const events = await eventsOf(['charge.dispute.created', 'charge.dispute.closed']);
    expect(events.map((e) => [e.type, translateDispute(e.data.object)])).toEqual([
      ['charge.dispute.created', expect.objectContaining({ chargeId: charge.id, paymentIntentId: pi })],
      ['charge.dispute.closed', expect.objectContaining({ chargeId: charge.id, status: 'lost' })],
    ]);
    expect(events[1].data.previous_attributes).toEqual({ status: 'needs_response' });
    expect((await stripe.disputes.list({ payment_intent: pi }, opts)).data.map((d) => d.id)).toEqual([
      opened.id,
    ]);
  });

  it('a SEPA debit completes the session unpaid; the bank’s success pays it, with async_payment_succeeded', async () => {
    const session = await purchase(undefined, 'sepa_debit');
    expect(session).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
    const pi = session.payment_intent as string;
    const intent = await stripe.paymentIntents.retrieve(pi, {}, opts);
    expect(intent.status).toBe('processing');
    const charge = await stripe.charges.retrieve(intent.latest_charge as string, {}, opts);
    expect(charge).toMatchObject({
      status: 'pending',
      paid: false,
      payment_method_details: { type: 'sepa_debit' },
    });
    // Nothing is paid yet: nothing to refund or dispute.
    await expect(stripe.refunds.create({ payment_intent: pi }, opts)).rejects.toMatchObject({
      code: 'charge_not_refundable',
    });
    expect(() => fake.dispute(pi)).toThrow(/nothing was paid/);
    const before = (await eventsOf()).length;

    fake.settlePayment(pi, 'succeeded');
    expect((await eventsOf()).slice(before).map((e) => e.type)).toEqual([
      'charge.succeeded',
      'payment_intent.succeeded',
      'checkout.session.async_payment_succeeded',
    ]);
    expect((await stripe.checkout.sessions.retrieve(session.id, {}, opts)).payment_status).toBe('paid');
    expect(await stripe.charges.retrieve(charge.id, {}, opts)).toMatchObject({
      status: 'succeeded',
      paid: true,
    });
    expect(() => fake.settlePayment(pi, 'failed')).toThrow(/not processing/);
  });

  it('a SEPA debit the bank refuses fails the payment, with async_payment_failed; the session stays unpaid', async () => {
    const session = await purchase(undefined, 'sepa_debit');
    const pi = session.payment_intent as string;
    const before = (await eventsOf()).length;
    fake.settlePayment(pi, 'failed');
    const events = (await eventsOf()).slice(before);
    expect(events.map((e) => e.type)).toEqual([
      'charge.failed',
      'payment_intent.payment_failed',
      'checkout.session.async_payment_failed',
    ]);
    expect(events[0].data.object).toMatchObject({ status: 'failed', failure_code: 'insufficient_funds' });
    expect(events[1].data.object).toMatchObject({
      status: 'requires_payment_method',
      last_payment_error: { code: 'insufficient_funds' },
    });
    expect((await stripe.checkout.sessions.retrieve(session.id, {}, opts)).payment_status).toBe('unpaid');
  });

  it('offers a SEPA debit for one-time payments in euros only, and settles over HTTP', async () => {
    const product = await stripe.products.create({ name: 'Gold' }, opts);
    const monthly = await stripe.prices.create(
      { product: product.id, unit_amount: 900, currency: 'eur', recurring: { interval: 'month' } },
      opts,
    );
    const dollars = await stripe.prices.create(
      { product: product.id, unit_amount: 900, currency: 'usd' },
      opts,
    );
    const open = (mode: 'payment' | 'subscription', price: string) =>
      stripe.checkout.sessions.create(
        { mode, line_items: [{ price, quantity: 1 }], success_url: 'https://example.com/thanks' },
        opts,
      );
    for (const session of [await open('subscription', monthly.id), await open('payment', dollars.id)]) {
      expect(await (await fetch(session.url!)).text()).not.toContain('SEPA');
      expect(() => fake.completeCheckout(session.id, { method: 'sepa_debit' })).toThrow(/euros only/);
    }

    const session = await purchase(undefined);
    const post = (path: string, body: Record<string, string>) =>
      fetch(`${fake.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
        redirect: 'manual',
      });
    // Paid by card: already settled.
    expect(
      (await post(`/fake/payments/${String(session.payment_intent)}/settle`, { outcome: 'succeeded' }))
        .status,
    ).toBe(400);
    expect((await post('/fake/payments/pi_unknown/settle', { outcome: 'succeeded' })).status).toBe(404);

    const product2 = await stripe.products.create({ name: 'Course' }, opts);
    const once = await stripe.prices.create(
      { product: product2.id, unit_amount: 4000, currency: 'eur' },
      opts,
    );
    const debit = await open('payment', once.id);
    const page = await (await fetch(debit.url!)).text();
    expect(page).toContain('name="method" value="sepa_debit"');
    const paid = await post(`/checkout/${debit.id}/complete`, {
      email: 'bea@example.com',
      method: 'sepa_debit',
    });
    expect(paid.status).toBe(303);
    const pi = (await stripe.checkout.sessions.retrieve(debit.id, {}, opts)).payment_intent as string;
    expect((await post(`/fake/payments/${pi}/settle`, { outcome: 'maybe' })).status).toBe(400);
    const settled = await post(`/fake/payments/${pi}/settle`, { outcome: 'succeeded' });
    expect(await settled.json()).toMatchObject({ id: pi, status: 'succeeded', amount_received: 4000 });
  });

  it('opens and decides disputes over HTTP, as `gatehouse stripe fake` users do with curl', async () => {
    const session = await purchase();
    const post = (path: string, body: Record<string, string>) =>
      fetch(`${fake.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
      });
    const intent = await stripe.paymentIntents.retrieve(session.payment_intent as string, {}, opts);
    const opened = await post('/fake/disputes', {
      charge: intent.latest_charge as string,
      reason: 'product_not_received',
    });
    expect(opened.status).toBe(200);
    const dispute = (await opened.json()) as Stripe.Dispute;
    expect(dispute).toMatchObject({ reason: 'product_not_received', status: 'needs_response' });
    expect((await post('/fake/disputes', {})).status).toBe(400);
    expect((await post('/fake/disputes', { charge: 'ch_unknown' })).status).toBe(404);
    expect((await post(`/fake/disputes/${dispute.id}/close`, { status: 'maybe' })).status).toBe(400);
    const won = await post(`/fake/disputes/${dispute.id}/close`, { status: 'won' });
    expect(((await won.json()) as Stripe.Dispute).status).toBe('won');
    const [closed] = await eventsOf(['charge.dispute.closed']);
    expect(closed.account).toBe(ACCOUNT);
    expect(closed.data.object).toMatchObject({ id: dispute.id, status: 'won' });
  });
});

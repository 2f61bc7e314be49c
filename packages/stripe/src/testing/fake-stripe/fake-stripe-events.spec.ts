import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { startFakeStripe, stripeConfigForApiBase, type FakeStripe } from './fake-stripe';
import { PAID_INVOICE_EVENTS } from './fake-stripe-sdk';

// The events the fake records for what its API and Checkout page change, and their delivery.

const NOW = 1_767_225_600;
/** What Stripe records when it invoices a period (paid at once, by a card charge). */
const INVOICED = PAID_INVOICE_EVENTS;
/** A $0 invoice (a trial's): nothing to charge. */
const INVOICED_FREE = ['invoice.created', 'invoice.finalized', 'invoice.paid', 'invoice.payment_succeeded'];
const ACCOUNT = 'acct_fakeevents';
const SECRET = 'whsec_fake_events';

type Received = { event: Stripe.Event; header: string; body: string };

/** A webhook endpoint that verifies with Stripe's SDK and answers `status(event)` (200 by default). */
async function endpoint(status: (event: Stripe.Event) => number = () => 200) {
  const received: Received[] = [];
  const verifier = new Stripe('sk_test_verify_only');
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const header = String(req.headers['stripe-signature']);
      const event = verifier.webhooks.constructEvent(body, header, SECRET, 300);
      received.push({ event, header, body });
      res.statusCode = status(event);
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An address nothing listens on: a delivery to it is refused. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/webhooks/stripe`;
}

describe('fake Stripe events', () => {
  let fake: FakeStripe;
  let stripe: Stripe;

  afterEach(() => fake?.close());

  async function start(options: Parameters<typeof startFakeStripe>[0] = {}) {
    fake = await startFakeStripe({ clock: () => NOW, ...options });
    stripe = new Stripe('sk_test_fake', { ...stripeConfigForApiBase(fake.url), maxNetworkRetries: 0 });
  }

  async function subscriptionCatalog(opts: Stripe.RequestOptions = {}) {
    const product = await stripe.products.create({ name: 'Gold' }, opts);
    const price = await stripe.prices.create(
      { product: product.id, unit_amount: 1200, currency: 'eur', recurring: { interval: 'month' } },
      opts,
    );
    return { product, price };
  }

  const types = async (opts: Stripe.RequestOptions = {}) =>
    (await stripe.events.list({ limit: 100 }, opts)).data.map((e) => e.type).reverse();

  it('records an event per change made through the API, with the request that made it', async () => {
    await start();
    const customer = await stripe.customers.create(
      { email: 'a@example.com' },
      { idempotencyKey: 'create-customer-1' },
    );
    const [event] = (await stripe.events.list()).data;
    expect(event).toMatchObject({
      object: 'event',
      type: 'customer.created',
      api_version: '2025-03-31.basil',
      created: NOW,
      livemode: false,
      pending_webhooks: 0,
      request: { idempotency_key: 'create-customer-1' },
      data: { object: { id: customer.id, email: 'a@example.com' } },
    });
    expect(event.id).toMatch(/^evt_/);
    expect(event.request?.id).toMatch(/^req_/);
    expect(event).not.toHaveProperty('account');
    expect(await stripe.events.retrieve(event.id)).toEqual(event);

    await stripe.customers.update(customer.id, { email: 'b@example.com' });
    const [updated] = (await stripe.events.list({ type: 'customer.updated' })).data;
    expect(updated.data.object).toMatchObject({ email: 'b@example.com' });
    expect(updated.data.previous_attributes).toEqual({ email: 'a@example.com' });

    // Neither a change that changes nothing, a replayed request nor a refused one records anything.
    await stripe.customers.update(customer.id, { email: 'b@example.com' });
    await stripe.customers.create({ email: 'a@example.com' }, { idempotencyKey: 'create-customer-1' });
    await expect(
      stripe.prices.create({ product: 'prod_nope', unit_amount: 1, currency: 'eur' }),
    ).rejects.toThrow(/No such product/);
    expect(await types()).toEqual(['customer.created', 'customer.updated']);
  });

  it('records a subscription’s life: created, updated with its previous attributes, deleted', async () => {
    await start();
    const { price } = await subscriptionCatalog();
    const customer = await stripe.customers.create({ email: 'm@example.com' });
    const sub = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id }],
      metadata: { gatehouse_member_id: 'm1' },
    });
    await stripe.subscriptions.update(sub.id, { cancel_at_period_end: true });
    await stripe.subscriptions.cancel(sub.id);
    await stripe.subscriptions.cancel(sub.id);
    expect(await types()).toEqual([
      'product.created',
      'price.created',
      'customer.created',
      'customer.subscription.created',
      ...INVOICED,
      'customer.subscription.updated',
      'customer.subscription.deleted',
    ]);
    const byType = new Map((await stripe.events.list({ limit: 100 })).data.map((e) => [e.type, e]));
    const createdSub = byType.get('customer.subscription.created')!.data.object as Stripe.Subscription;
    expect(createdSub).toMatchObject({
      id: sub.id,
      status: 'active',
      metadata: { gatehouse_member_id: 'm1' },
    });
    expect(createdSub.items.data[0]).toMatchObject({ price: { id: price.id } });
    expect(byType.get('customer.subscription.updated')!.data.previous_attributes).toEqual({
      cancel_at_period_end: false,
      canceled_at: null,
    });
    expect(byType.get('customer.subscription.deleted')!.data.object).toMatchObject({ status: 'canceled' });
  });

  it('keeps a connected account’s events in its own Events API, naming the account', async () => {
    await start();
    await stripe.customers.create({ email: 'c@example.com' }, { stripeAccount: ACCOUNT });
    expect(await types()).toEqual([]);
    const [event] = (await stripe.events.list({}, { stripeAccount: ACCOUNT })).data;
    expect(event).toMatchObject({ type: 'customer.created', account: ACCOUNT });
  });

  it('completes a subscription-mode session paid on its Checkout page and returns the buyer', async () => {
    await start();
    const opts = { stripeAccount: ACCOUNT };
    const { price } = await subscriptionCatalog(opts);
    const session = await stripe.checkout.sessions.create(
      {
        mode: 'subscription',
        line_items: [{ price: price.id, quantity: 1 }],
        customer_email: 'buyer@example.com',
        success_url: 'https://makers.example/thanks?session={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://makers.example/',
        client_reference_id: 'm7',
        metadata: { gatehouse_member_id: 'm7' },
        subscription_data: { metadata: { gatehouse_member_id: 'm7' }, trial_period_days: 14 },
      },
      opts,
    );
    expect(await types(opts)).toEqual(['product.created', 'price.created']);

    const page = await (await fetch(session.url!)).text();
    expect(page).toContain(`action="/checkout/${session.id}/complete"`);
    expect(page).toContain('value="buyer@example.com"');
    // A trial is started, not paid for.
    expect(page).toContain('14-day free trial');
    expect(page).toContain('>Start trial</button>');
    const paid = await fetch(`${fake.url}/checkout/${session.id}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=buyer%40example.com',
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toBe(`https://makers.example/thanks?session=${session.id}`);

    const done = await stripe.checkout.sessions.retrieve(session.id, {}, opts);
    // A trial starts: nothing is paid today.
    expect(done).toMatchObject({
      status: 'complete',
      payment_status: 'no_payment_required',
      amount_subtotal: 0,
      amount_total: 0,
    });
    expect(done.customer).toMatch(/^cus_/);
    const sub = await stripe.subscriptions.retrieve(done.subscription as string, {}, opts);
    expect(sub).toMatchObject({
      customer: done.customer,
      status: 'trialing',
      trial_end: NOW + 14 * 86_400,
      metadata: { gatehouse_member_id: 'm7' },
    });
    expect(sub.items.data.map((i) => [i.price.id, i.quantity])).toEqual([[price.id, 1]]);

    expect(await types(opts)).toEqual([
      'product.created',
      'price.created',
      'customer.created',
      'customer.subscription.created',
      ...INVOICED_FREE,
      'checkout.session.completed',
    ]);
    const [completed] = (await stripe.events.list({ type: 'checkout.session.completed' }, opts)).data;
    expect(completed).toMatchObject({ account: ACCOUNT, request: { id: null, idempotency_key: null } });
    expect(completed.data.object).toMatchObject({
      id: session.id,
      subscription: sub.id,
      customer_details: { email: 'buyer@example.com' },
      metadata: { gatehouse_member_id: 'm7' },
    });
    // As from Stripe: the line items are not in the event (they are expanded through the API).
    expect(completed.data.object).not.toHaveProperty('line_items');

    // Paying again changes nothing.
    fake.completeCheckout(session.id);
    expect(await types(opts)).toHaveLength(9);
    expect((await stripe.subscriptions.list({}, opts)).data).toHaveLength(1);
    expect(await (await fetch(session.url!)).text()).toContain('This session is complete.');
  });

  it('completes a payment-mode session with a payment intent, creating the customer when asked', async () => {
    await start();
    const product = await stripe.products.create({ name: 'Workshop' });
    const price = await stripe.prices.create({ product: product.id, unit_amount: 5000, currency: 'eur' });
    const coupon = await stripe.coupons.create({ percent_off: 10, duration: 'once' });
    const promo = await stripe.promotionCodes.create({
      promotion: { type: 'coupon', coupon: coupon.id },
      code: 'TEN',
    } as Stripe.PromotionCodeCreateParams);
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ price: price.id, quantity: 1 }],
      success_url: 'https://makers.example/thanks',
      customer_creation: 'always',
      discounts: [{ promotion_code: promo.id }],
    });
    const done = fake.completeCheckout(session.id, { email: 'once@example.com' });
    expect(done).toMatchObject({ status: 'complete', payment_status: 'paid', subscription: null });
    expect(done.payment_intent).toMatch(/^pi_/);
    expect((await stripe.customers.retrieve(done.customer as string)) as Stripe.Customer).toMatchObject({
      email: 'once@example.com',
    });
    expect((await stripe.promotionCodes.retrieve(promo.id)).times_redeemed).toBe(1);
    expect((await stripe.coupons.retrieve(coupon.id)).times_redeemed).toBe(1);
    // The card is charged before the session completes.
    expect((await types()).slice(-5)).toEqual([
      'customer.created',
      'payment_intent.created',
      'charge.succeeded',
      'payment_intent.succeeded',
      'checkout.session.completed',
    ]);

    // Without customer_creation, a one-time buyer gets no Customer object.
    const guest = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ price: price.id, quantity: 1 }],
      success_url: 'https://makers.example/thanks',
    });
    expect(fake.completeCheckout(guest.id).customer).toBeNull();
    expect(() => fake.completeCheckout('cs_test_nope')).toThrow(/No such checkout session/);
  });

  it('takes a promotion code typed on the Checkout page when the session allows them', async () => {
    await start();
    const { price } = await subscriptionCatalog();
    const coupon = await stripe.coupons.create({ percent_off: 20, duration: 'once' });
    const promo = await stripe.promotionCodes.create({
      promotion: { type: 'coupon', coupon: coupon.id },
      code: 'SPRING-20',
      max_redemptions: 1,
    } as Stripe.PromotionCodeCreateParams);
    const open = (allow: boolean) =>
      stripe.checkout.sessions.create({
        mode: 'subscription',
        line_items: [{ price: price.id, quantity: 1 }],
        success_url: 'https://makers.example/thanks',
        ...(allow && { allow_promotion_codes: true }),
      });
    const pay = (id: string, code: string) =>
      fetch(`${fake.url}/checkout/${id}/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: 'p@example.com', promotion_code: code }),
        redirect: 'manual',
      });

    const session = await open(true);
    const pageText = await (await fetch(session.url!)).text();
    expect(pageText).toContain('name="promotion_code"');
    expect(pageText).toContain(`>Pay ${price.unit_amount} eur</button>`);
    const unknown = await pay(session.id, 'WINTER');
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain('This code is invalid: WINTER');
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');

    expect((await pay(session.id, 'spring-20')).status).toBe(303);
    const done = await stripe.checkout.sessions.retrieve(session.id);
    expect(done.discounts).toEqual([{ coupon: null, promotion_code: promo.id }]);
    // 20 % off what is paid today, and off the first invoice: a subscription lists its discounts by id.
    const unit = price.unit_amount!;
    expect(done).toMatchObject({
      amount_subtotal: unit,
      amount_total: unit - Math.round(unit * 0.2),
      total_details: { amount_discount: Math.round(unit * 0.2) },
    });
    const sub = await stripe.subscriptions.retrieve(done.subscription as string);
    expect(sub.discounts).toEqual([expect.stringMatching(/^di_/)]);
    const invoice = await stripe.invoices.retrieve(sub.latest_invoice as string);
    expect(invoice).toMatchObject({
      subtotal: unit,
      total: done.amount_total,
      amount_paid: done.amount_total,
      discounts: sub.discounts,
      total_discount_amounts: [{ amount: Math.round(unit * 0.2), discount: sub.discounts[0] }],
    });
    expect((await stripe.promotionCodes.retrieve(promo.id)).times_redeemed).toBe(1);
    const [completed] = (await stripe.events.list({ type: 'checkout.session.completed' })).data;
    expect((completed.data.object as Stripe.Checkout.Session).discounts).toEqual(done.discounts);

    // Used up, and refused where the session does not allow codes.
    expect((await pay((await open(true)).id, 'SPRING-20')).status).toBe(400);
    const strict = await open(false);
    expect(await (await fetch(strict.url!)).text()).not.toContain('promotion_code');
    expect(() => fake.completeCheckout(strict.id, { promotionCode: 'SPRING-20' })).toThrow(
      /does not take promotion codes/,
    );
  });

  it('lets a customer cancel, renew and change their e-mail in the billing portal, with the events', async () => {
    await start();
    const opts = { stripeAccount: ACCOUNT };
    const { price } = await subscriptionCatalog(opts);
    const customer = await stripe.customers.create({ email: 'old@example.com' }, opts);
    const other = await stripe.customers.create({ email: 'other@example.com' }, opts);
    const sub = await stripe.subscriptions.create(
      { customer: customer.id, items: [{ price: price.id }] },
      opts,
    );
    const theirs = await stripe.subscriptions.create(
      { customer: other.id, items: [{ price: price.id }] },
      opts,
    );
    const portal = await stripe.billingPortal.sessions.create(
      { customer: customer.id, return_url: 'https://makers.example/account' },
      opts,
    );
    const post = (action: string, fields: Record<string, string>) =>
      fetch(`${fake.url}/billing_portal/${portal.id}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields),
        redirect: 'manual',
      });

    const page = await (await fetch(portal.url)).text();
    expect(page).toContain(`value="${sub.id}"`);
    expect(page).not.toContain(theirs.id);
    expect(page).toContain('Cancel plan');
    expect(page).toContain('href="https://makers.example/account"');

    const cancelled = await post('cancel', { subscription: sub.id });
    expect(cancelled.status).toBe(303);
    expect(cancelled.headers.get('location')).toBe(`/billing_portal/${portal.id}`);
    expect(await stripe.subscriptions.retrieve(sub.id, {}, opts)).toMatchObject({
      cancel_at_period_end: true,
      canceled_at: NOW,
      status: 'active',
    });
    expect(await (await fetch(portal.url)).text()).toContain('Renew plan');
    expect((await post('renew', { subscription: sub.id })).status).toBe(303);
    expect((await stripe.subscriptions.retrieve(sub.id, {}, opts)).cancel_at_period_end).toBe(false);
    expect((await post('email', { email: 'new@example.com' })).status).toBe(303);
    expect(((await stripe.customers.retrieve(customer.id, {}, opts)) as Stripe.Customer).email).toBe(
      'new@example.com',
    );

    const events = (await stripe.events.list({ limit: 3 }, opts)).data.reverse();
    expect(events.map((e) => [e.type, e.data.previous_attributes, e.request])).toEqual([
      [
        'customer.subscription.updated',
        { cancel_at_period_end: false, canceled_at: null },
        { id: null, idempotency_key: null },
      ],
      [
        'customer.subscription.updated',
        { cancel_at_period_end: true, canceled_at: NOW },
        { id: null, idempotency_key: null },
      ],
      ['customer.updated', { email: 'old@example.com' }, { id: null, idempotency_key: null }],
    ]);
    // Another customer's subscription, a bad e-mail, an unknown portal: refused, nothing recorded
    // (the twenty-three events before the portal's three: product, price, two customers, two
    // subscriptions and their first invoices with their payments, the portal session).
    expect((await post('cancel', { subscription: theirs.id })).status).toBe(404);
    expect((await post('email', { email: 'not-an-email' })).status).toBe(400);
    expect((await fetch(`${fake.url}/billing_portal/bps_nope`)).status).toBe(404);
    expect((await stripe.events.list({ limit: 100 }, opts)).data).toHaveLength(events.length + 23);
  });

  it('expires a session through the API or once its expires_at has passed, and will not take payment after', async () => {
    let now = NOW;
    fake = await startFakeStripe({ clock: () => now });
    stripe = new Stripe('sk_test_fake', { ...stripeConfigForApiBase(fake.url), maxNetworkRetries: 0 });
    const { price } = await subscriptionCatalog();
    const open = (expiresAt?: number) =>
      stripe.checkout.sessions.create({
        mode: 'subscription',
        line_items: [{ price: price.id, quantity: 1 }],
        success_url: 'https://makers.example/thanks',
        ...(expiresAt !== undefined && { expires_at: expiresAt }),
      });

    const first = await open();
    expect(first.expires_at).toBe(NOW + 86_400);
    expect(await stripe.checkout.sessions.expire(first.id)).toMatchObject({ status: 'expired' });
    await expect(stripe.checkout.sessions.expire(first.id)).rejects.toThrow(/status of open can be expired/);
    expect(() => fake.completeCheckout(first.id)).toThrow(/This Checkout session is expired/);

    const second = await open(NOW + 3_600);
    expect(second.expires_at).toBe(NOW + 3_600);
    now = NOW + 3_600;
    expect(() => fake.completeCheckout(second.id)).toThrow(/expired/);
    const expired = (await stripe.events.list({ type: 'checkout.session.expired' })).data;
    expect(expired.map((e) => (e.data.object as Stripe.Checkout.Session).id)).toEqual([second.id, first.id]);
    expect(expired[0].data.object).not.toHaveProperty('line_items');
    expect((await stripe.subscriptions.list()).data).toEqual([]);

    for (const bad of [now + 1_799, now + 86_401])
      await expect(open(bad)).rejects.toThrow(/between 30 minutes and 24 hours/);
  });

  it('sends each event to the webhook endpoint in order, signed with its secret', async () => {
    const hook = await endpoint();
    try {
      const seen: string[] = [];
      await start({ webhooks: { url: hook.url, secret: SECRET }, onDelivery: (d) => seen.push(d.type) });
      const { price } = await subscriptionCatalog({ stripeAccount: ACCOUNT });
      const customer = await stripe.customers.create({}, { stripeAccount: ACCOUNT });
      await stripe.subscriptions.create(
        { customer: customer.id, items: [{ price: price.id }] },
        { stripeAccount: ACCOUNT },
      );
      await fake.settled();
      const listed = (await stripe.events.list({ limit: 100 }, { stripeAccount: ACCOUNT })).data.reverse();
      // Verified by the SDK's constructEvent (signature and a 300 s tolerance) in the endpoint.
      expect(hook.received.map((r) => r.event.id)).toEqual(listed.map((e) => e.id));
      // Sent while one endpoint still had to take it; listed once it has.
      expect(hook.received.every((r) => r.event.pending_webhooks === 1)).toBe(true);
      expect(listed.every((e) => e.pending_webhooks === 0 && e.account === ACCOUNT)).toBe(true);
      expect(hook.received.map((r) => ({ ...r.event, pending_webhooks: 0 }))).toEqual(listed);
      expect(seen).toEqual(listed.map((e) => e.type));
      expect(fake.deliveries.every((d) => d.ok && d.status === 200 && d.account === ACCOUNT)).toBe(true);
      // Stripe's own body: the event pretty-printed; a different serialisation would not verify.
      expect(hook.received[0].body).toBe(JSON.stringify({ ...listed[0], pending_webhooks: 1 }, null, 2));
      expect(
        (await stripe.events.list({ delivery_success: false }, { stripeAccount: ACCOUNT })).data,
      ).toEqual([]);
    } finally {
      await hook.close();
    }
  });

  it('lists an event whose delivery failed with delivery_success=false, and goes on with the next', async () => {
    let answer = 503;
    const hook = await endpoint(() => answer);
    try {
      await start({ webhooks: { url: hook.url, secret: SECRET } });
      const first = await stripe.customers.create({ email: 'first@example.com' });
      await fake.settled();
      answer = 200;
      await stripe.customers.create({ email: 'second@example.com' });
      await fake.settled();
      expect(fake.deliveries.map((d) => [d.type, d.status, d.ok, d.attempt, d.nextAttemptAt])).toEqual([
        ['customer.created', 503, false, 1, NOW + 3_600],
        ['customer.created', 200, true, 1, undefined],
      ]);
      const failed = (await stripe.events.list({ delivery_success: false })).data;
      expect(failed.map((e) => (e.data.object as Stripe.Customer).id)).toEqual([first.id]);
      const delivered = (await stripe.events.list({ delivery_success: true })).data;
      expect(delivered.map((e) => (e.data.object as Stripe.Customer).email)).toEqual(['second@example.com']);
    } finally {
      await hook.close();
    }

    // Nobody listening: the attempt fails without an answer.
    await stripe.customers.create({ email: 'third@example.com' });
    await fake.settled();
    expect(fake.deliveries.at(-1)).toMatchObject({ status: null, ok: false, error: 'ECONNREFUSED' });

    // No endpoint: recorded, not sent.
    fake.forward(null);
    await stripe.customers.create({ email: 'fourth@example.com' });
    await fake.settled();
    expect(fake.deliveries).toHaveLength(3);
    expect((await stripe.events.list({ limit: 1 })).data[0]).toMatchObject({
      pending_webhooks: 0,
      data: { object: { email: 'fourth@example.com' } },
    });
  });

  it('tries a failed delivery again after 1, 3 and 6 hours of the fake’s time, then gives up', async () => {
    const email = (e: Stripe.Event) => (e.data.object as Stripe.Customer).email;
    let refuse = (_e: Stripe.Event) => true;
    const hook = await endpoint((e) => (refuse(e) ? 500 : 200));
    try {
      await start({ webhooks: { url: hook.url, secret: SECRET } });
      await stripe.customers.create({ email: 'late@example.com' });
      await stripe.customers.create({ email: 'never@example.com' });
      await fake.settled();
      const attempts = (from: number) =>
        fake.deliveries.slice(from).map((d) => [d.attempt, d.status, d.nextAttemptAt]);
      expect(attempts(0)).toEqual([
        [1, 500, NOW + 3_600],
        [1, 500, NOW + 3_600],
      ]);
      const undelivered = async () => (await stripe.events.list({ delivery_success: false })).data.map(email);
      expect(await undelivered()).toEqual(['never@example.com', 'late@example.com']);
      expect((await stripe.events.list()).data.every((e) => e.pending_webhooks === 1)).toBe(true);

      fake.advance(3_599);
      await fake.settled();
      expect(fake.deliveries).toHaveLength(2);

      fake.advance(1);
      await fake.settled();
      expect(attempts(2)).toEqual([
        [2, 500, NOW + 3 * 3_600],
        [2, 500, NOW + 3 * 3_600],
      ]);
      // The same event again (verified by the endpoint, signed when sent).
      expect(hook.received[2].event).toEqual(hook.received[0].event);

      // The endpoint takes one of the two from now on.
      refuse = (e) => email(e) === 'never@example.com';
      fake.advance(2 * 3_600);
      await fake.settled();
      expect(attempts(4)).toEqual([
        [3, 200, undefined],
        [3, 500, NOW + 6 * 3_600],
      ]);
      expect(await undelivered()).toEqual(['never@example.com']);
      const late = (await stripe.events.list()).data.find((e) => email(e) === 'late@example.com')!;
      expect(late.pending_webhooks).toBe(0);

      // The last retry, then no more.
      fake.advance(3 * 3_600);
      await fake.settled();
      expect(attempts(6)).toEqual([[4, 500, undefined]]);
      fake.advance(30 * 86_400);
      await fake.settled();
      expect(fake.deliveries).toHaveLength(7);
      expect(await undelivered()).toEqual(['never@example.com']);
    } finally {
      await hook.close();
    }
  });

  it('sends a retry to the endpoint set in place of the old one, and none once the endpoint is removed', async () => {
    const gone = { url: await closedPortUrl(), secret: SECRET };
    const hook = await endpoint();
    try {
      await start({ webhooks: gone });
      await stripe.customers.create({ email: 'moved@example.com' });
      await fake.settled();
      expect(fake.deliveries[0]).toMatchObject({
        ok: false,
        error: 'ECONNREFUSED',
        nextAttemptAt: NOW + 3_600,
      });
      fake.forward({ url: hook.url, secret: SECRET });
      fake.advance(3_600);
      await fake.settled();
      expect(fake.deliveries[1]).toMatchObject({ attempt: 2, ok: true });
      expect(hook.received.map((r) => (r.event.data.object as Stripe.Customer).email)).toEqual([
        'moved@example.com',
      ]);

      fake.forward(gone);
      await stripe.customers.create({ email: 'dropped@example.com' });
      await fake.settled();
      fake.forward(null);
      fake.forward({ url: hook.url, secret: SECRET });
      fake.advance(86_400);
      await fake.settled();
      expect(fake.deliveries).toHaveLength(3);
      expect(hook.received).toHaveLength(1);
    } finally {
      await hook.close();
    }
  });

  it('retries when the fake’s own clock gets there, without an advance', async () => {
    let clock = NOW;
    const hook = await endpoint();
    try {
      await start({
        clock: () => clock,
        webhooks: { url: await closedPortUrl(), secret: SECRET },
      });
      await stripe.customers.create({ email: 'patient@example.com' });
      await fake.settled();
      fake.forward({ url: hook.url, secret: SECRET });
      clock += 3_599;
      await new Promise((r) => setTimeout(r, 1_500));
      expect(hook.received).toHaveLength(0);
      clock += 1;
      const deadline = Date.now() + 5_000;
      while (hook.received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await fake.settled();
      expect(fake.deliveries.map((d) => [d.attempt, d.ok])).toEqual([
        [1, false],
        [2, true],
      ]);
    } finally {
      await hook.close();
    }
  });
});

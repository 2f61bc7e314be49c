import Stripe from 'stripe';
import { buildInvoice } from '../stripe-objects';
import { startFakeStripe, stripeConfigForApiBase, type FakeStripe } from './fake-stripe';
import { fakeStripeWithSdk } from './fake-stripe-sdk';

const NOW = 1_767_225_600;

describe('fake Stripe API, driven by the real stripe SDK', () => {
  let fake: FakeStripe;
  let stripe: Stripe;

  beforeEach(async () => ({ fake, stripe } = await fakeStripeWithSdk(NOW)));
  afterEach(() => fake.close());

  async function catalog() {
    const product = await stripe.products.create({ name: 'Gold' });
    const monthly = await stripe.prices.create({
      product: product.id,
      unit_amount: 1000,
      currency: 'usd',
      recurring: { interval: 'month' },
    });
    const annual = await stripe.prices.create({
      product: product.id,
      unit_amount: 10000,
      currency: 'usd',
      recurring: { interval: 'year' },
    });
    const customer = await stripe.customers.create({
      email: 'member@example.com',
      metadata: { gatehouse_member_id: 'm1' },
    });
    return { product, monthly, annual, customer };
  }

  it('maps STRIPE_API_BASE to the SDK host, port and protocol', () => {
    expect(stripeConfigForApiBase('http://127.0.0.1:12111')).toEqual({
      host: '127.0.0.1',
      port: 12111,
      protocol: 'http',
    });
  });

  it('answers each request after latencyMs, when asked to, and refuses a negative one', async () => {
    const slow = await startFakeStripe({ latencyMs: 150 });
    try {
      const sdk = new Stripe('sk_test_fake', { ...stripeConfigForApiBase(slow.url), maxNetworkRetries: 0 });
      const started = Date.now();
      await sdk.customers.create({ email: 'late@example.com' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    } finally {
      await slow.close();
    }
    await expect(startFakeStripe({ latencyMs: -1 })).rejects.toThrow(RangeError);
  });

  it('refuses requests past rateLimitPerSecond in the last second with a 429, as Stripe does', async () => {
    const limited = await fakeStripeWithSdk(NOW, { rateLimitPerSecond: 3 });
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 5 }, () => limited.stripe.customers.list({ limit: 1 })),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
      const refusals = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
      expect(refusals).toHaveLength(2);
      for (const err of refusals) {
        expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
        expect(err).toMatchObject({ statusCode: 429, code: 'rate_limit', type: 'StripeRateLimitError' });
      }
      expect(limited.fake.requests.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429]);
      // A second later it takes requests again.
      await new Promise((r) => setTimeout(r, 1_050));
      await expect(limited.stripe.customers.list({ limit: 1 })).resolves.toMatchObject({ object: 'list' });
    } finally {
      await limited.fake.close();
    }
    for (const rateLimitPerSecond of [0, 2.5, -1])
      await expect(startFakeStripe({ rateLimitPerSecond })).rejects.toThrow(RangeError);
  });

  it('creates, retrieves and lists customers by email', async () => {
    const { customer } = await catalog();
    expect(customer.id).toMatch(/^cus_/);
    expect((await stripe.customers.retrieve(customer.id)) as Stripe.Customer).toMatchObject({
      email: 'member@example.com',
      metadata: { gatehouse_member_id: 'm1' },
    });
    expect((await stripe.customers.list({ email: 'member@example.com' })).data.map((c) => c.id)).toEqual([
      customer.id,
    ]);
    expect((await stripe.customers.list({ email: 'other@example.com' })).data).toEqual([]);
  });

  it('answers a Stripe-shaped 404 for an unknown object', async () => {
    await expect(stripe.customers.retrieve('cus_nope')).rejects.toThrow(
      Stripe.errors.StripeInvalidRequestError,
    );
    await expect(stripe.customers.retrieve('cus_nope')).rejects.toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
      param: 'id',
    });
  });

  it('creates a checkout session whose url points at the fake, with its line items and discounts', async () => {
    const { monthly, customer } = await catalog();
    const coupon = await stripe.coupons.create({ percent_off: 20, duration: 'once' });
    const promo = await stripe.promotionCodes.create({
      promotion: { type: 'coupon', coupon: coupon.id },
      code: 'SPRING-20',
    } as Stripe.PromotionCodeCreateParams);
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      line_items: [{ price: monthly.id, quantity: 1 }],
      discounts: [{ promotion_code: promo.id }],
      client_reference_id: 'm1',
      metadata: { gatehouse_member_id: 'm1' },
      success_url: 'http://localhost/ok',
    });
    expect(session.url).toBe(`${fake.url}/checkout/${session.id}`);
    const page = await fetch(session.url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(session.id);
    expect((await stripe.checkout.sessions.listLineItems(session.id)).data[0].price?.id).toBe(monthly.id);
    expect((await stripe.promotionCodes.list({ code: 'spring-20' })).data.map((p) => p.id)).toEqual([
      promo.id,
    ]);
    await expect(
      stripe.checkout.sessions.create({ mode: 'payment', line_items: [{ price: monthly.id, quantity: 1 }] }),
    ).rejects.toMatchObject({ statusCode: 400 });
  });

  it('records a subscription item change verbatim (item id, quantity, proration behaviour and date) without prorating', async () => {
    const { monthly, annual, customer } = await catalog();
    const sub = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: monthly.id, quantity: 2 }],
    });
    const item = sub.items.data[0];
    expect(item).toMatchObject({ quantity: 2, current_period_start: NOW });
    const updated = await stripe.subscriptions.update(sub.id, {
      items: [{ id: item.id, price: annual.id, quantity: 2 }],
      proration_behavior: 'always_invoice',
      proration_date: NOW + 100,
    });
    expect(updated.items.data).toHaveLength(1);
    expect(updated.items.data[0]).toMatchObject({ id: item.id, quantity: 2, price: { id: annual.id } });
    const req = fake.requests.find((r) => r.method === 'POST' && r.path === `/v1/subscriptions/${sub.id}`);
    expect(req?.params).toEqual({
      items: [{ id: item.id, price: annual.id, quantity: '2' }],
      proration_behavior: 'always_invoice',
      proration_date: String(NOW + 100),
    });
    expect((await stripe.subscriptions.list({ price: annual.id })).data.map((s) => s.id)).toEqual([sub.id]);
    expect((await stripe.subscriptions.list({ price: monthly.id })).data).toEqual([]);
  });

  it('expands the references expand[] names, along dotted paths and on each object of a list', async () => {
    const { product, monthly, customer } = await catalog();
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: monthly.id }] });
    expect((await stripe.subscriptions.list({ price: monthly.id })).data[0].customer).toBe(customer.id);
    const listed = await stripe.subscriptions.list({ price: monthly.id, expand: ['data.customer'] });
    expect(listed).toMatchObject({
      object: 'list',
      data: [{ id: sub.id, customer: { id: customer.id, email: 'member@example.com' } }],
    });
    const retrieved = await stripe.subscriptions.retrieve(sub.id, {
      expand: ['customer', 'items.data.price.product'],
    });
    expect(retrieved.customer).toMatchObject({ object: 'customer', id: customer.id });
    expect(retrieved.items.data[0].price.product).toMatchObject({
      object: 'product',
      id: product.id,
      name: 'Gold',
    });
    // A path through nothing that is there leaves the object as it was.
    expect(
      await stripe.subscriptions.retrieve(sub.id, { expand: ['pending_setup_intent.payment_method'] }),
    ).toEqual(await stripe.subscriptions.retrieve(sub.id));
  });

  it('adds an item when the update names no item id, as Stripe does', async () => {
    const { monthly, annual, customer } = await catalog();
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: monthly.id }] });
    const updated = await stripe.subscriptions.update(sub.id, { items: [{ price: annual.id }] });
    expect(updated.items.data.map((i) => i.price.id)).toEqual([monthly.id, annual.id]);
  });

  it('cancels a subscription', async () => {
    const { monthly, customer } = await catalog();
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: monthly.id }] });
    expect(await stripe.subscriptions.cancel(sub.id)).toMatchObject({ status: 'canceled', ended_at: NOW });
    expect((await stripe.subscriptions.list({ customer: customer.id })).data).toEqual([]);
    expect((await stripe.subscriptions.list({ customer: customer.id, status: 'all' })).data).toHaveLength(1);
  });

  it('sets and clears cancel_at, refusing a time that has passed', async () => {
    const { monthly, customer } = await catalog();
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: monthly.id }] });
    expect(sub.cancel_at).toBeNull();
    expect((await stripe.subscriptions.update(sub.id, { cancel_at: NOW + 90 * 86_400 })).cancel_at).toBe(
      NOW + 90 * 86_400,
    );
    await expect(stripe.subscriptions.update(sub.id, { cancel_at: NOW })).rejects.toThrow(/in the future/);
    expect((await stripe.subscriptions.update(sub.id, { cancel_at: '' as never })).cancel_at).toBeNull();
  });

  it('creates a schedule from a subscription, updates its phases and releases it', async () => {
    const { monthly, annual, customer } = await catalog();
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: annual.id }] });
    const sched = await stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    expect(sched).toMatchObject({
      subscription: sub.id,
      status: 'active',
      phases: [{ start_date: NOW, items: [{ price: annual.id }] }],
    });
    expect(((await stripe.subscriptions.retrieve(sub.id)) as Stripe.Subscription).schedule).toBe(sched.id);
    const end = sched.phases[0].end_date;
    const updated = await stripe.subscriptionSchedules.update(sched.id, {
      phases: [
        { items: [{ price: annual.id, quantity: 1 }], start_date: NOW, end_date: end },
        { items: [{ price: monthly.id, quantity: 1 }], start_date: end },
      ],
    } as Stripe.SubscriptionScheduleUpdateParams);
    expect(updated.phases.map((p) => [p.items[0].price, p.start_date, p.end_date])).toEqual([
      [annual.id, NOW, end],
      [monthly.id, end, null],
    ]);
    const released = await stripe.subscriptionSchedules.release(sched.id);
    expect(released).toMatchObject({ status: 'released', released_subscription: sub.id });
    expect(((await stripe.subscriptions.retrieve(sub.id)) as Stripe.Subscription).schedule).toBeNull();
  });

  it('creates billing portal sessions', async () => {
    const { customer } = await catalog();
    const portal = await stripe.billingPortal.sessions.create({
      customer: customer.id,
      return_url: 'http://localhost/back',
    });
    expect(portal.url).toBe(`${fake.url}/billing_portal/${portal.id}`);
  });

  it('replays the same response for the same Idempotency-Key, and refuses the key with other parameters', async () => {
    const a = await stripe.customers.create({ email: 'x@example.com' }, { idempotencyKey: 'k1' });
    const b = await stripe.customers.create({ email: 'x@example.com' }, { idempotencyKey: 'k1' });
    expect(b.id).toBe(a.id);
    expect((await stripe.customers.list({ email: 'x@example.com' })).data).toHaveLength(1);
    await expect(
      stripe.customers.create({ email: 'y@example.com' }, { idempotencyKey: 'k1' }),
    ).rejects.toThrow(Stripe.errors.StripeIdempotencyError);
  });

  it('forgets an Idempotency-Key after 24 hours, as Stripe may', async () => {
    let now = NOW;
    const later = await startFakeStripe({ clock: () => now });
    try {
      const sdk = new Stripe('sk_test_fake', { ...stripeConfigForApiBase(later.url), maxNetworkRetries: 0 });
      const a = await sdk.products.create({ name: 'Gold' }, { idempotencyKey: 'k-day' });
      now = NOW + 86_399;
      expect((await sdk.products.create({ name: 'Gold' }, { idempotencyKey: 'k-day' })).id).toBe(a.id);
      now = NOW + 86_400;
      expect((await sdk.products.create({ name: 'Gold' }, { idempotencyKey: 'k-day' })).id).not.toBe(a.id);
    } finally {
      await later.close();
    }
  });

  it('serves seeded invoices and emitted events', async () => {
    const invoice = buildInvoice({ id: 'in_seeded', subscription: 'sub_x' }, '2025-03-31.basil');
    fake.seed(invoice as never);
    expect((await stripe.invoices.retrieve('in_seeded')).id).toBe('in_seeded');
    expect((await stripe.invoices.list({ subscription: 'sub_x' })).data.map((i) => i.id)).toEqual([
      'in_seeded',
    ]);
  });

  it('keeps connected accounts apart by Stripe-Account', async () => {
    const c = await stripe.customers.create({ email: 'a@example.com' }, { stripeAccount: 'acct_1' });
    await expect(stripe.customers.retrieve(c.id)).rejects.toMatchObject({ statusCode: 404 });
    expect((await stripe.customers.retrieve(c.id, {}, { stripeAccount: 'acct_1' })).id).toBe(c.id);
  });
});

import { createStripeClient } from '@gatehouse/api';
import { eventually, startCliProcess } from '@test/support';

// `gatehouse stripe fake` as a user runs it for a demo: the fake Stripe API in the foreground, reached
// by the real Stripe SDK through STRIPE_API_BASE, stopped with Ctrl-C.

describe('gatehouse stripe fake', () => {
  it('serves the Stripe API to the real SDK until SIGINT', async () => {
    const fake = startCliProcess(['stripe', 'fake', '--port', '0'], { PATH: process.env.PATH });
    try {
      const url = await eventually(
        async () => /STRIPE_API_BASE=(http:\/\/\S+)/.exec(fake.stdout())?.[1],
        30_000,
      );
      const stripe = createStripeClient({ stripeSecretKey: 'sk_test_fake', stripeApiBase: new URL(url) })!;

      const product = await stripe.products.create({ name: 'Gold' });
      const price = await stripe.prices.create({
        product: product.id,
        unit_amount: 900,
        currency: 'eur',
        recurring: { interval: 'month' },
      });
      const customer = await stripe.customers.create({ email: 'ada@example.com' });
      expect(await stripe.customers.retrieve(customer.id)).toMatchObject({
        id: customer.id,
        email: 'ada@example.com',
      });
      expect(await stripe.prices.retrieve(price.id)).toMatchObject({ unit_amount: 900, product: product.id });
      const listed = await stripe.customers.list({ email: 'ada@example.com' });
      expect(listed.data.map((c) => c.id)).toEqual([customer.id]);
      await expect(stripe.customers.retrieve('cus_missing')).rejects.toMatchObject({ statusCode: 404 });
    } finally {
      fake.kill('SIGINT');
    }
    expect(await fake.exited).toBe(0);
    expect(fake.stderr()).toContain('fake Stripe API stopped');
  }, 60_000);
});

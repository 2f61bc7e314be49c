import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { createStripeClient } from '@gatehouse/api';
import { eventually, startCliProcess, type CliProcess } from '@test/support';
import { runCli } from './support/webhook-client';

// `gatehouse stripe fake` as a user runs it for a demo: the fake Stripe API in the foreground, reached
// by the real Stripe SDK through STRIPE_API_BASE, stopped with Ctrl-C.

/** The API base a started `gatehouse stripe fake` prints, once it listens. */
const apiBaseOf = (fake: CliProcess) =>
  eventually(async () => /STRIPE_API_BASE=(http:\/\/\S+)/.exec(fake.stdout())?.[1], 30_000);

/**
 * Runs `gatehouse stripe fake --port 0 <options>` while `use` talks to it through the real SDK, then
 * stops it with Ctrl-C (whatever `use` did) and expects it to exit 0. Answers the stopped process.
 */
async function withFakeCli(
  options: string[],
  use: (it: { fake: CliProcess; stripe: Stripe; url: string }) => Promise<void>,
): Promise<CliProcess> {
  const fake = startCliProcess(['stripe', 'fake', '--port', '0', ...options], { PATH: process.env.PATH });
  try {
    const url = await apiBaseOf(fake);
    const stripe = createStripeClient({ stripeSecretKey: 'sk_test_fake', stripeApiBase: new URL(url) })!;
    await use({ fake, stripe, url });
  } finally {
    fake.kill('SIGINT');
  }
  expect(await fake.exited).toBe(0);
  return fake;
}

describe('gatehouse stripe fake', () => {
  it('serves the Stripe API to the real SDK until SIGINT', async () => {
    const stopped = await withFakeCli([], async ({ fake, stripe, url }) => {
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

      // The printed way to move its time: a monthly subscription renews 31 days on.
      const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
      const advance = /curl -X POST (\S+\/fake\/advance) -d days=30/.exec(fake.stdout())?.[1];
      expect(advance).toBe(`${url}/fake/advance`);
      const moved = await fetch(advance!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'days=31',
      });
      expect(moved.status).toBe(200);
      const invoices = await stripe.invoices.list({ subscription: sub.id });
      expect(invoices.data.map((i) => i.billing_reason)).toEqual([
        'subscription_cycle',
        'subscription_create',
      ]);

      // A one-time payment on its Checkout page, refunded in part, then disputed the printed way.
      const once = await stripe.prices.create({ product: product.id, unit_amount: 2000, currency: 'eur' });
      const session = await stripe.checkout.sessions.create({
        mode: 'payment',
        line_items: [{ price: once.id, quantity: 1 }],
        success_url: 'https://example.com/thanks',
      });
      const paid = await fetch(`${url}/checkout/${session.id}/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'email=bea%40example.com',
        redirect: 'manual',
      });
      expect(paid.status).toBe(303);
      const pi = (await stripe.checkout.sessions.retrieve(session.id)).payment_intent as string;
      expect(await stripe.refunds.create({ payment_intent: pi, amount: 500 })).toMatchObject({ amount: 500 });
      const disputes = /curl -X POST (\S+\/fake\/disputes) -d charge=ch_…/.exec(fake.stdout())?.[1];
      expect(disputes).toBe(`${url}/fake/disputes`);
      const opened = await fetch(disputes!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `payment_intent=${pi}`,
      });
      expect(opened.status).toBe(200);
      expect(await opened.json()).toMatchObject({
        object: 'dispute',
        amount: 1500,
        status: 'needs_response',
      });
      const [charge] = (await stripe.charges.list({ payment_intent: pi })).data;
      expect(charge).toMatchObject({ amount_refunded: 500, disputed: true });
      // The printed way to settle a debit answers at its address (a card payment has nothing to settle).
      const settle = /curl -X POST (\S+\/fake\/payments)\/pi_…\/settle -d outcome=succeeded/.exec(
        fake.stdout(),
      )?.[1];
      expect(settle).toBe(`${url}/fake/payments`);
      const settled = await fetch(`${settle}/${pi}/settle`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'outcome=succeeded',
      });
      expect(settled.status).toBe(400);
      expect(((await settled.json()) as { error: { message: string } }).error.message).toMatch(
        /not processing/,
      );
      // The printed ways to decline a customer's card and to give them an Indian one: the next
      // renewal of ada's subscription is declined, and the subscription past due.
      const printed = (what: string) =>
        new RegExp(`curl -X POST (\\S+)/cus_…/${what} -d (\\S+)`).exec(fake.stdout())?.slice(1);
      for (const [what, body] of [
        ['card_declines', 'declines=true'],
        ['card_country', 'country=IN'],
      ]) {
        const [base, shown] = printed(what) ?? [];
        expect([base, shown]).toEqual([`${url}/fake/customers`, body]);
        const set = await fetch(`${base}/${customer.id}/${what}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: shown,
        });
        expect(set.status).toBe(200);
      }
      // The next renewal comes within 31 days, and its charge 26 hours later (an Indian card).
      const renewed = await fetch(`${url}/fake/advance`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'days=33',
      });
      expect(renewed.status).toBe(200);
      expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
      const [failed] = (await stripe.events.list({ type: 'invoice.payment_failed' })).data.slice(-1);
      const declined = failed.data.object as Stripe.Invoice;
      expect(failed.created - declined.status_transitions.finalized_at!).toBe(26 * 3600);
    });
    expect(stopped.stderr()).toContain('fake Stripe API stopped');
  }, 60_000);

  it('sends what it records to --forward-to, signed with --webhook-secret, one line per delivery', async () => {
    const whsec = 'whsec_fake_cli_forward';
    const verifier = new Stripe('sk_test_verify_only');
    const received: Stripe.Event[] = [];
    /** The endpoint answers 503 to these customers' events until told otherwise. */
    const refusing = new Set(['late@example.com']);
    const endpoint = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const event = verifier.webhooks.constructEvent(
            Buffer.concat(chunks),
            String(req.headers['stripe-signature']),
            whsec,
          );
          received.push(event);
          res.statusCode = refusing.has(String((event.data.object as { email?: string }).email)) ? 503 : 200;
        } catch {
          res.statusCode = 400;
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const target = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/webhooks/stripe`;
    try {
      await withFakeCli(
        ['--forward-to', target, '--webhook-secret', whsec],
        async ({ fake, stripe, url }) => {
          expect(fake.stdout()).toContain(`Sending its events to ${target}`);
          expect(fake.stdout()).toContain('a refused one is tried again after 1, 3 and 6 hours of its time');
          const customer = await stripe.customers.create(
            { email: 'grace@example.com' },
            { stripeAccount: 'acct_forwarded' },
          );
          const event = await eventually(async () => received[0], 10_000);
          expect(event).toMatchObject({
            type: 'customer.created',
            account: 'acct_forwarded',
            data: { object: { id: customer.id, email: 'grace@example.com' } },
          });
          await eventually(
            async () =>
              fake.stderr().includes(`--> customer.created [${event.id}] acct_forwarded: 200`) || undefined,
            10_000,
          );

          // Refused: the line says when it is tried again; moving the fake's time an hour on sends it.
          await stripe.customers.create({ email: 'late@example.com' });
          const late = await eventually(async () => received[1], 10_000);
          const refused = await eventually(
            async () =>
              new RegExp(`-x- customer\\.created \\[${late.id}\\]: 503, tried again at (\\S+)\\n`).exec(
                fake.stderr(),
              )?.[1],
            10_000,
          );
          // An hour after the refusal (the wall clock may have ticked on since the event was created).
          expect(Date.parse(refused) / 1000 - late.created - 3_600).toBeGreaterThanOrEqual(0);
          expect(Date.parse(refused) / 1000 - late.created - 3_600).toBeLessThan(3);
          refusing.clear();
          const advanced = await fetch(`${url}/fake/advance`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: 'seconds=3600',
          });
          expect(advanced.status).toBe(200);
          await eventually(
            async () =>
              fake.stderr().includes(`--> customer.created [${late.id}]: 200 (attempt 2)`) || undefined,
            10_000,
          );
          expect(received.map((e) => e.id)).toEqual([event.id, late.id, late.id]);
        },
      );
    } finally {
      endpoint.close();
    }
  }, 60_000);

  it('answers after --latency milliseconds', async () => {
    await withFakeCli(['--latency', '400'], async ({ fake, stripe }) => {
      expect(fake.stdout()).toContain('Each API request waits 400 ms before it is answered.');
      const started = Date.now();
      await stripe.customers.create({ email: 'slow@example.com' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    });
  }, 60_000);

  it('refuses API requests past --rate-limit a second with a 429, as Stripe does', async () => {
    await withFakeCli(['--rate-limit', '2'], async ({ fake, stripe }) => {
      expect(fake.stdout()).toContain('API requests past 2 in a second are refused with a 429 (rate_limit).');
      const outcomes = await Promise.allSettled([1, 2, 3].map(() => stripe.customers.list({ limit: 1 })));
      expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      expect(outcomes.find((o) => o.status === 'rejected')).toMatchObject({
        reason: { statusCode: 429, code: 'rate_limit' },
      });
    });
    const refused = await runCli(['stripe', 'fake', '--port', '0', '--rate-limit', '0'], {
      PATH: process.env.PATH,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--rate-limit must be an integer from 1 to 100');
  }, 60_000);

  it('refuses a --forward-to that is not an http(s) URL', async () => {
    const r = await runCli(['stripe', 'fake', '--port', '0', '--forward-to', 'localhost:4000'], {
      PATH: process.env.PATH,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--forward-to must be');
  });
});

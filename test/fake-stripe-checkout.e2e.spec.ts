import jwt from 'jsonwebtoken';
import type Stripe from 'stripe';
import { createStripeClient } from '@gatehouse/api';
import { eventually } from '@test/support';
import { graphqlAs, type Loose } from './support/e2e-calls';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { runCli } from './support/webhook-client';

// The loop a user tries by hand with `gatehouse stripe fake --forward-to …`: a buyer pays on the fake
// Stripe's Checkout page, the fake sends its signed events to the server's webhook endpoint, and the
// member's access follows; a delivery the endpoint refused is tried again, and an event the endpoint
// missed is recovered by `gatehouse stripe reconcile`.

const secret = 'fake-checkout-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_fake_checkout_e2e';
const account = 'acct_fakecheckout';
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const urls = { successUrl: 'https://makers.example/thanks', cancelUrl: 'https://makers.example/' };

describe('buying on the fake Stripe’s Checkout page', () => {
  let gh: GatehouseUnderTest;
  let stripe: Stripe;
  let c: string;
  let group: string;
  let monthly: string;
  let workshop: string;
  let plan: string;
  let silverMonthly: string;
  let tier: string;
  /** Added to the fake Stripe's clock (seconds). */
  let shift = 0;

  const gql = graphqlAs(() => gh.server.url, admin);
  const endpoint = () => ({ url: `${gh.server.url}/webhooks/stripe`, secret: whsec });

  const membership = (member: string) =>
    gql(
      `query($c: ID!, $m: ID!) { membership(communityId: $c, memberId: $m) { status tier { name } stripeSubscriptionId } }`,
      { c, m: member },
    ).then((d) => d.membership as Loose);
  const allowed = (member: string, resource: Loose) =>
    gql(
      `query($c: ID!, $m: ID!, $r: ResourceInput!) { canAccess(communityId: $c, memberId: $m, resource: $r) { allowed } }`,
      { c, m: member, r: resource },
    ).then((d) => d.canAccess.allowed as boolean);

  /** Starts a checkout through Gatehouse and pays it on the fake's page, as a buyer would. */
  async function buy(
    member: string,
    priceId: string,
    promotionCode?: string,
    method?: 'sepa_debit',
  ): Promise<string> {
    const d = await gql(`mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { id url } }`, {
      input: { communityId: c, priceId, memberId: member, email: `${member}@example.com`, ...urls },
    });
    const page = await (await fetch(d.startCheckout.url)).text();
    const action = /<form method="post" action="([^"]+)"/.exec(page)?.[1];
    expect(action).toBe(`/checkout/${d.startCheckout.id}/complete`);
    const paid = await fetch(new URL(action!, d.startCheckout.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        email: `${member}@example.com`,
        ...(promotionCode && { promotion_code: promotionCode }),
        ...(method && { method }),
      }),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toBe(urls.successUrl);
    await gh.fake.settled();
    return d.startCheckout.id as string;
  }

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      {
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_WEBHOOK_SECRET: whsec,
        STRIPE_SECRET_KEY: 'sk_test_fake_checkout',
      },
      'gh_fake_checkout',
      { clock: () => Math.floor(Date.now() / 1000) + shift },
    );
    gh.fake.forward(endpoint());
    stripe = createStripeClient({ stripeSecretKey: 'sk_test_fake', stripeApiBase: new URL(gh.fake.url) })!;
    c = (
      await gql(
        `mutation { createCommunity(input: { name: "Makers", region: EU, stripeAccountId: "${account}" }) { id } }`,
      )
    ).createCommunity.id;
    group = (await gql(`mutation { createGroup(input: { communityId: "${c}", name: "Workshop" }) { id } }`))
      .createGroup.id;
    tier = (
      await gql(
        `mutation { createTier(input: { communityId: "${c}", name: "Gold", rank: 2, groupIds: ["${group}"] }) { id } }`,
      )
    ).createTier.id;
    // Without a stripePriceId, Gatehouse creates the product and price in the (fake) Stripe account.
    const price = (kind: string, id: string, frequency: string, extra: Loose = {}) =>
      gql(`mutation($input: CreatePriceInput!) { createPrice(input: $input) { id stripePriceId } }`, {
        input: { communityId: c, product: { kind, id }, amount: 1500, currency: 'eur', frequency, ...extra },
      }).then((d) => d.createPrice.id as string);
    monthly = await price('TIER', tier, 'MONTHLY');
    workshop = await price('GROUP', group, 'ONE_TIME');
    plan = await price('GROUP', group, 'INSTALLMENTS', { installments: 3 });
    const silver = (
      await gql(`mutation { createTier(input: { communityId: "${c}", name: "Silver", rank: 1 }) { id } }`)
    ).createTier.id as string;
    silverMonthly = await price('TIER', silver, 'MONTHLY', { amount: 900 });
  }, 180_000);

  afterAll(() => gh?.close());

  it('a new member pays for a subscription: the fake’s webhooks grant the tier and its group', async () => {
    await buy('ada', monthly);
    const subs = await stripe.subscriptions.list({}, { stripeAccount: account });
    const sub = subs.data.find((s) => s.metadata.gatehouse_member_id === 'ada')!;
    expect(sub).toBeDefined();
    const m = await eventually(async () => {
      const now = await membership('ada');
      return now.status === 'ACTIVE' ? now : undefined;
    });
    expect(m).toEqual({ status: 'ACTIVE', tier: { name: 'Gold' }, stripeSubscriptionId: sub.id });
    expect(await allowed('ada', { kind: 'GROUP', id: group })).toBe(true);
    // Every event the fake recorded for the account reached the server and was acknowledged.
    const sent = gh.fake.deliveries.filter((d) => d.account === account);
    expect(sent.map((d) => d.type)).toEqual(
      expect.arrayContaining([
        'customer.created',
        'customer.subscription.created',
        'checkout.session.completed',
      ]),
    );
    expect(sent.every((d) => d.status === 200)).toBe(true);
  }, 60_000);

  it('members starting checkouts while Stripe refuses some for its rate get their sessions all the same', async () => {
    gh.fake.setRateLimit(2);
    const refused = () => gh.fake.requests.filter((r) => r.status === 429).length;
    const before = refused();
    try {
      const started = await Promise.all(
        ['rate1', 'rate2', 'rate3', 'rate4'].map((member) =>
          gql(`mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { id url } }`, {
            input: {
              communityId: c,
              priceId: monthly,
              memberId: member,
              email: `${member}@example.com`,
              ...urls,
            },
          }),
        ),
      );
      expect(started.map((d) => d.startCheckout.url.startsWith(gh.fake.url))).toEqual([
        true,
        true,
        true,
        true,
      ]);
      expect(new Set(started.map((d) => d.startCheckout.id)).size).toBe(4);
      expect(refused() - before).toBeGreaterThanOrEqual(2);
      // The operator sees the refusals.
      const metrics = await (await fetch(`${gh.server.url}/metrics`)).text();
      expect(Number(/^gatehouse_stripe_rate_limited_total (\d+)$/m.exec(metrics)?.[1])).toBe(
        refused() - before,
      );
      // And how long Stripe takes to answer: each try of the four sessions, the refused ones too.
      const tries =
        /^gatehouse_stripe_request_duration_seconds_count\{method="POST",path="\/v1\/checkout\/sessions"\} (\d+)$/m;
      expect(Number(tries.exec(metrics)?.[1])).toBeGreaterThanOrEqual(4 + refused() - before);
    } finally {
      gh.fake.setRateLimit(undefined);
    }
  }, 60_000);

  it('the owner cancels the subscription in Stripe: the member loses access', async () => {
    const sub = (await stripe.subscriptions.list({}, { stripeAccount: account })).data.find(
      (s) => s.metadata.gatehouse_member_id === 'ada',
    )!;
    await stripe.subscriptions.cancel(sub.id, {}, { stripeAccount: account });
    await gh.fake.settled();
    await eventually(async () => ((await membership('ada')).status === 'CANCELED' ? true : undefined));
    expect(await allowed('ada', { kind: 'GROUP', id: group })).toBe(false);
  }, 60_000);

  it('a one-time purchase grants its group, though Stripe’s session event names no line items', async () => {
    expect(await allowed('bea', { kind: 'GROUP', id: group })).toBe(false);
    await buy('bea', workshop);
    await eventually(async () => ((await allowed('bea', { kind: 'GROUP', id: group })) ? true : undefined));
  }, 60_000);

  /** The member's access changes to `group`, oldest first, with the ledger event that caused each. */
  const groupHistory = async (member: string) =>
    (
      await gql(
        `query($c: ID!, $m: ID!) { accessHistory(communityId: $c, memberId: $m, first: 50) { edges { node { change resource { kind id } causedBy { id type } } } } }`,
        { c, m: member },
      )
    ).accessHistory.edges
      .map((e: Loose) => e.node)
      .filter((n: Loose) => n.resource.kind === 'GROUP' && n.resource.id === group)
      .map((n: Loose) => ({ change: n.change, by: n.causedBy.type, event: n.causedBy.id })) as Loose[];

  /** The charge of the one-time payment `member` made, as the owner finds it in Stripe. */
  async function chargeOf(member: string): Promise<Stripe.Charge> {
    const charges = await stripe.charges.list({ limit: 100 }, { stripeAccount: account });
    const charge = charges.data.find((ch) => ch.billing_details.email === `${member}@example.com`);
    expect(charge).toBeDefined();
    return charge!;
  }

  /** The id of the latest event of `type` the fake recorded for the account. */
  const latestEvent = async (type: string) =>
    (await stripe.events.list({ type, limit: 1 }, { stripeAccount: account })).data[0].id;

  it('the owner refunds the purchase in Stripe, part then the rest: only the full refund takes the group away', async () => {
    const charge = await chargeOf('bea');
    expect(charge).toMatchObject({ amount: 1500, currency: 'eur', refunded: false });
    const pi = charge.payment_intent as string;
    await stripe.refunds.create({ payment_intent: pi, amount: 500 }, { stripeAccount: account });
    const partial = await latestEvent('charge.refunded');
    await stripe.refunds.create({ payment_intent: pi }, { stripeAccount: account });
    const full = await latestEvent('charge.refunded');
    expect(full).not.toBe(partial);
    await gh.fake.settled();
    await eventually(async () => ((await allowed('bea', { kind: 'GROUP', id: group })) ? undefined : true));
    const history = await groupHistory('bea');
    expect(history.map((h) => [h.change, h.by])).toEqual([
      ['GRANTED', 'checkout.session.completed'],
      ['REVOKED', 'charge.refunded'],
    ]);
    expect(history[1].event).toBe(full);
  }, 60_000);

  it('the owner refunds a monthly payment in Stripe: a refund does not cancel the subscription', async () => {
    await buy('ivy', monthly);
    await eventually(async () => ((await membership('ivy')).status === 'ACTIVE' ? true : undefined));
    const sub = (await stripe.subscriptions.list({}, { stripeAccount: account })).data.find(
      (x) => x.metadata.gatehouse_member_id === 'ivy',
    )!;
    const [payment] = (
      await stripe.invoicePayments.list({ invoice: sub.latest_invoice as string }, { stripeAccount: account })
    ).data;
    const refund = await stripe.refunds.create(
      { payment_intent: payment.payment.payment_intent as string },
      { stripeAccount: account },
    );
    expect(refund).toMatchObject({ amount: 1500, status: 'succeeded' });
    // Something later in the community's log: once it is projected, so is the refund.
    await buy('jon', workshop);
    await eventually(async () => ((await allowed('jon', { kind: 'GROUP', id: group })) ? true : undefined));
    const refunded = await latestEvent('charge.refunded');
    const recorded = await gql(
      `query($c: ID!) { ledgerEvents(communityId: $c, first: 500) { edges { node { id } } } }`,
      {
        c,
      },
    );
    expect(recorded.ledgerEvents.edges.map((e: Loose) => e.node.id)).toContain(refunded);
    expect(await membership('ivy')).toMatchObject({ status: 'ACTIVE', tier: { name: 'Gold' } });
    expect(await allowed('ivy', { kind: 'GROUP', id: group })).toBe(true);
    expect((await groupHistory('ivy')).map((h) => h.change)).toEqual(['GRANTED']);
  }, 60_000);

  it('buyers pay by SEPA debit: the group comes once the bank confirms, and not when it refuses', async () => {
    const workshopGroup = { kind: 'GROUP', id: group };
    const sessions = { kai: await buy('kai', workshop, undefined, 'sepa_debit'), lea: '' };
    sessions.lea = await buy('lea', workshop, undefined, 'sepa_debit');
    /** A card purchase after everything so far: once it grants, what came before is projected. */
    const caughtUp = async (member: string) => {
      await buy(member, workshop);
      await eventually(async () => ((await allowed(member, workshopGroup)) ? true : undefined));
    };
    await caughtUp('max');
    expect(await allowed('kai', workshopGroup)).toBe(false);
    expect(await allowed('lea', workshopGroup)).toBe(false);

    const intentOf = async (session: string) =>
      (await stripe.checkout.sessions.retrieve(session, {}, { stripeAccount: account }))
        .payment_intent as string;
    gh.fake.settlePayment(await intentOf(sessions.kai), 'succeeded');
    gh.fake.settlePayment(await intentOf(sessions.lea), 'failed');
    await gh.fake.settled();
    await eventually(async () => ((await allowed('kai', workshopGroup)) ? true : undefined));
    await caughtUp('ned');
    expect(await allowed('lea', workshopGroup)).toBe(false);
    expect((await groupHistory('kai')).map((h) => [h.change, h.by])).toEqual([
      ['GRANTED', 'checkout.session.async_payment_succeeded'],
    ]);
    expect(await groupHistory('lea')).toEqual([]);
  }, 90_000);

  it('the buyer’s bank disputes a purchase: access is suspended, back when the dispute is won, revoked when it is lost', async () => {
    await buy('cyd', workshop);
    await buy('dan', workshop);
    for (const m of ['cyd', 'dan'])
      await eventually(async () => ((await allowed(m, { kind: 'GROUP', id: group })) ? true : undefined));

    // Disputes come later than the payment; the fake dates its events to the second.
    await new Promise((r) => setTimeout(r, 1_100));
    const cyd = gh.fake.dispute((await chargeOf('cyd')).id);
    const dan = gh.fake.dispute((await chargeOf('dan')).payment_intent as string);
    await gh.fake.settled();
    for (const m of ['cyd', 'dan'])
      await eventually(async () => ((await allowed(m, { kind: 'GROUP', id: group })) ? undefined : true));

    // The owner accepts dan's dispute (Stripe counts it lost); the bank decides cyd's for the owner.
    await stripe.disputes.close(dan.id, {}, { stripeAccount: account });
    gh.fake.closeDispute(cyd.id, 'won');
    await gh.fake.settled();
    // Projected in log order: once cyd's win is in, so is dan's loss.
    await eventually(async () => ((await allowed('cyd', { kind: 'GROUP', id: group })) ? true : undefined));
    expect(await allowed('dan', { kind: 'GROUP', id: group })).toBe(false);
    const opened = await stripe.events.list(
      { type: 'charge.dispute.created', limit: 10 },
      { stripeAccount: account },
    );
    const openedFor = (d: { id: string }) =>
      opened.data.find((e) => (e.data.object as Stripe.Dispute).id === d.id)!.id;
    expect(await groupHistory('cyd')).toEqual([
      { change: 'GRANTED', by: 'checkout.session.completed', event: expect.any(String) },
      { change: 'SUSPENDED', by: 'charge.dispute.created', event: openedFor(cyd) },
      { change: 'RESTORED', by: 'charge.dispute.closed', event: await latestEvent('charge.dispute.closed') },
    ]);
    // Lost, the suspension is final: revoked, for the dispute's end.
    const closed = await stripe.events.list(
      { type: 'charge.dispute.closed', limit: 10 },
      { stripeAccount: account },
    );
    const lost = closed.data.find((e) => (e.data.object as Stripe.Dispute).id === dan.id)!.id;
    expect((await groupHistory('dan')).map((h) => [h.change, h.event])).toEqual([
      ['GRANTED', expect.any(String)],
      ['SUSPENDED', openedFor(dan)],
      ['REVOKED', lost],
    ]);
  }, 90_000);

  it('an installment plan bought on Checkout is bounded in Stripe: Gatehouse sets its cancel_at', async () => {
    await buy('eve', plan);
    const sub = await eventually(async () => {
      const found = (await stripe.subscriptions.list({}, { stripeAccount: account })).data.find(
        (s) => s.metadata.gatehouse_member_id === 'eve',
      );
      return found?.cancel_at ? found : undefined;
    });
    // Three monthly installments from the start (no trial).
    const ends = new Date(sub.start_date * 1000);
    ends.setUTCMonth(ends.getUTCMonth() + 3);
    expect(sub.cancel_at).toBe(Math.floor(ends.getTime() / 1000));
    expect(sub.metadata.gatehouse_installments).toBe('3');
    await gh.fake.settled();
    const update = gh.fake.deliveries.filter((d) => d.type === 'customer.subscription.updated').at(-1);
    expect(update).toMatchObject({ status: 200, account });
    // Acknowledged means durable, not yet projected: the projector applies it a moment later.
    const m = await eventually(async () => {
      const d = await gql(
        `query($c: ID!) { membership(communityId: $c, memberId: "eve") { status installmentsTotal } }`,
        { c },
      );
      return d.membership?.installmentsTotal === 3 ? d.membership : undefined;
    });
    expect(m).toMatchObject({ status: 'ACTIVE', installmentsTotal: 3 });
    expect(await allowed('eve', { kind: 'GROUP', id: group })).toBe(true);
  }, 60_000);

  it('an event the endpoint did not take is listed as undelivered and recovered by reconcile', async () => {
    // The endpoint is gone (nothing listens on port 9): every delivery attempt fails.
    gh.fake.forward({ url: 'http://127.0.0.1:9/webhooks/stripe', secret: whsec });
    await buy('cyd', monthly);
    expect(gh.fake.deliveries.at(-1)).toMatchObject({ type: 'checkout.session.completed', ok: false });
    const undelivered = await stripe.events.list({ delivery_success: false }, { stripeAccount: account });
    expect(undelivered.data.map((e) => e.type)).toEqual(
      expect.arrayContaining(['customer.subscription.created', 'checkout.session.completed']),
    );
    expect((await membership('cyd')).status).toBe('NONE');

    const reconciled = await runCli(['stripe', 'reconcile', '--since', '1h', '--community', c], {
      ...gh.env,
      STRIPE_SECRET_KEY: 'sk_test_fake_checkout',
    });
    expect(reconciled.code).toBe(0);
    for (const e of undelivered.data) expect(reconciled.stdout).toContain(`  + ${e.id}`);
    await eventually(async () => ((await membership('cyd')).status === 'ACTIVE' ? true : undefined));
    expect(await allowed('cyd', { kind: 'GROUP', id: group })).toBe(true);
    gh.fake.forward(endpoint());
  }, 90_000);

  it('deliveries the server refused are tried again by the fake an hour later, and the purchase lands', async () => {
    // The endpoint is set up with the wrong signing secret: the server answers 400 and keeps nothing.
    gh.fake.forward({ ...endpoint(), secret: 'whsec_not_the_servers' });
    const from = gh.fake.deliveries.length;
    await buy('hal', monthly);
    const refused = gh.fake.deliveries.slice(from);
    expect(refused.map((d) => d.type)).toContain('checkout.session.completed');
    expect(refused.every((d) => d.status === 400 && d.attempt === 1 && d.nextAttemptAt !== undefined)).toBe(
      true,
    );
    expect((await membership('hal')).status).toBe('NONE');

    // Set right; an hour later, by the fake's own clock, it tries each of them again.
    gh.fake.forward(endpoint());
    const before = gh.fake.deliveries.length;
    shift = 3_600;
    try {
      await eventually(async () => gh.fake.deliveries.length >= before + refused.length || undefined);
      await gh.fake.settled();
    } finally {
      shift = 0;
    }
    const retried = gh.fake.deliveries.slice(before);
    expect(retried.every((d) => d.ok && d.attempt === 2)).toBe(true);
    expect(retried.map((d) => d.eventId)).toEqual(expect.arrayContaining(refused.map((d) => d.eventId)));
    const undelivered = await stripe.events.list({ delivery_success: false }, { stripeAccount: account });
    for (const d of refused) expect(undelivered.data.map((e) => e.id)).not.toContain(d.eventId);
    await eventually(async () => ((await membership('hal')).status === 'ACTIVE' ? true : undefined));
    expect(await allowed('hal', { kind: 'GROUP', id: group })).toBe(true);
  }, 60_000);

  it('a buyer types a promo code on the Checkout page: the redemption is counted from Stripe’s events', async () => {
    // Created through Gatehouse, so it exists in the (fake) Stripe account too.
    await gql(`mutation($input: CreatePromoCodeInput!) { createPromoCode(input: $input) { id } }`, {
      input: { communityId: c, code: 'Friends-15', percentOff: 15, duration: 'ONCE' },
    });
    await buy('dee', monthly, 'friends-15');
    await eventually(async () => ((await membership('dee')).status === 'ACTIVE' ? true : undefined));
    const redeemed = await eventually(async () => {
      const d = await gql(`query($c: ID!) { promoCodes(communityId: $c) { code timesRedeemed } }`, { c });
      const promo = (d.promoCodes as Loose[]).find((p) => p.code === 'Friends-15')!;
      return promo.timesRedeemed > 0 ? promo.timesRedeemed : undefined;
    });
    expect(redeemed).toBe(1);
  }, 60_000);

  it('the member cancels in the billing portal: access stays until the end of the paid period', async () => {
    const d = await gql(
      `mutation($c: ID!) { billingPortalUrl(communityId: $c, memberId: "dee", returnUrl: "https://makers.example/account") }`,
      { c },
    );
    const page = await (await fetch(d.billingPortalUrl)).text();
    const cancel =
      /<form method="post" action="([^"]+\/cancel)"><input type="hidden" name="subscription" value="([^"]+)">/.exec(
        page,
      );
    expect(cancel).not.toBeNull();
    const res = await fetch(new URL(cancel![1], d.billingPortalUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ subscription: cancel![2] }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    await gh.fake.settled();
    const m = await eventually(async () => {
      const now = (
        await gql(
          `query($c: ID!) { membership(communityId: $c, memberId: "dee") { status cancelAtPeriodEnd currentPeriodEnd } }`,
          { c },
        )
      ).membership as Loose;
      return now.cancelAtPeriodEnd ? now : undefined;
    });
    expect(m.status).toBe('ACTIVE');
    expect(Date.parse(m.currentPeriodEnd)).toBeGreaterThan(Date.now() + 27 * 86_400_000);
    expect(await allowed('dee', { kind: 'GROUP', id: group })).toBe(true);
  }, 60_000);

  it('drift finds a change the server missed, and none once reconcile has caught up', async () => {
    const cli = (args: string[]) => runCli(args, { ...gh.env, STRIPE_SECRET_KEY: 'sk_test_fake_checkout' });
    const before = await cli(['stripe', 'drift', '--community', c]);
    expect(before.stdout).toMatch(/^no drift: \d+ subscription\(s\) match Stripe$/m);
    expect(before.code).toBe(0);

    // The owner cancels cyd in Stripe while nothing receives the webhook.
    gh.fake.forward(null);
    const sub = (await stripe.subscriptions.list({}, { stripeAccount: account })).data.find(
      (s) => s.metadata.gatehouse_member_id === 'cyd',
    )!;
    await stripe.subscriptions.cancel(sub.id, {}, { stripeAccount: account });
    const drifted = await cli(['stripe', 'drift', '--community', c]);
    expect(drifted.code).toBe(1);
    expect(drifted.stdout).toContain(`${c} cyd ${sub.id} status: projected active, Stripe canceled`);

    expect((await cli(['stripe', 'reconcile', '--since', '1h', '--community', c])).code).toBe(0);
    await eventually(async () => ((await membership('cyd')).status === 'CANCELED' ? true : undefined));
    const after = await cli(['stripe', 'drift', '--community', c]);
    expect(after.stdout).toMatch(/^no drift/m);
    expect(after.code).toBe(0);
    gh.fake.forward(endpoint());
  }, 90_000);

  it('drift reads every subscription while Stripe refuses some requests for its rate', async () => {
    const cli = (args: string[]) => runCli(args, { ...gh.env, STRIPE_SECRET_KEY: 'sk_test_fake_checkout' });
    const refused = () => gh.fake.requests.filter((r) => r.status === 429).length;
    const before = refused();
    gh.fake.setRateLimit(2);
    try {
      // Asked to go faster than Stripe answers: the refused reads wait and are made again. (The
      // members of the tests before have more subscriptions than Stripe answers in a second.)
      const drift = await cli(['stripe', 'drift', '--community', c, '--requests-per-second', '20']);
      expect(Number(/comparing (\d+) projected/.exec(drift.stderr)?.[1])).toBeGreaterThanOrEqual(4);
      expect(drift.stderr).not.toMatch(/rate limit/i);
      expect(drift.stdout).toMatch(/^no drift: \d+ subscription\(s\) match Stripe$/m);
      expect(drift.code).toBe(0);
      expect(refused() - before).toBeGreaterThan(0);
    } finally {
      gh.fake.setRateLimit(undefined);
    }
  }, 90_000);

  it('drift names each subscription of an account that disconnected the platform, rather than failing', async () => {
    const cli = (args: string[]) => runCli(args, { ...gh.env, STRIPE_SECRET_KEY: 'sk_test_fake_checkout' });
    gh.fake.revokeAccess(account);
    try {
      const drift = await cli(['stripe', 'drift', '--community', c]);
      expect(drift.code).toBe(1);
      const checked = Number(/comparing (\d+) projected/.exec(drift.stderr)?.[1]);
      expect(checked).toBeGreaterThanOrEqual(4);
      const refused = drift.stdout.match(
        new RegExp(`^  ${c} \\S+ sub_\\S+ access: projected \\S+, Stripe refused \\(401\\)$`, 'gm'),
      );
      expect(refused?.length).toBe(checked);
    } finally {
      gh.fake.revokeAccess(account, false);
    }
    // The account connected again: nothing differs.
    expect((await cli(['stripe', 'drift', '--community', c])).code).toBe(0);
  }, 90_000);

  it('a price added a day later is created under the tier’s Stripe product, not a second one', async () => {
    // Stripe keeps idempotency keys for 24 hours: the product must be found from the catalog.
    shift = 25 * 3600;
    try {
      const annual = await gql(
        `mutation($input: CreatePriceInput!) { createPrice(input: $input) { stripePriceId } }`,
        {
          input: {
            communityId: c,
            product: { kind: 'TIER', id: tier },
            amount: 15000,
            currency: 'eur',
            frequency: 'ANNUAL',
          },
        },
      );
      const products = (await stripe.products.list({ limit: 100 }, { stripeAccount: account })).data.filter(
        (p) => p.metadata.gatehouse_product === `TIER:${tier}`,
      );
      expect(products).toHaveLength(1);
      const price = await stripe.prices.retrieve(
        annual.createPrice.stripePriceId,
        {},
        { stripeAccount: account },
      );
      expect(price.product).toBe(products[0].id);
    } finally {
      shift = 0;
    }
  });

  it('a downgrade waits for the period end in a schedule; when the fake’s time gets there, the tier changes', async () => {
    await buy('gus', monthly);
    await eventually(async () => ((await membership('gus')).status === 'ACTIVE' ? true : undefined));
    const changed = await gql(
      `mutation($input: ChangeTierInput!) { changeTier(input: $input) { tier { name } currentPeriodEnd scheduledChange { toPrice { id } effectiveAt } } }`,
      { input: { communityId: c, memberId: 'gus', toPriceId: silverMonthly } },
    );
    const periodEnd = Date.parse(changed.changeTier.currentPeriodEnd);
    expect(changed.changeTier.tier).toEqual({ name: 'Gold' });
    // The schedule's events come back from the fake: the change is shown as scheduled.
    await gh.fake.settled();
    const scheduled = await eventually(async () => {
      const d = await gql(
        `query($c: ID!) { membership(communityId: $c, memberId: "gus") { tier { name } scheduledChange { toPrice { id } effectiveAt } } }`,
        { c },
      );
      return d.membership.scheduledChange ? d.membership : undefined;
    });
    expect(scheduled.tier).toEqual({ name: 'Gold' });
    expect(scheduled.scheduledChange.toPrice).toEqual({ id: silverMonthly });
    expect(Date.parse(scheduled.scheduledChange.effectiveAt)).toBe(periodEnd);

    gh.fake.advance(Math.floor(periodEnd / 1000) - gh.fake.now() + 3600);
    await gh.fake.settled();
    const after = new Date(periodEnd + 7_200_000).toISOString();
    const m = await eventually(async () => {
      const d = await gql(
        `query($c: ID!, $at: DateTime) { membership(communityId: $c, memberId: "gus", asOf: $at) { status tier { name } scheduledChange { effectiveAt } } }`,
        { c, at: after },
      );
      return d.membership.tier?.name === 'Silver' ? d.membership : undefined;
    });
    expect(m).toEqual({ status: 'ACTIVE', tier: { name: 'Silver' }, scheduledChange: null });
    const gold = await gql(
      `query($c: ID!, $r: ResourceInput!, $at: DateTime) { canAccess(communityId: $c, memberId: "gus", resource: $r, at: $at) { allowed } }`,
      { c, r: { kind: 'GROUP', id: group }, at: after },
    );
    expect(gold.canAccess.allowed).toBe(false);
    const sub = (await stripe.subscriptions.list({}, { stripeAccount: account })).data.find(
      (x) => x.metadata.gatehouse_member_id === 'gus',
    )!;
    const invoices = await stripe.invoices.list({ subscription: sub.id }, { stripeAccount: account });
    expect(invoices.data.map((i) => i.amount_paid)).toEqual([900, 1500]);
  }, 60_000);

  it('time passes in the fake: the plan’s installments are billed, it ends, and the member keeps the group', async () => {
    const sub = (await stripe.subscriptions.list({}, { stripeAccount: account })).data.find(
      (s) => s.metadata.gatehouse_member_id === 'eve',
    )!;
    expect(sub.cancel_at).not.toBeNull();
    const before = gh.fake.deliveries.length;
    gh.fake.advance(sub.cancel_at! - gh.fake.now() + 3600);
    await gh.fake.settled();
    const billed = gh.fake.deliveries.slice(before);
    expect(billed.length).toBeGreaterThan(0);
    expect(billed.filter((d) => !d.ok)).toEqual([]);
    const invoices = await stripe.invoices.list({ subscription: sub.id }, { stripeAccount: account });
    expect(invoices.data.map((i) => [i.billing_reason, i.amount_paid]).reverse()).toEqual([
      ['subscription_create', 1500],
      ['subscription_cycle', 1500],
      ['subscription_cycle', 1500],
    ]);
    const after = new Date((sub.cancel_at! + 86_400) * 1000).toISOString();
    const m = await eventually(async () => {
      const d = await gql(
        `query($c: ID!, $at: DateTime) { membership(communityId: $c, memberId: "eve", asOf: $at) { status installmentsPaid installmentsTotal } }`,
        { c, at: after },
      );
      return d.membership.installmentsPaid === 3 && d.membership.status === 'CANCELED'
        ? d.membership
        : undefined;
    });
    expect(m).toEqual({ status: 'CANCELED', installmentsPaid: 3, installmentsTotal: 3 });
    // Paid in full: the group stays after the plan's subscription has ended.
    const access = await gql(
      `query($c: ID!, $r: ResourceInput!, $at: DateTime) { canAccess(communityId: $c, memberId: "eve", resource: $r, at: $at) { allowed validUntil } }`,
      { c, r: { kind: 'GROUP', id: group }, at: after },
    );
    expect(access.canAccess).toEqual({ allowed: true, validUntil: null });
  }, 60_000);

  it('a renewal the card declines: access through the grace period, suspended after it, back once a retry is paid, revoked when retries run out', async () => {
    await buy('pia', monthly);
    await buy('rex', monthly);
    const subs = (await stripe.subscriptions.list({ limit: 100 }, { stripeAccount: account })).data;
    const subOf = (m: string) => subs.find((x) => x.metadata.gatehouse_member_id === m)!;
    for (const m of ['pia', 'rex']) gh.fake.setCardDeclines(subOf(m).customer as string);
    const renewal = subOf('pia').items.data[0].current_period_end;
    const iso = (t: number) => new Date(t * 1000).toISOString();
    const asOf = (m: string, t: number) =>
      gql(
        `query($c: ID!, $m: ID!, $at: DateTime, $r: ResourceInput!) {
          membership(communityId: $c, memberId: $m, asOf: $at) { status }
          canAccess(communityId: $c, memberId: $m, resource: $r, at: $at) { allowed } }`,
        { c, m, at: iso(t), r: { kind: 'GROUP', id: group } },
      ).then((d) => ({ status: d.membership.status as string, allowed: d.canAccess.allowed as boolean }));
    /** Moves the fake's time to `t` and waits for what it sent to be projected, as seen at `t`. */
    /** What `member` has at `t`, once the projection shows it (waiting up to 10 s). */
    const seenAs = async (member: string, t: number, expected: { status: string; allowed: boolean }) => {
      // The membership and the access index are updated by one projector batch, not at one instant.
      let seen = await asOf(member, t);
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; seen = await asOf(member, t)) {
        if (seen.status === expected.status && seen.allowed === expected.allowed) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toEqual(expected);
    };
    const until = async (t: number, member: string, expected: { status: string; allowed: boolean }) => {
      gh.fake.advance(t - gh.fake.now());
      await gh.fake.settled();
      await seenAs(member, t, expected);
    };

    // Declined at the renewal: past due, and the community's 3 days of grace keep the group open.
    await until(renewal + 3600, 'pia', { status: 'PAST_DUE', allowed: true });
    await seenAs('rex', renewal + 3600, { status: 'PAST_DUE', allowed: true });
    // Declined again three days on: the grace is over, access is suspended.
    await until(renewal + 3 * 86_400 + 3600, 'pia', { status: 'PAST_DUE', allowed: false });
    // pia's card works again: the next retry pays the invoice and the group is back.
    gh.fake.setCardDeclines(subOf('pia').customer as string, false);
    await until(renewal + 8 * 86_400 + 3600, 'pia', { status: 'ACTIVE', allowed: true });
    await seenAs('rex', renewal + 8 * 86_400 + 3600, { status: 'PAST_DUE', allowed: false });
    // The history says when the grace ran out, though no event came then (found at the next one).
    const dated = async (m: string) =>
      (
        await gql(
          `query($c: ID!, $m: ID!) { accessHistory(communityId: $c, memberId: $m, first: 50) { edges { node { change effectiveAt resource { kind } } } } }`,
          { c, m },
        )
      ).accessHistory.edges
        .map((e: Loose) => e.node)
        .filter((n: Loose) => n.resource.kind === 'GROUP')
        .map((n: Loose) => [n.change, n.effectiveAt]);
    expect(await dated('pia')).toEqual([
      ['GRANTED', expect.any(String)],
      ['EXTENDED', iso(renewal)],
      ['SHORTENED', iso(renewal)],
      ['SUSPENDED', iso(renewal + 3 * 86_400)],
      ['RESTORED', iso(renewal + 8 * 86_400)],
    ]);
    // rex's is declined at every retry: Stripe cancels the subscription, and the suspension is final.
    await until(renewal + 15 * 86_400 + 3600, 'rex', { status: 'CANCELED', allowed: false });
    expect((await groupHistory('rex')).map((h) => [h.change, h.by]).slice(-2)).toEqual([
      ['SUSPENDED', 'customer.subscription.updated'],
      ['REVOKED', 'customer.subscription.deleted'],
    ]);
    // rex bought a second or so after pia: his renewal is his own.
    const rexRenewal = subOf('rex').items.data[0].current_period_end;
    expect((await dated('rex')).slice(-2)).toEqual([
      ['SUSPENDED', iso(rexRenewal + 3 * 86_400)],
      ['REVOKED', iso(rexRenewal + 15 * 86_400)],
    ]);
  }, 90_000);

  it('an Indian card’s renewal above INR 15,000 waits for the member to authenticate it: Gatehouse says so, and access goes on', async () => {
    const rupees = (
      await gql(`mutation($input: CreatePriceInput!) { createPrice(input: $input) { id } }`, {
        input: {
          communityId: c,
          product: { kind: 'TIER', id: tier },
          amount: 2_000_000,
          currency: 'inr',
          frequency: 'MONTHLY',
        },
      })
    ).createPrice.id as string;
    await buy('uma', rupees);
    const sub = (await stripe.subscriptions.list({ limit: 100 }, { stripeAccount: account })).data.find(
      (x) => x.metadata.gatehouse_member_id === 'uma',
    )!;
    gh.fake.setCardCountry(sub.customer as string, 'IN');
    const renewal = sub.items.data[0].current_period_end;
    const iso = (t: number) => new Date(t * 1000).toISOString();
    const state = (t: number) =>
      gql(
        `query($c: ID!, $at: DateTime, $r: ResourceInput!) {
          membership(communityId: $c, memberId: "uma", asOf: $at) { status paymentActionRequired currentPeriodEnd }
          canAccess(communityId: $c, memberId: "uma", resource: $r, at: $at) { allowed } }`,
        { c, at: iso(t), r: { kind: 'GROUP', id: group } },
      ).then((d) => ({ ...d.membership, allowed: d.canAccess.allowed }));
    const moveTo = async (t: number) => {
      gh.fake.advance(t - gh.fake.now());
      await gh.fake.settled();
    };

    // The renewal is invoiced; the charge waits out the 26-hour pre-debit notice.
    await moveTo(renewal + 3600);
    const open = (await stripe.invoices.list({ subscription: sub.id }, { stripeAccount: account })).data[0];
    expect(open).toMatchObject({ billing_reason: 'subscription_cycle', status: 'open' });
    const next = (await stripe.subscriptions.retrieve(sub.id, {}, { stripeAccount: account })).items.data[0]
      .current_period_end;
    expect(next).toBeGreaterThan(renewal);
    // Renewed, though not paid yet: the next period is on, with access and nothing asked of the member.
    expect(
      await eventually(async () => {
        const now = await state(renewal + 3600);
        return now.currentPeriodEnd === iso(next) ? now : undefined;
      }),
    ).toEqual({ status: 'ACTIVE', paymentActionRequired: false, currentPeriodEnd: iso(next), allowed: true });
    // Then it needs the cardholder: past due, Gatehouse shows the action is required, and the grace
    // days keep the access.
    await moveTo(renewal + 27 * 3600);
    expect(
      await eventually(async () => {
        const now = await state(renewal + 27 * 3600);
        return now.paymentActionRequired && now.status === 'PAST_DUE' ? now : undefined;
      }),
    ).toEqual({
      status: 'PAST_DUE',
      paymentActionRequired: true,
      currentPeriodEnd: iso(next),
      allowed: true,
    });
    // Authenticated: paid, and nothing is required any more.
    const [payment] = (await stripe.invoicePayments.list({ invoice: open.id }, { stripeAccount: account }))
      .data;
    expect(gh.fake.authenticatePayment(payment.payment.payment_intent as string)).toMatchObject({
      id: open.id,
      status: 'paid',
    });
    await gh.fake.settled();
    // The fake's clock runs on from where it was moved to: ask as of the moment after the payment.
    const paid = gh.fake.now();
    expect(
      await eventually(async () => {
        const now = await state(paid);
        return now.paymentActionRequired || now.status !== 'ACTIVE' ? undefined : now;
      }),
    ).toEqual({ status: 'ACTIVE', paymentActionRequired: false, currentPeriodEnd: iso(next), allowed: true });
  }, 90_000);

  it('a subscription made in Stripe whose first payment is declined: INCOMPLETE without access until its invoice is paid', async () => {
    const opts = { stripeAccount: account };
    // Gold's monthly price, as ivy's subscription (still on) has it.
    const gold = (await stripe.subscriptions.list({ limit: 100 }, opts)).data.find(
      (x) => x.metadata.gatehouse_member_id === 'ivy',
    )!.items.data[0].price.id;
    const customer = await stripe.customers.create({ email: 'vic@example.com' }, opts);
    gh.fake.setCardDeclines(customer.id);
    const sub = await stripe.subscriptions.create(
      { customer: customer.id, items: [{ price: gold }], metadata: { gatehouse_member_id: 'vic' } },
      opts,
    );
    expect(sub.status).toBe('incomplete');
    await gh.fake.settled();
    // The fake's time has run ahead of the server's clock in this suite: ask as of the fake's now.
    const seen = () =>
      gql(
        `query($c: ID!, $at: DateTime, $r: ResourceInput!) {
          membership(communityId: $c, memberId: "vic", asOf: $at) { status }
          canAccess(communityId: $c, memberId: "vic", resource: $r, at: $at) { allowed } }`,
        { c, at: new Date((gh.fake.now() + 60) * 1000).toISOString(), r: { kind: 'GROUP', id: group } },
      ).then((d) => ({ status: d.membership.status as string, allowed: d.canAccess.allowed as boolean }));
    expect(
      await eventually(async () => {
        const now = await seen();
        return now.status === 'INCOMPLETE' ? now : undefined;
      }),
    ).toEqual({ status: 'INCOMPLETE', allowed: false });

    gh.fake.setCardDeclines(customer.id, false);
    expect(await stripe.invoices.pay(sub.latest_invoice as string, {}, opts)).toMatchObject({
      status: 'paid',
    });
    await gh.fake.settled();
    expect(
      await eventually(async () => {
        const now = await seen();
        return now.status === 'ACTIVE' && now.allowed ? now : undefined;
      }),
    ).toEqual({ status: 'ACTIVE', allowed: true });
  }, 60_000);
});

import Stripe from 'stripe';
import jwt from 'jsonwebtoken';
import { startFakeStripe, type FakeStripe } from '@gatehouse/stripe';
import { Client } from 'pg';
import { createTestDatabase, eventually, type TestDatabase } from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';

// Selling access through the started server, the fake Stripe API and signed webhooks.

const secret = 'commerce-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_commerce_e2e';
const account = 'acct_commercee2e';
const adminToken = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const signer = new Stripe('sk_test_signing_only');

// GraphQL answers and Stripe request bodies are asserted field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;
type Gql = { data?: Loose; errors?: { message: string; extensions?: { code?: string } }[] };

describe('selling access end to end', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let server: ServerProcess;
  let communityId: string;
  let tierId: string;
  const prices: Record<string, { id: string; stripePriceId: string }> = {};

  async function gql(
    query: string,
    variables: Record<string, unknown> = {},
    token: string | null = adminToken,
  ): Promise<Gql> {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as Gql;
  }
  async function ok(
    query: string,
    variables: Record<string, unknown> = {},
    token: string | null = adminToken,
  ) {
    const r = await gql(query, variables, token);
    if (r.errors) throw new Error(JSON.stringify(r.errors));
    return r.data!;
  }
  async function webhook(type: string, object: Record<string, unknown>): Promise<number> {
    const id = `evt_e2e_${Math.random().toString(36).slice(2)}`;
    const body = JSON.stringify({
      id,
      object: 'event',
      type,
      account,
      created: Math.floor(Date.now() / 1000),
      api_version: '2025-03-31.basil',
      data: { object },
    });
    const header = signer.webhooks.generateTestHeaderString({ payload: body, secret: whsec });
    const res = await fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'stripe-signature': header, 'content-type': 'application/json' },
      body,
    });
    return res.status;
  }
  const checkoutRequests = () =>
    fake.requests.filter(
      (r) => r.method === 'POST' && r.path === '/v1/checkout/sessions' && r.status === 200,
    );
  const START = `mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { id url } }`;
  const urls = { successUrl: 'https://makers.example/thanks', cancelUrl: 'https://makers.example/' };

  beforeAll(async () => {
    db = await createTestDatabase('commerce_e2e');
    fake = await startFakeStripe();
    const started = await startServerProcess({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      GATEHOUSE_JWT_SECRET: secret,
      STRIPE_SECRET_KEY: 'sk_test_commerce_e2e',
      STRIPE_API_BASE: fake.url,
      STRIPE_WEBHOOK_SECRET: whsec,
      GATEHOUSE_PUBLIC_URL: 'https://join.makers.example',
      LOG_LEVEL: 'warn',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;

    communityId = (
      await ok(
        `mutation { createCommunity(input: { name: "Makers", region: EU, stripeAccountId: "${account}" }) { id } }`,
      )
    ).createCommunity.id;
    tierId = (
      await ok(`mutation($c: ID!) { createTier(input: { communityId: $c, name: "Gold", rank: 1 }) { id } }`, {
        c: communityId,
      })
    ).createTier.id;
    for (const [name, frequency, extra] of [
      ['once', 'ONE_TIME', {}],
      ['plan', 'INSTALLMENTS', { installments: 3 }],
      ['weekly', 'WEEKLY', { trialDays: 7 }],
      ['monthly', 'MONTHLY', { trialDays: 14 }],
      ['quarterly', 'QUARTERLY', {}],
      ['annual', 'ANNUAL', {}],
    ] as const) {
      const d = await ok(
        `mutation($input: CreatePriceInput!) { createPrice(input: $input) { id stripePriceId } }`,
        {
          input: {
            communityId,
            product: { kind: 'TIER', id: tierId },
            amount: 1200,
            currency: 'eur',
            frequency,
            ...extra,
          },
        },
      );
      prices[name] = d.createPrice;
    }
  }, 180_000);

  afterAll(async () => {
    await server?.stop('SIGINT');
    await fake?.close();
    await db?.drop();
  });

  it.each([
    ['once', 'payment'],
    ['plan', 'subscription'],
    ['weekly', 'subscription'],
    ['monthly', 'subscription'],
    ['quarterly', 'subscription'],
    ['annual', 'subscription'],
  ])(
    'a member buys the %s price: Stripe receives a %s-mode session with the metadata, trial and key',
    async (name, mode) => {
      const memberId = `m_${name}`;
      const d = await ok(START, {
        input: { communityId, priceId: prices[name].id, memberId, email: `${name}@example.com`, ...urls },
      });
      expect(d.startCheckout.url).toContain(`${fake.url}/checkout/`);
      const req = checkoutRequests().at(-1)!;
      expect(req.stripeAccount).toBe(account);
      expect(req.idempotencyKey).toMatch(/^gatehouse:/);
      expect(req.params).toMatchObject({
        mode,
        client_reference_id: memberId,
        customer_email: `${name}@example.com`,
        metadata: {
          gatehouse_community_id: communityId,
          gatehouse_member_id: memberId,
          gatehouse_price_id: prices[name].id,
        },
        line_items: [{ price: prices[name].stripePriceId, quantity: '1' }],
      });
      const sub = (req.params as Loose).subscription_data;
      if (mode === 'payment') expect(sub).toBeUndefined();
      else
        expect(sub.metadata).toMatchObject({
          gatehouse_member_id: memberId,
          gatehouse_price_id: prices[name].id,
        });
      if (name === 'plan') expect(sub.metadata.gatehouse_installments).toBe('3');
      if (name === 'monthly') expect(sub.trial_period_days).toBe('14');
    },
  );

  it('a promo code is created in Stripe, applied at checkout and counted once the session completes', async () => {
    const created = await ok(
      `mutation($input: CreatePromoCodeInput!) { createPromoCode(input: $input) { id code stripePromotionCodeId timesRedeemed } }`,
      { input: { communityId, code: 'Launch-10', percentOff: 10, duration: 'ONCE', maxRedemptions: 100 } },
    );
    const promo = created.createPromoCode;
    expect(promo.timesRedeemed).toBe(0);
    const d = await ok(START, {
      input: { communityId, priceId: prices.annual.id, memberId: 'm_promo', promoCode: 'launch-10', ...urls },
    });
    const req = checkoutRequests().at(-1)!;
    expect((req.params as Loose).discounts).toEqual([{ promotion_code: promo.stripePromotionCodeId }]);

    expect(
      await webhook('checkout.session.completed', {
        id: d.startCheckout.id,
        object: 'checkout.session',
        mode: 'subscription',
        status: 'complete',
        payment_status: 'paid',
        customer: 'cus_e2e_promo',
        subscription: 'sub_e2e_promo',
        client_reference_id: 'm_promo',
        metadata: { gatehouse_member_id: 'm_promo', gatehouse_community_id: communityId },
      }),
    ).toBe(200);
    // The read model counts the redemption from the completed session (no query exposes it yet).
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const redeemed = await eventually(async () => {
        const { rows } = await pg.query(
          'SELECT count(*)::int AS n FROM commerce_promo_redemptions WHERE stripe_promotion_code_id = $1',
          [promo.stripePromotionCodeId],
        );
        return rows[0].n > 0 ? rows[0].n : undefined;
      });
      expect(redeemed).toBe(1);
    } finally {
      await pg.end();
    }
    const listed = await ok(`query($c: ID!) { promoCodes(communityId: $c) { code timesRedeemed } }`, {
      c: communityId,
    });
    expect(listed.promoCodes).toEqual([{ code: 'Launch-10', timesRedeemed: 1 }]);
    const again = await gql(
      `mutation($input: CreatePromoCodeInput!) { createPromoCode(input: $input) { id } }`,
      {
        input: { communityId, code: 'LAUNCH-10', percentOff: 10, duration: 'ONCE' },
      },
    );
    expect(again.errors?.[0].extensions?.code).toBe('CONFLICT');
    // The customer Stripe named in the session is the member's from now on.
    fake.seed(
      {
        id: 'cus_e2e_promo',
        object: 'customer',
        created: Math.floor(Date.now() / 1000),
        email: 'promo@example.com',
        metadata: {},
      },
      account,
    );
    const portal = await ok(
      `mutation($c: ID!) { billingPortalUrl(communityId: $c, memberId: "m_promo", returnUrl: "https://makers.example/") }`,
      {
        c: communityId,
      },
    );
    expect(portal.billingPortalUrl).toContain(fake.url);
    expect(
      fake.requests.filter((r) => r.path === '/v1/billing_portal/sessions').at(-1)!.params,
    ).toMatchObject({ customer: 'cus_e2e_promo' });
  }, 30_000);

  it('refuses the billing portal to a member without a Stripe customer', async () => {
    const r = await gql(
      `mutation($c: ID!) { billingPortalUrl(communityId: $c, memberId: "m_nobody", returnUrl: "https://makers.example/") }`,
      { c: communityId },
    );
    expect(r.errors?.[0].extensions?.code).toBe('NOT_FOUND');
  });

  it('an invitation link is exhausted at its maximum under 20 concurrent redemptions', async () => {
    const link = (
      await ok(
        `mutation($input: CreateInvitationLinkInput!) { createInvitationLink(input: $input) { token url uses maxUses } }`,
        {
          input: { communityId, priceIds: [prices.monthly.id], audience: 'NEW_MEMBERS', maxUses: 5 },
        },
      )
    ).createInvitationLink;
    expect(link.url).toBe(`https://join.makers.example/join/${link.token}`);
    const before = checkoutRequests().length;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        gql(
          START,
          { input: { communityId, priceId: prices.monthly.id, invitationToken: link.token, ...urls } },
          null,
        ),
      ),
    );
    expect(results.filter((r) => !r.errors)).toHaveLength(5);
    expect(results.filter((r) => r.errors?.[0].extensions?.code === 'CONFLICT')).toHaveLength(15);
    expect(checkoutRequests().length - before).toBe(5);
  }, 60_000);

  it('a buyer who leaves Checkout holds a use of a capped link for an hour; Stripe’s expiry gives it back', async () => {
    const link = (
      await ok(
        `mutation($input: CreateInvitationLinkInput!) { createInvitationLink(input: $input) { token } }`,
        { input: { communityId, priceIds: [prices.monthly.id], audience: 'ANYONE', maxUses: 1 } },
      )
    ).createInvitationLink;
    const start = () =>
      gql(
        START,
        { input: { communityId, priceId: prices.monthly.id, invitationToken: link.token, ...urls } },
        null,
      );
    const held = await start();
    expect(held.errors).toBeUndefined();
    const expiresAt = Number((checkoutRequests().at(-1)!.params as Loose).expires_at);
    expect(Math.abs(expiresAt - (Math.floor(Date.now() / 1000) + 3600))).toBeLessThan(60);
    expect((await start()).errors?.[0].extensions?.code).toBe('CONFLICT');

    // Stripe expires the abandoned session and says so with a signed webhook.
    fake.forward({ url: `${server.url}/webhooks/stripe`, secret: whsec });
    try {
      const sdk = new Stripe('sk_test_commerce_e2e', {
        host: new URL(fake.url).hostname,
        port: Number(new URL(fake.url).port),
        protocol: 'http',
      });
      await sdk.checkout.sessions.expire(held.data!.startCheckout.id, {}, { stripeAccount: account });
      await fake.settled();
      expect(fake.deliveries.at(-1)).toMatchObject({ type: 'checkout.session.expired', status: 200 });
    } finally {
      fake.forward(null);
    }
    const next = await eventually(async () => {
      const r = await start();
      return r.errors ? undefined : r;
    });
    expect(next.data!.startCheckout.id).not.toBe(held.data!.startCheckout.id);
    expect((await start()).errors?.[0].extensions?.code).toBe('CONFLICT');
  }, 60_000);

  it('an expired invitation link is refused', async () => {
    const link = (
      await ok(
        `mutation($input: CreateInvitationLinkInput!) { createInvitationLink(input: $input) { token } }`,
        {
          input: {
            communityId,
            priceIds: [prices.monthly.id],
            audience: 'ANYONE',
            expiresAt: new Date(Date.now() + 1000).toISOString(),
          },
        },
      )
    ).createInvitationLink;
    await new Promise((r) => setTimeout(r, 1200));
    const r = await gql(
      START,
      { input: { communityId, priceId: prices.monthly.id, invitationToken: link.token, ...urls } },
      null,
    );
    expect(r.errors?.[0].extensions?.code).toBe('CONFLICT');
    expect(r.errors?.[0].message).toMatch(/expired/);
  });
});

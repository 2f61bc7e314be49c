import jwt from 'jsonwebtoken';
import { chromium, type Browser } from 'playwright-core';
import { startFakeStripe, type FakeStripe } from '@gatehouse/stripe';
import { createTestDatabase, eventually, type TestDatabase } from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';

// The invitation page in a real browser (Debian's chromium): open, read the offer, click, pay on the
// fake Stripe's Checkout page, come back; the fake's signed webhooks make the buyer a member.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;
const secret = 'join-page-e2e-secret-'.padEnd(40, 'x');
const adminToken = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const whsec = 'whsec_join_page';

describe('the join page in headless Chromium', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let server: ServerProcess;
  let browser: Browser;

  async function ok(query: string, variables: Record<string, unknown> = {}): Promise<Loose> {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: Loose; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  }

  beforeAll(async () => {
    db = await createTestDatabase('join_page_e2e');
    fake = await startFakeStripe();
    const started = await startServerProcess({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      GATEHOUSE_JWT_SECRET: secret,
      STRIPE_SECRET_KEY: 'sk_test_join_page',
      STRIPE_API_BASE: fake.url,
      STRIPE_WEBHOOK_SECRET: whsec,
      LOG_LEVEL: 'warn',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;
    fake.forward({ url: `${server.url}/webhooks/stripe`, secret: whsec });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop('SIGINT');
    await fake?.close();
    await db?.drop();
  });

  it('shows the community, the price in words and the trial; the buyer pays on Checkout, trials, then is billed', async () => {
    const communityId = (
      await ok(
        `mutation { createCommunity(input: { name: "Makers & Friends", region: EU, stripeAccountId: "acct_joinpage" }) { id } }`,
      )
    ).createCommunity.id;
    const tierId = (
      await ok(`mutation($c: ID!) { createTier(input: { communityId: $c, name: "Gold", rank: 1 }) { id } }`, {
        c: communityId,
      })
    ).createTier.id;
    const price = (
      await ok(`mutation($input: CreatePriceInput!) { createPrice(input: $input) { id } }`, {
        input: {
          communityId,
          product: { kind: 'TIER', id: tierId },
          amount: 1200,
          currency: 'eur',
          frequency: 'MONTHLY',
          trialDays: 14,
        },
      })
    ).createPrice;
    const link = (
      await ok(
        `mutation($input: CreateInvitationLinkInput!) { createInvitationLink(input: $input) { token } }`,
        {
          input: { communityId, priceIds: [price.id], audience: 'ANYONE', maxUses: 10 },
        },
      )
    ).createInvitationLink;

    const page = await browser.newPage();
    try {
      const res = await page.goto(`${server.url}/join/${link.token}`);
      expect(res?.status()).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toBe('Join Makers & Friends');
      const offer = await page.locator('li').first().innerText();
      expect(offer).toContain('Gold');
      expect(offer).toContain('€12.00 per month');
      expect(offer).toContain('14-day free trial');

      await Promise.all([
        page.waitForURL(`${fake.url}/checkout/**`, { timeout: 15_000 }),
        page.getByRole('button', { name: 'Continue to payment' }).click(),
      ]);
      await expect(page.locator('h1').textContent()).resolves.toBe('Fake Stripe Checkout');
      const session = fake.requests
        .filter((r) => r.path === '/v1/checkout/sessions' && r.status === 200)
        .at(-1)!;
      expect(session.params).toMatchObject({
        mode: 'subscription',
        metadata: { gatehouse_price_id: price.id },
      });
      const memberId = (session.params as Loose).metadata.gatehouse_member_id as string;

      await page.getByLabel('Email').fill('joiner@example.com');
      await Promise.all([
        page.waitForURL(`${server.url}/join/${link.token}/done`, { timeout: 15_000 }),
        // The offer has a trial: Checkout starts it rather than taking a payment.
        page.getByRole('button', { name: 'Start trial' }).click(),
      ]);
      await expect(page.locator('h1').textContent()).resolves.toBe('Thank you');
      await fake.settled();
      const membership = await eventually(async () => {
        const m = (
          await ok(
            `query($c: ID!, $m: ID!) { membership(communityId: $c, memberId: $m) { status tier { name } trialEndsAt } }`,
            { c: communityId, m: memberId },
          )
        ).membership;
        return m.status === 'NONE' ? undefined : m;
      });
      expect(membership).toMatchObject({ status: 'TRIALING', tier: { name: 'Gold' } });
      const trialDays = (Date.parse(membership.trialEndsAt) - Date.now()) / 86_400_000;
      expect(trialDays).toBeGreaterThan(13.9);
      expect(trialDays).toBeLessThanOrEqual(14);

      // Fifteen days on, Stripe bills the first paid period: the member is active.
      fake.advance(15 * 86_400);
      await fake.settled();
      const later = new Date((fake.now() + 60) * 1000).toISOString();
      const paid = await eventually(async () => {
        const m = (
          await ok(
            `query($c: ID!, $m: ID!, $at: DateTime) { membership(communityId: $c, memberId: $m, asOf: $at) { status currentPeriodEnd } }`,
            { c: communityId, m: memberId, at: later },
          )
        ).membership;
        return m.status === 'ACTIVE' ? m : undefined;
      });
      expect(Date.parse(paid.currentPeriodEnd)).toBeGreaterThan(Date.parse(membership.trialEndsAt));
    } finally {
      await page.close();
    }
  }, 60_000);

  it('answers an unknown link with a clear 404 page', async () => {
    const page = await browser.newPage();
    try {
      const res = await page.goto(`${server.url}/join/not-a-real-token`);
      expect(res?.status()).toBe(404);
      await expect(page.locator('h1').textContent()).resolves.toBe('Invitation not found');
    } finally {
      await page.close();
    }
  });
});

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import type Stripe from 'stripe';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { ConflictError, InvitationClosedError, NotFoundError } from '@gatehouse/domain';
import { PostgresLedger } from '@gatehouse/ledger';
import {
  CatalogProjection,
  CatalogQuery,
  CommerceProjection,
  CommerceQuery,
  MembershipProjection,
  MembershipQuery,
  Projector,
  startProjectionHarness,
  type ProjectionHarness,
} from '@gatehouse/projections';
import { createTestDatabase, type TestDatabase } from '@test/support';
import type { Caller } from '../auth/auth';
import { BillingFrequency, CouponDuration, InvitationAudience, ProductKind, Region } from '../graphql/enums';
import { joinRoutes } from '../http/join.routes';
import { CatalogService } from './catalog.service';
import { CommerceService } from './commerce.service';

// Stripe request bodies are asserted loosely, field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;
type Call = { params: Loose; options: Loose };

/** A recording stand-in for the Stripe SDK's few commerce calls (the shared fake Stripe replaces it). */
function recordingStripe() {
  const calls: Record<string, Call[]> = { coupons: [], promotionCodes: [], sessions: [], portal: [] };
  let n = 0;
  const record = (kind: string, prefix: string, extra: (p: Loose, id: string) => object = () => ({})) =>
    jest.fn(async (params: Loose, options: Loose = {}) => {
      calls[kind].push({ params, options });
      const id = `${prefix}_${++n}`;
      return { id, ...extra(params, id) };
    });
  const stripe = {
    coupons: { create: record('coupons', 'co') },
    promotionCodes: { create: record('promotionCodes', 'promo') },
    checkout: {
      sessions: {
        create: record('sessions', 'cs_test', (_p, id) => ({ url: `https://checkout.stripe.test/c/${id}` })),
      },
    },
    billingPortal: {
      sessions: {
        create: record('portal', 'bps', (_p, id) => ({ url: `https://billing.stripe.test/p/${id}` })),
      },
    },
  };
  return { stripe: stripe as unknown as Stripe, calls };
}

const admin: Caller = { sub: 'usr_admin', roles: ['platform-admin'] };
const urls = { successUrl: 'https://makers.example/thanks', cancelUrl: 'https://makers.example/' };

describe('commerce service against PostgreSQL and the ledger', () => {
  let db: TestDatabase;
  let harness: ProjectionHarness;
  let ds: DataSource;
  let ledger: PostgresLedger;
  let projector: Projector;
  let catalog: CatalogService;
  let commerce: CommerceService;
  let calls: Record<string, Call[]>;
  let communityId: string;
  const prices: Record<string, string> = {};
  let tierId: string;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase('commerce_svc');
    harness = await startProjectionHarness({
      databaseUrl: db.url,
      projections: (logger) => [
        new CatalogProjection(),
        new MembershipProjection({ logger }),
        new CommerceProjection({ logger }),
      ],
      poolSize: 6,
    });
    ({ ds, ledger, projector } = harness);
    const ctx = { ledger, projector, clock: () => new Date(), waitMs: 15_000 };
    catalog = new CatalogService({ ...ctx, catalog: new CatalogQuery(ds), stripe: null });
    const fake = recordingStripe();
    calls = fake.calls;
    commerce = new CommerceService({
      ...ctx,
      catalog: new CatalogQuery(ds),
      commerce: new CommerceQuery(ds),
      members: new MembershipQuery(ds),
      stripe: fake.stripe,
      publicUrl: 'https://gatehouse.example',
    });

    communityId = (await catalog.createCommunity(admin, { name: 'Makers <&> Co', region: Region.EU })).id;
    tierId = (
      await catalog.createTier(admin, { communityId, name: 'Gold', rank: 1, stripeProductId: 'prod_gold' })
    ).id;
    const add = async (
      name: string,
      frequency: BillingFrequency,
      extra: { installments?: number; trialDays?: number } = {},
    ) => {
      const p = await catalog.createPrice(admin, {
        communityId,
        product: { kind: ProductKind.TIER, id: tierId },
        amount: 1200,
        currency: 'eur',
        frequency,
        stripePriceId: `price_${name}`,
        ...extra,
      });
      prices[name] = p.id;
    };
    await add('once', BillingFrequency.ONE_TIME);
    await add('plan', BillingFrequency.INSTALLMENTS, { installments: 3 });
    await add('weekly', BillingFrequency.WEEKLY, { trialDays: 7 });
    await add('monthly', BillingFrequency.MONTHLY, { trialDays: 14 });
    await add('quarterly', BillingFrequency.QUARTERLY);
    await add('annual', BillingFrequency.ANNUAL);

    const app = express();
    joinRoutes({ commerce, log: pino({ level: 'silent' }) })(app);
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await harness.close();
    await db.drop();
  });

  it.each([
    ['once', 'payment'],
    ['plan', 'subscription'],
    ['weekly', 'subscription'],
    ['monthly', 'subscription'],
    ['quarterly', 'subscription'],
    ['annual', 'subscription'],
  ])(
    'opens Checkout for a %s price in %s mode with the contract metadata and an idempotency key',
    async (name, mode) => {
      const memberId = `m_${name}`;
      const session = await commerce.startCheckout(admin, {
        communityId,
        priceId: prices[name],
        memberId,
        email: 'a@example.com',
        ...urls,
      });
      const { params, options } = calls.sessions.at(-1)!;
      expect(session.url).toMatch(/^https:\/\/checkout\.stripe\.test\//);
      expect(params).toMatchObject({
        mode,
        line_items: [{ price: `price_${name}`, quantity: 1 }],
        client_reference_id: memberId,
        customer_email: 'a@example.com',
        allow_promotion_codes: true,
        metadata: {
          gatehouse_community_id: communityId,
          gatehouse_member_id: memberId,
          gatehouse_price_id: prices[name],
        },
      });
      expect(options.idempotencyKey).toMatch(/^gatehouse:.+:checkout:/);
      if (mode === 'subscription') {
        expect(params.subscription_data.metadata).toMatchObject({
          gatehouse_member_id: memberId,
          gatehouse_price_id: prices[name],
        });
      } else {
        expect(params.subscription_data).toBeUndefined();
        expect(params.customer_creation).toBe('always');
      }
      if (name === 'plan') expect(params.subscription_data.metadata.gatehouse_installments).toBe('3');
      if (name === 'monthly') expect(params.subscription_data.trial_period_days).toBe(14);
      if (name === 'annual') expect(params.subscription_data.trial_period_days).toBeUndefined();
    },
  );

  it('grants the trial once: a member who had a trial of the tier gets none on any of its prices', async () => {
    const memberId = 'm_trialed';
    await ledger.append([
      {
        id: 'evt_trial_sub_1',
        type: 'customer.subscription.created',
        communityId,
        occurredAt: new Date().toISOString(),
        source: 'stripe',
        data: {
          id: 'evt_trial_sub_1',
          object: 'event',
          type: 'customer.subscription.created',
          created: Math.floor(Date.now() / 1000),
          data: {
            object: {
              id: 'sub_trial_1',
              object: 'subscription',
              customer: 'cus_trialed',
              status: 'trialing',
              trial_end: Math.floor(Date.now() / 1000) + 86400,
              metadata: { gatehouse_member_id: memberId, gatehouse_price_id: prices.weekly },
            },
          },
        },
      },
    ]);
    await projector.waitFor({ eventIds: ['evt_trial_sub_1'] }, 15_000);
    await commerce.startCheckout(admin, { communityId, priceId: prices.monthly, memberId, ...urls });
    const { params } = calls.sessions.at(-1)!;
    expect(params.subscription_data.trial_period_days).toBeUndefined();
    // The customer Stripe named is reused.
    expect(params.customer).toBe('cus_trialed');
    expect(params.customer_email).toBeUndefined();
  });

  it('creates a promo code in Stripe (coupon then promotion code) and pre-applies it at checkout', async () => {
    const promo = await commerce.createPromoCode(admin, {
      communityId,
      code: 'Spring-20',
      percentOff: 20,
      duration: CouponDuration.REPEATING,
      durationInMonths: 3,
      maxRedemptions: 50,
      appliesTo: [{ kind: ProductKind.TIER, id: tierId }],
      firstTimeOnly: true,
    });
    expect(promo).toMatchObject({
      code: 'Spring-20',
      percentOff: 20,
      duration: 'REPEATING',
      durationInMonths: 3,
      timesRedeemed: 0,
    });
    expect(calls.coupons.at(-1)!.params).toMatchObject({
      percent_off: 20,
      duration: 'repeating',
      duration_in_months: 3,
      max_redemptions: 50,
      applies_to: { products: ['prod_gold'] },
    });
    expect(calls.promotionCodes.at(-1)!.params).toMatchObject({
      code: 'Spring-20',
      promotion: { type: 'coupon', coupon: expect.stringMatching(/^co_/) },
      restrictions: { first_time_transaction: true },
    });
    expect(calls.coupons.at(-1)!.options.idempotencyKey).not.toBe(
      calls.promotionCodes.at(-1)!.options.idempotencyKey,
    );

    await expect(
      commerce.createPromoCode(admin, {
        communityId,
        code: 'SPRING-20',
        percentOff: 5,
        duration: CouponDuration.ONCE,
      }),
    ).rejects.toThrow(ConflictError);

    await commerce.startCheckout(admin, {
      communityId,
      priceId: prices.quarterly,
      memberId: 'm_promo',
      promoCode: 'spring-20',
      ...urls,
    });
    const { params } = calls.sessions.at(-1)!;
    expect(params.discounts).toEqual([{ promotion_code: promo.stripePromotionCodeId }]);
    expect(params.allow_promotion_codes).toBeUndefined();
  });

  it('refuses a checkout for a tier the member already subscribes to, pointing to changeTier', async () => {
    const now = Math.floor(Date.now() / 1000);
    await ledger.append([
      {
        id: 'evt_active_sub_1',
        type: 'customer.subscription.created',
        communityId,
        occurredAt: new Date().toISOString(),
        source: 'stripe',
        data: {
          id: 'evt_active_sub_1',
          object: 'event',
          type: 'customer.subscription.created',
          created: now,
          data: {
            object: {
              id: 'sub_active_1',
              object: 'subscription',
              customer: 'cus_active',
              status: 'active',
              metadata: { gatehouse_member_id: 'm_active' },
              items: {
                data: [
                  {
                    id: 'si_1',
                    quantity: 1,
                    price: { id: 'price_monthly', product: 'prod_gold' },
                    current_period_start: now,
                    current_period_end: now + 30 * 86400,
                  },
                ],
              },
            },
          },
        },
      },
    ]);
    await projector.waitFor({ eventIds: ['evt_active_sub_1'] }, 15_000);
    await expect(
      commerce.startCheckout(admin, { communityId, priceId: prices.annual, memberId: 'm_active', ...urls }),
    ).rejects.toThrow(/changeTier/);
  });

  it('opens a billing portal for a member with a Stripe customer, and refuses one without', async () => {
    expect(
      await commerce.billingPortalUrl(admin, communityId, 'm_active', 'https://makers.example/account'),
    ).toMatch(/^https:\/\/billing/);
    expect(calls.portal.at(-1)!.params).toEqual({
      customer: 'cus_active',
      return_url: 'https://makers.example/account',
    });
    await expect(
      commerce.billingPortalUrl(admin, communityId, 'm_nobody', 'https://makers.example/'),
    ).rejects.toThrow(NotFoundError);
  });

  it('exhausts an invitation link at its maximum under 20 concurrent anonymous checkouts', async () => {
    const link = await commerce.createInvitationLink(admin, {
      communityId,
      priceIds: [prices.monthly],
      audience: InvitationAudience.NEW_MEMBERS,
      maxUses: 3,
    });
    expect(link.url).toBe(`https://gatehouse.example/join/${link.token}`);
    expect(link.token.length).toBeGreaterThanOrEqual(22);
    expect(link.embedHtml).toContain('Join Makers &lt;&amp;&gt; Co');
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        commerce.startCheckout(null, {
          communityId,
          priceId: prices.monthly,
          invitationToken: link.token,
          ...urls,
        }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(3);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InvitationClosedError);
    const closed = await fetch(`${base}/join/${link.token}`);
    expect(closed.status).toBe(410);
    expect(await closed.text()).toContain('used up');
  }, 60_000);

  it('serves the join page: the offer in words, a strict CSP, and a form that redirects to Checkout', async () => {
    const link = await commerce.createInvitationLink(admin, {
      communityId,
      priceIds: [prices.monthly, prices.plan, prices.once],
      audience: InvitationAudience.ANYONE,
      promoCode: 'SPRING-20',
    });
    const res = await fetch(`${base}/join/${link.token}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(
      /default-src 'none'.*form-action 'self' https:\/\/checkout\.stripe\.com/,
    );
    const html = await res.text();
    expect(html).toContain('Join Makers &lt;&amp;&gt; Co');
    expect(html).toContain('€12.00 per month');
    expect(html).toContain('3 payments of €12.00');
    expect(html).toContain('one payment of €12.00');
    expect(html).toContain('14-day free trial');
    expect(html).toContain('20% off for 3 months');

    const post = await fetch(`${base}/join/${link.token}/checkout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ priceId: prices.once }).toString(),
    });
    expect(post.status).toBe(303);
    expect(post.headers.get('location')).toMatch(/^https:\/\/checkout\.stripe\.test\//);
    expect(calls.sessions.at(-1)!.params).toMatchObject({
      mode: 'payment',
      success_url: `https://gatehouse.example/join/${link.token}/done`,
    });
  });

  it('answers 404 for an unknown link, 410 for an expired one and 403 for the wrong audience', async () => {
    expect((await fetch(`${base}/join/nope`)).status).toBe(404);
    const soon = await commerce.createInvitationLink(admin, {
      communityId,
      priceIds: [prices.monthly],
      audience: InvitationAudience.ANYONE,
      expiresAt: new Date(Date.now() + 300),
    });
    await new Promise((r) => setTimeout(r, 400));
    const expired = await fetch(`${base}/join/${soon.token}`);
    expect(expired.status).toBe(410);
    expect(await expired.text()).toContain('expired');
    await expect(
      commerce.startCheckout(null, {
        communityId,
        priceId: prices.monthly,
        invitationToken: soon.token,
        ...urls,
      }),
    ).rejects.toThrow(InvitationClosedError);
    const members = await commerce.createInvitationLink(admin, {
      communityId,
      priceIds: [prices.monthly],
      audience: InvitationAudience.EXISTING_MEMBERS,
    });
    expect((await fetch(`${base}/join/${members.token}?member=m_stranger`)).status).toBe(403);
    expect((await fetch(`${base}/join/${members.token}?member=m_active`)).status).toBe(200);
  });
});

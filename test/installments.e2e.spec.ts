import jwt from 'jsonwebtoken';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { graphqlAs, stripeSender } from './support/e2e-calls';

// Installment plans end by themselves: Checkout carries the count, the server sets `cancel_at` once
// when the subscription first shows up, and access stays for good once every installment is paid.

const secret = 'installments-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_installments_e2e';
const account = 'acct_installmentse2e';
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const DAY = 86_400;
const API = '2025-03-31.basil' as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

/** The calendar month arithmetic Stripe uses for `interval: month`: same day of the month, UTC. */
const addMonths = (seconds: number, n: number) => {
  const d = new Date(seconds * 1000);
  d.setUTCMonth(d.getUTCMonth() + n);
  return Math.floor(d.getTime() / 1000);
};

describe('installment plans end to end', () => {
  let gh: GatehouseUnderTest;
  let c: string;
  let plan: { id: string; stripePriceId: string; product: { id: string } };
  const now = Math.floor(Date.now() / 1000);
  const start = now - 60 * DAY;

  const gql = graphqlAs(() => gh.server.url, admin);

  const send = stripeSender(() => gh.server.url, whsec);

  const canAccess = (member: string, at: number) =>
    gql(
      `query($c: ID!, $m: ID!, $at: DateTime) {
        canAccess(communityId: $c, memberId: $m, resource: { kind: COMMUNITY }, at: $at) {
          allowed grants { source validUntil }
        }
      }`,
      { c, m: member, at: new Date(at * 1000).toISOString() },
    ).then((d) => d.canAccess);

  const subscriptionSpec = (member: string, extra: Loose = {}) => ({
    id: `sub_plan_${member}`,
    customer: `cus_plan_${member}`,
    priceId: plan.stripePriceId,
    productId: 'prod_installmentsGold',
    status: 'active' as const,
    startDate: start,
    periodStart: start,
    periodEnd: addMonths(start, 1),
    metadata: { gatehouse_member_id: member, gatehouse_installments: '3' },
    ...extra,
  });
  const cancelAtRequests = (member: string) =>
    gh.fake.requests.filter((r) => r.method === 'POST' && r.path === `/v1/subscriptions/sub_plan_${member}`);

  const paid = (member: string, n: number) =>
    kit.invoicePaid(
      {
        id: `in_plan_${member}_${n}`,
        customer: `cus_plan_${member}`,
        subscription: `sub_plan_${member}`,
        billingReason: n === 1 ? 'subscription_create' : 'subscription_cycle',
        periodStart: addMonths(start, n - 1),
        periodEnd: addMonths(start, n),
        lines: [{ amount: 5000 }],
      },
      { account, created: addMonths(start, n - 1) + 60, apiVersion: API },
    );

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      {
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_WEBHOOK_SECRET: whsec,
        STRIPE_SECRET_KEY: 'sk_test_installments_e2e',
      },
      'gh_installments',
    );
    c = (
      await gql(
        `mutation { createCommunity(input: { name: "Plans", region: EU, stripeAccountId: "${account}" }) { id } }`,
      )
    ).createCommunity.id;
    const tier = (
      await gql(`mutation { createTier(input: { communityId: "${c}", name: "Gold", rank: 1 }) { id } }`)
    ).createTier.id;
    plan = (
      await gql(
        `mutation { createPrice(input: { communityId: "${c}", product: { kind: TIER, id: "${tier}" }, amount: 5000, currency: "eur", frequency: INSTALLMENTS, installments: 3 }) { id stripePriceId product { ... on Tier { id } } } }`,
      )
    ).createPrice;
  }, 120_000);

  afterAll(() => gh?.close());

  it('sends the number of installments with the Checkout subscription', async () => {
    await gql(`mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { id } }`, {
      input: {
        communityId: c,
        priceId: plan.id,
        memberId: 'done',
        email: 'done@example.com',
        successUrl: 'https://plans.example/thanks',
        cancelUrl: 'https://plans.example/',
      },
    });
    const checkout = gh.fake.requests
      .filter((r) => r.method === 'POST' && r.path === '/v1/checkout/sessions')
      .at(-1);
    expect((checkout?.params as Loose).subscription_data.metadata.gatehouse_installments).toBe('3');
  });

  it('sets cancel_at to the start plus three months once, on the first sight of the subscription', async () => {
    for (const member of ['done', 'unpaid'])
      gh.fake.seed(kit.buildSubscription(subscriptionSpec(member), API) as never, account);
    await send(
      kit.customerSubscriptionCreated(subscriptionSpec('done'), { account, created: start, apiVersion: API }),
    );
    const [request] = await eventually(async () => {
      const r = cancelAtRequests('done');
      return r.length > 0 ? r : undefined;
    });
    expect(request.params).toEqual({ cancel_at: String(addMonths(start, 3)) });
    expect(request.stripeAccount).toBe(account);
    expect(request.idempotencyKey).toBe('gatehouse:installments:sub_plan_done:3');
    expect(request.status).toBe(200);

    // Later sightings of the same plan ask nothing more.
    await send(
      kit.customerSubscriptionUpdated(subscriptionSpec('done'), {
        account,
        created: start + 10,
        apiVersion: API,
      }),
    );
    await send(
      kit.customerSubscriptionCreated(subscriptionSpec('unpaid'), {
        account,
        created: start,
        apiVersion: API,
      }),
    );
    await eventually(async () => (cancelAtRequests('unpaid').length > 0 ? true : undefined));
    expect(cancelAtRequests('done')).toHaveLength(1);
  });

  it('keeps access for good once all three installments are paid, though the subscription then ends', async () => {
    for (const n of [1, 2, 3]) await send(paid('done', n));
    await send(
      kit.customerSubscriptionDeleted(
        subscriptionSpec('done', {
          status: 'canceled',
          periodStart: addMonths(start, 2),
          periodEnd: addMonths(start, 3),
          cancelAt: addMonths(start, 3),
          endedAt: addMonths(start, 3),
        }),
        { account, created: addMonths(start, 3), apiVersion: API },
      ),
    );
    const later = addMonths(start, 24);
    const decision = await eventually(async () => {
      const d = await canAccess('done', later);
      return d.allowed ? d : undefined;
    });
    expect(decision.grants).toEqual([{ source: 'INSTALLMENT_PLAN', validUntil: null }]);
  });

  it('revokes a plan that ended before every installment was paid', async () => {
    await send(paid('unpaid', 1));
    const endedAt = addMonths(start, 1) + 20 * DAY;
    await send(
      kit.customerSubscriptionDeleted(
        subscriptionSpec('unpaid', { status: 'canceled', canceledAt: endedAt, endedAt }),
        { account, created: endedAt, apiVersion: API },
      ),
    );
    // Folded once the deletion shows: the canceled subscription runs until it ended, not for good.
    await eventually(async () => ((await canAccess('unpaid', endedAt - 60)).allowed ? true : undefined));
    expect((await canAccess('unpaid', endedAt + 60)).allowed).toBe(false);
    expect((await canAccess('unpaid', addMonths(start, 24))).allowed).toBe(false);
  });
});

import jwt from 'jsonwebtoken';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { graphqlAs, stripeSender } from './support/e2e-calls';
import { runCli } from './support/webhook-client';

// Existing Stripe subscribers brought into a community: 200 subscriptions planted in the fake Stripe
// of the community's connected account, imported through GraphQL, re-run through the CLI.

const secret = 'import-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_import_e2e';
const account = 'acct_importe2e';
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const DAY = 86_400;
const API = '2025-03-31.basil' as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

const pad = (i: number) => String(i).padStart(3, '0');
const sub = (i: number) => `sub_imp${pad(i)}`;
const cus = (i: number) => `cus_imp${pad(i)}`;

// The 200 subscriptions, by how each should be tied to a member.
const METADATA = [0, 10];
const KNOWN_CUSTOMER = [10, 20];
const JOINED_EMAIL = [20, 40];
// 40–189: customers Gatehouse has never seen (invited), of which 40–44 canceled but paid through.
const PAID_THROUGH = [40, 45];
const ENDED = [190, 195];
const NEVER_PAID = [195, 200];
const within = ([a, b]: number[], i: number) => i >= a && i < b;

describe('importing existing Stripe subscriptions end to end', () => {
  let gh: GatehouseUnderTest;
  let c: string;
  const now = Math.floor(Date.now() / 1000);
  const periodEnd = now + 20 * DAY;
  const paidThroughEnd = now + 5 * DAY;

  const gql = graphqlAs(() => gh.server.url, admin);

  const send = stripeSender(() => gh.server.url, whsec);

  const importSubs = (dryRun: boolean) =>
    gql(
      `mutation($input: ImportStripeSubscriptionsInput!) {
        importStripeSubscriptions(input: $input) { dryRun linked invited skipped problems }
      }`,
      { input: { communityId: c, stripePriceIds: ['price_importGold'], dryRun } },
    ).then((d) => d.importStripeSubscriptions);

  const canAccess = (member: string, at?: number) =>
    gql(
      `query($c: ID!, $m: ID!, $at: DateTime) {
        canAccess(communityId: $c, memberId: $m, resource: { kind: COMMUNITY }, at: $at) {
          allowed validUntil grants { source validUntil causedBy { id type source } }
        }
      }`,
      { c, m: member, ...(at !== undefined && { at: new Date(at * 1000).toISOString() }) },
    ).then((d) => d.canAccess);

  const memberOf = (i: number) =>
    within(METADATA, i)
      ? `m-meta-${i}`
      : within(KNOWN_CUSTOMER, i)
        ? `m-known-${i}`
        : within(JOINED_EMAIL, i)
          ? `m-joined-${i}`
          : `stripe-${cus(i)}`;

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      { GATEHOUSE_JWT_SECRET: secret, STRIPE_WEBHOOK_SECRET: whsec, STRIPE_SECRET_KEY: 'sk_test_import_e2e' },
      'gh_import',
    );
    c = (
      await gql(
        `mutation { createCommunity(input: { name: "Imports", region: EU, stripeAccountId: "${account}" }) { id } }`,
      )
    ).createCommunity.id;
    const tier = (
      await gql(
        `mutation { createTier(input: { communityId: "${c}", name: "Gold", rank: 1, stripeProductId: "prod_importGold" }) { id } }`,
      )
    ).createTier.id;
    gh.fake.seed(
      kit.buildPrice({
        priceId: 'price_importGold',
        productId: 'prod_importGold',
        unitAmount: 900,
        currency: 'eur',
      }) as never,
      account,
    );
    await gql(
      `mutation { createPrice(input: { communityId: "${c}", product: { kind: TIER, id: "${tier}" }, amount: 900, currency: "eur", frequency: MONTHLY, stripePriceId: "price_importGold" }) { id } }`,
    );

    for (let i = 0; i < 200; i++) {
      const status = within(NEVER_PAID, i)
        ? 'incomplete_expired'
        : within(ENDED, i) || within(PAID_THROUGH, i)
          ? 'canceled'
          : 'active';
      const end = within(ENDED, i) ? now - 2 * DAY : within(PAID_THROUGH, i) ? paidThroughEnd : periodEnd;
      gh.fake.seed(kit.buildCustomer({ id: cus(i), email: `Person${pad(i)}@Example.com` }) as never, account);
      gh.fake.seed(
        kit.buildSubscription(
          {
            id: sub(i),
            customer: cus(i),
            priceId: 'price_importGold',
            productId: 'prod_importGold',
            status,
            periodStart: end - 30 * DAY,
            periodEnd: end,
            ...(status === 'canceled' && { canceledAt: now - 3 * DAY, endedAt: now - 3 * DAY }),
            metadata: within(METADATA, i) ? { gatehouse_member_id: `m-meta-${i}` } : {},
          },
          API,
        ) as never,
        account,
      );
    }
    // Members the community already knows: by a customer id learned from a webhook, by the email they joined with.
    for (let i = KNOWN_CUSTOMER[0]; i < KNOWN_CUSTOMER[1]; i++) {
      await send(
        kit.buildEvent(
          'customer.created',
          kit.buildCustomer({
            id: cus(i),
            email: `other${i}@example.com`,
            metadata: { gatehouse_member_id: `m-known-${i}` },
          }),
          { account, created: now - DAY, apiVersion: API },
        ),
      );
    }
    for (let i = JOINED_EMAIL[0]; i < JOINED_EMAIL[1]; i++) {
      await gql(`mutation($input: JoinCommunityInput!) { joinCommunity(input: $input) { allowed } }`, {
        input: { communityId: c, memberId: `m-joined-${i}`, email: `person${pad(i)}@example.com` },
      });
    }
    await eventually(async () => (await canAccess(`m-joined-${JOINED_EMAIL[1] - 1}`)).allowed || undefined);
  }, 180_000);

  afterAll(() => gh?.close());

  it('reports in a dry run what an import would do and writes nothing', async () => {
    const before = await gh.ledgerCount();
    expect(await importSubs(true)).toEqual({
      dryRun: true,
      linked: 40,
      invited: 150,
      skipped: 10,
      problems: [],
    });
    expect(await gh.ledgerCount()).toBe(before);
    expect((await canAccess(memberOf(50))).allowed).toBe(false);
  }, 60_000);

  it('links 40 known members, invites 150 new ones, skips ended and unpaid subscriptions, and grants access from the Stripe state', async () => {
    expect(await importSubs(false)).toEqual({
      dryRun: false,
      linked: 40,
      invited: 150,
      skipped: 10,
      problems: [],
    });

    for (const i of [0, 15, 25, 60, 189]) {
      const decision = await canAccess(memberOf(i));
      expect(decision.allowed).toBe(true);
      const imported = decision.grants.find((g: Loose) => g.causedBy.id === `migration:${c}:${sub(i)}`);
      expect(imported?.causedBy).toMatchObject({ type: 'SubscriptionImported', source: 'migration' });
      expect(imported.source).toBe('MIGRATION');
      // Access runs to the period end Stripe billed (plus the renewal allowance), with no new charge.
      expect(Date.parse(imported.validUntil)).toBeGreaterThanOrEqual(periodEnd * 1000);
    }
    expect(gh.fake.requests.filter((r) => r.method === 'POST')).toEqual([]);
    for (const i of [190, 197]) expect((await canAccess(memberOf(i))).allowed).toBe(false);
  }, 120_000);

  it('keeps a canceled but paid-through subscription until its period ends', async () => {
    const member = memberOf(PAID_THROUGH[0]);
    expect((await canAccess(member)).allowed).toBe(true);
    expect((await canAccess(member, paidThroughEnd - 60)).allowed).toBe(true);
    expect((await canAccess(member, paidThroughEnd + 60)).allowed).toBe(false);
  });

  it('ties later webhooks of an imported subscription to the invited member (a renewal extends access)', async () => {
    const i = 70;
    const renewed = kit.customerSubscriptionUpdated(
      {
        id: sub(i),
        customer: cus(i),
        priceId: 'price_importGold',
        productId: 'prod_importGold',
        status: 'active',
        periodStart: periodEnd,
        periodEnd: periodEnd + 30 * DAY,
      },
      // Stripe renews after the import.
      { account, created: Math.floor(Date.now() / 1000) + 5, apiVersion: API },
    );
    await send(renewed);
    await eventually(async () => (await canAccess(memberOf(i), periodEnd + 10 * DAY)).allowed || undefined);
  }, 30_000);

  it('changes nothing when run again, from the CLI, listing what Stripe refused for its rate again', async () => {
    const before = await gh.ledgerCount();
    // One request a second: each page after the first is refused at first, then asked for again.
    gh.fake.setRateLimit(1);
    const refusedBefore = gh.fake.requests.filter((r) => r.status === 429).length;
    const cli = await runCli(
      ['stripe', 'import', '--community', c, '--price', 'price_importGold', '--json'],
      gh.env,
    ).finally(() => gh.fake.setRateLimit(undefined));
    expect(gh.fake.requests.filter((r) => r.status === 429).length - refusedBefore).toBeGreaterThan(0);
    expect({ code: cli.code, stderr: cli.code === 0 ? '' : cli.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(cli.stdout)).toEqual({
      dryRun: false,
      linked: 0,
      invited: 0,
      skipped: 200,
      problems: [],
    });
    expect(cli.stderr).toMatch(/200 of 200 subscriptions listed/);
    expect(await gh.ledgerCount()).toBe(before);
    expect(await importSubs(false)).toEqual({
      dryRun: false,
      linked: 0,
      invited: 0,
      skipped: 200,
      problems: [],
    });
    expect(await gh.ledgerCount()).toBe(before);
  }, 120_000);
});

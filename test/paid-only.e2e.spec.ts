import jwt from 'jsonwebtoken';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { stripeSender } from './support/e2e-calls';

// A community switches to paid-only: free members keep access until the announced date and are then
// shut out unless they pay; a member whose subscription ended loses the content but still reaches the
// join and upsell pages.

const secret = 'paid-only-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_paid_only_e2e';
const account = 'acct_paidonlye2e';
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const DAY = 86_400;
const API = '2025-03-31.basil' as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

describe('paid-only communities end to end', () => {
  let gh: GatehouseUnderTest;
  let c: string;
  let group: string;
  let priceId: string;
  const now = Math.floor(Date.now() / 1000);
  // Whole seconds, so "just before" and "just after" are exact.
  const freeMembersUntil = new Date((now + 3600) * 1000);

  async function call(query: string, variables: Record<string, unknown> = {}): Promise<Loose> {
    const res = await fetch(`${gh.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as Loose;
  }
  async function gql(query: string, variables: Record<string, unknown> = {}): Promise<Loose> {
    const body = await call(query, variables);
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  }

  const send = stripeSender(() => gh.server.url, whsec);

  const canAccess = (member: string, at?: Date, resource: Loose = { kind: 'COMMUNITY' }) =>
    gql(
      `query($c: ID!, $m: ID!, $r: ResourceInput!, $at: DateTime) {
        canAccess(communityId: $c, memberId: $m, resource: $r, at: $at) { allowed reason grants { source validUntil } }
      }`,
      { c, m: member, r: resource, ...(at && { at: at.toISOString() }) },
    ).then((d) => d.canAccess);

  const join = (memberId: string) =>
    call(`mutation($input: JoinCommunityInput!) { joinCommunity(input: $input) { allowed } }`, {
      input: { communityId: c, memberId, email: `${memberId}@example.com` },
    });

  const subscription = (member: string, extra: Loose = {}) => ({
    id: `sub_${member}`,
    customer: `cus_${member}`,
    priceId: 'price_paidOnlyGold',
    productId: 'prod_paidOnlyGold',
    status: 'active' as const,
    periodStart: now - DAY,
    periodEnd: now + 29 * DAY,
    metadata: { gatehouse_member_id: member },
    ...extra,
  });

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      { GATEHOUSE_JWT_SECRET: secret, STRIPE_WEBHOOK_SECRET: whsec },
      'gh_paid_only',
    );
    c = (
      await gql(
        `mutation { createCommunity(input: { name: "Paid only", region: EU, stripeAccountId: "${account}" }) { id } }`,
      )
    ).createCommunity.id;
    group = (await gql(`mutation { createGroup(input: { communityId: "${c}", name: "Studio" }) { id } }`))
      .createGroup.id;
    const tier = (
      await gql(
        `mutation { createTier(input: { communityId: "${c}", name: "Gold", rank: 1, groupIds: ["${group}"], stripeProductId: "prod_paidOnlyGold" }) { id } }`,
      )
    ).createTier.id;
    priceId = (
      await gql(
        `mutation { createPrice(input: { communityId: "${c}", product: { kind: TIER, id: "${tier}" }, amount: 1500, currency: "eur", frequency: MONTHLY, stripePriceId: "price_paidOnlyGold" }) { id } }`,
      )
    ).createPrice.id;

    for (const m of ['free', 'payer', 'lapsed'])
      expect((await join(m)).data.joinCommunity.allowed).toBe(true);
    await send(
      kit.customerSubscriptionCreated(subscription('payer'), { account, created: now, apiVersion: API }),
    );
    // "lapsed" paid, then the subscription ended a minute ago.
    await send(
      kit.customerSubscriptionDeleted(
        subscription('lapsed', {
          status: 'canceled',
          periodStart: now - 30 * DAY,
          periodEnd: now + 5 * DAY,
          canceledAt: now - 60,
          endedAt: now - 60,
        }),
        { account, created: now - 60, apiVersion: API },
      ),
    );
    await eventually(async () =>
      (await canAccess('payer', undefined, { kind: 'GROUP', id: group })).allowed ? true : undefined,
    );

    const community = (
      await gql(
        `mutation($input: SetPaidOnlyInput!) { setPaidOnly(input: $input) { paidOnly freeMembersUntil } }`,
        { input: { communityId: c, paidOnly: true, freeMembersUntil: freeMembersUntil.toISOString() } },
      )
    ).setPaidOnly;
    expect(community).toEqual({ paidOnly: true, freeMembersUntil: freeMembersUntil.toISOString() });
  }, 120_000);

  afterAll(() => gh?.close());

  it('shuts a free member out exactly at freeMembersUntil', async () => {
    const before = await canAccess('free', new Date(freeMembersUntil.getTime() - 1000));
    expect(before.allowed).toBe(true);
    expect(before.grants).toEqual([
      { source: 'FREE_MEMBERSHIP', validUntil: freeMembersUntil.toISOString() },
    ]);
    expect((await canAccess('free', freeMembersUntil)).allowed).toBe(false);
    expect((await canAccess('free', new Date(freeMembersUntil.getTime() + 1000))).allowed).toBe(false);
  });

  it('keeps a paying member in after freeMembersUntil', async () => {
    const after = new Date(freeMembersUntil.getTime() + 1000);
    expect((await canAccess('payer', after)).allowed).toBe(true);
    expect((await canAccess('payer', after, { kind: 'GROUP', id: group })).allowed).toBe(true);
  });

  it('takes all content from a member whose subscription ended, once free access is over', async () => {
    const after = new Date(freeMembersUntil.getTime() + 1000);
    expect((await canAccess('lapsed', undefined, { kind: 'GROUP', id: group })).allowed).toBe(false);
    expect((await canAccess('lapsed', after)).allowed).toBe(false);
    expect((await canAccess('lapsed', after, { kind: 'GROUP', id: group })).allowed).toBe(false);
  });

  it('still shows a member who lost access the upsell offers and the join page', async () => {
    const offers = (
      await gql(`query($c: ID!) { upsellOffers(communityId: $c, memberId: "lapsed") { price { id } } }`, {
        c,
      })
    ).upsellOffers;
    expect(offers.map((o: Loose) => o.price.id)).toContain(priceId);
    const link = (
      await gql(
        `mutation($input: CreateInvitationLinkInput!) { createInvitationLink(input: $input) { url token } }`,
        { input: { communityId: c, priceIds: [priceId], audience: 'ANYONE' } },
      )
    ).createInvitationLink;
    const page = await fetch(`${gh.server.url}/join/${link.token}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Gold');
  });

  it('still lets new members join free until freeMembersUntil', async () => {
    const joined = await join('late');
    expect(joined.data.joinCommunity.allowed).toBe(true);
  });

  it('refuses free joining once free access is closed (paid-only without a date)', async () => {
    await gql(`mutation($input: SetPaidOnlyInput!) { setPaidOnly(input: $input) { paidOnly } }`, {
      input: { communityId: c, paidOnly: true },
    });
    const refused = await join('too-late');
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

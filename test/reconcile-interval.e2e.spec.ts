import jwt from 'jsonwebtoken';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';

// A webhook Stripe never delivered is found by the server's own reconciler on its interval.

const secret = 'reconcile-e2e-secret-'.padEnd(40, 'x');
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });

describe('the reconciler on an interval', () => {
  let gh: GatehouseUnderTest;

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      {
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_WEBHOOK_SECRET: 'whsec_reconcile_e2e',
        STRIPE_SECRET_KEY: 'sk_test_reconcile',
        GATEHOUSE_RECONCILE_INTERVAL: '1',
      },
      'gh_reconcile',
    );
  }, 120_000);
  afterAll(() => gh?.close());

  it('appends an event that only the Events API knows about', async () => {
    const gql = async (query: string) => {
      const res = await fetch(`${gh.server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query }),
      });
      return ((await res.json()) as { data: Record<string, any> }).data; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    const c = (
      await gql(
        'mutation { createCommunity(input: { name: "Missed", region: US, stripeAccountId: "acct_missed1" }) { id } }',
      )
    ).createCommunity.id;
    const missed = kit.customerSubscriptionCreated(
      { id: 'sub_missed', customer: 'cus_missed', metadata: { gatehouse_member_id: 'mo' } },
      { account: 'acct_missed1', created: Math.floor(Date.now() / 1000) },
    );
    gh.fake.emit(missed as never, { deliverySuccess: false });
    const found = await eventually(
      async () => {
        const edges = (
          await gql(
            `query { ledgerEvents(communityId: "${c}", types: ["customer.subscription.created"]) { edges { node { id } } } }`,
          )
        ).ledgerEvents.edges;
        return edges.length > 0 ? edges : undefined;
      },
      20_000,
      250,
    );
    expect(found.map((e: { node: { id: string } }) => e.node.id)).toEqual([missed.id]);
  }, 60_000);
});

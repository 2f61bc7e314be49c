import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { loadConfig, signToken, withDevSecrets } from '@gatehouse/api';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { run } from './run';
import { GraphQLCallError, graphqlClient, serverAnswers, serverUrl, type Gql } from './server-client';

// `gatehouse demo`: seeds a community against a running server and plays about a month of member
// activity as signed Stripe webhooks (built with the Stripe test kit), then prints queries to try.
// When the server has Stripe behind it (the fake Stripe API, say), the catalog is created there and
// a new member buys through Checkout.

const DAY = 86_400;

function progress(done: number, total: number, label: string): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}`.padEnd(90);
  process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
}

export async function demoCommand(opts: { url?: string }): Promise<number> {
  const config = withDevSecrets(loadConfig());
  const url = serverUrl(opts.url, config.port);
  const secret = config.stripeWebhookSecrets[0];
  if (!(await serverAnswers(url))) {
    process.stderr.write(
      `gatehouse demo: no server answers at ${url}: start it with \`npm start\` (or pass --url)\n`,
    );
    return 1;
  }
  const admin = graphqlClient(
    url,
    signToken(config.jwtSecret, { sub: 'demo-operator', roles: ['platform-admin'] }),
  );
  const tag = randomBytes(3).toString('hex');
  const account = `acct_demo${tag}`;

  process.stderr.write(`Seeding a community on ${url}…\n`);
  const { createCommunity: community } = await admin(
    `mutation($input: CreateCommunityInput!) { createCommunity(input: $input) { id name } }`,
    { input: { name: `Makers Guild ${tag}`, region: 'EU', stripeAccountId: account, pastDueGraceDays: 3 } },
  );
  const c = community.id as string;
  // A launch promo code is created in Stripe: it also tells whether the server has Stripe behind it
  // (`gatehouse stripe fake`, or a test-mode key). With Stripe, products and prices are created
  // there too and a member buys through Checkout at the end; without, they carry made-up Stripe ids.
  const promoCode = `LAUNCH-${tag.toUpperCase()}`;
  const stripeBacked = await createPromoCode(admin, c, promoCode);
  const made = (stripeProductId: string) => (stripeBacked ? {} : { stripeProductId });
  const group = (
    await admin(`mutation($i: CreateGroupInput!) { createGroup(input: $i) { id } }`, {
      i: { communityId: c, name: 'Founders channel', ...made(`prod_demoGroup${tag}`) },
    })
  ).createGroup.id as string;
  const tiers: Record<string, string> = {};
  for (const [rank, name] of ['Bronze', 'Silver', 'Gold'].entries()) {
    tiers[name] = (
      await admin(`mutation($i: CreateTierInput!) { createTier(input: $i) { id } }`, {
        i: {
          communityId: c,
          name,
          rank: rank + 1,
          groupIds: name === 'Gold' ? [group] : [],
          ...made(`prod_demo${name}${tag}`),
        },
      })
    ).createTier.id as string;
  }
  const starts = new Date(Date.now() + 20 * DAY * 1000);
  const event = (
    await admin(`mutation($i: CreateEventInput!) { createEvent(input: $i) { id } }`, {
      i: {
        communityId: c,
        name: 'Spring meetup',
        startsAt: starts.toISOString(),
        endsAt: new Date(starts.getTime() + 3 * 3600_000).toISOString(),
        capacity: 50,
        ...made(`prod_demoEvent${tag}`),
      },
    })
  ).createEvent.id as string;

  /** Our price id for each Stripe price id. */
  const priceIds = new Map<string, string>();
  const price = async (
    product: { kind: string; id: string },
    amount: number,
    frequency: string,
    extra: Record<string, unknown> = {},
  ) => {
    const given = stripeBacked
      ? {}
      : { stripePriceId: `price_demo${frequency.replace('_', '')}${amount}${tag}` };
    const created = (
      await admin(`mutation($i: CreatePriceInput!) { createPrice(input: $i) { id stripePriceId } }`, {
        i: { communityId: c, product, amount, currency: 'eur', frequency, ...given, ...extra },
      })
    ).createPrice as { id: string; stripePriceId: string };
    priceIds.set(created.stripePriceId, created.id);
    return created.stripePriceId;
  };
  const p = {
    bronzeWeekly: await price({ kind: 'TIER', id: tiers.Bronze }, 300, 'WEEKLY'),
    bronzeAnnual: await price({ kind: 'TIER', id: tiers.Bronze }, 9900, 'ANNUAL'),
    silverMonthly: await price({ kind: 'TIER', id: tiers.Silver }, 1200, 'MONTHLY', { trialDays: 14 }),
    goldMonthly: await price({ kind: 'TIER', id: tiers.Gold }, 2500, 'MONTHLY'),
    goldQuarterly: await price({ kind: 'TIER', id: tiers.Gold }, 6900, 'QUARTERLY'),
    groupOnce: await price({ kind: 'GROUP', id: group }, 4900, 'ONE_TIME'),
    groupInstallments: await price({ kind: 'GROUP', id: group }, 2000, 'INSTALLMENTS', { installments: 3 }),
    ticket: await price({ kind: 'EVENT', id: event }, 1500, 'ONE_TIME'),
  };
  const product = (name: string) => `prod_demo${name}${tag}`;

  // A month of activity, oldest first, as Stripe would send it (each event signed on delivery).
  const t0 = Math.floor(Date.now() / 1000) - 30 * DAY;
  const events: { at: number; label: string; event: ReturnType<typeof kit.customerSubscriptionCreated> }[] =
    [];
  const at = (day: number) => t0 + day * DAY;
  const sub = (
    member: string,
    priceId: string,
    productId: string,
    interval: 'week' | 'month' | 'year',
    intervalCount = 1,
  ) => ({
    id: `sub_demo${member}${tag}`,
    customer: `cus_demo${member}${tag}`,
    priceId,
    productId,
    unitAmount: 0,
    currency: 'eur',
    interval,
    intervalCount,
    metadata: { gatehouse_community_id: c, gatehouse_member_id: member, gatehouse_price_id: priceId },
  });
  const push = (day: number, label: string, e: (o: { created: number; account: string }) => any) =>
    events.push({ at: at(day), label, event: e({ created: at(day), account }) });
  const periodDays = (interval: 'week' | 'month' | 'year', n = 1) =>
    (interval === 'week' ? 7 : interval === 'month' ? 30 : 365) * n;

  const subscribe = (
    member: string,
    day: number,
    priceId: string,
    name: string,
    interval: 'week' | 'month' | 'year',
    n = 1,
    trialDays = 0,
  ) => {
    const s = sub(member, priceId, product(name), interval, n);
    const end = trialDays ? day + trialDays : day + periodDays(interval, n);
    push(day, `${member} checks out`, (o) =>
      kit.checkoutSessionCompleted(
        { customer: s.customer, subscription: s.id, clientReferenceId: member, metadata: s.metadata },
        o,
      ),
    );
    push(day, `${member} subscribes`, (o) =>
      kit.customerSubscriptionCreated(
        {
          ...s,
          status: trialDays ? 'trialing' : 'active',
          periodStart: at(day),
          periodEnd: at(end),
          trialStart: trialDays ? at(day) : null,
          trialEnd: trialDays ? at(end) : null,
        },
        o,
      ),
    );
    if (!trialDays)
      push(day, `${member} pays`, (o) =>
        kit.invoicePaid(
          {
            subscription: s.id,
            customer: s.customer,
            billingReason: 'subscription_create',
            lines: [
              { amount: 1000, priceId, productId: product(name), periodStart: at(day), periodEnd: at(end) },
            ],
          } as any,
          o,
        ),
      );
    return { s, end };
  };

  subscribe('alice', 0, p.goldMonthly, 'Gold', 'month');
  const renewedAlice = sub('alice', p.goldMonthly, product('Gold'), 'month');
  push(30, 'alice renews', (o) =>
    kit.customerSubscriptionUpdated(
      { ...renewedAlice, status: 'active', periodStart: at(30), periodEnd: at(60) },
      { ...o, previousAttributes: { current_period_start: at(0) } },
    ),
  );
  push(30, 'alice pays the renewal', (o) =>
    kit.invoicePaid(
      {
        subscription: renewedAlice.id,
        customer: renewedAlice.customer,
        billingReason: 'subscription_cycle',
        lines: [
          {
            amount: 2500,
            priceId: p.goldMonthly,
            productId: product('Gold'),
            periodStart: at(30),
            periodEnd: at(60),
          },
        ],
      } as any,
      o,
    ),
  );

  const bob = subscribe('bob', 2, p.silverMonthly, 'Silver', 'month', 1, 14);
  push(16, 'bob’s trial converts', (o) =>
    kit.customerSubscriptionUpdated(
      {
        ...bob.s,
        status: 'active',
        periodStart: at(16),
        periodEnd: at(46),
        trialStart: at(2),
        trialEnd: at(16),
      },
      o,
    ),
  );
  push(16, 'bob pays', (o) =>
    kit.invoicePaid(
      {
        subscription: bob.s.id,
        customer: bob.s.customer,
        billingReason: 'subscription_cycle',
        lines: [
          {
            amount: 1200,
            priceId: p.silverMonthly,
            productId: product('Silver'),
            periodStart: at(16),
            periodEnd: at(46),
          },
        ],
      } as any,
      o,
    ),
  );

  const carol = subscribe('carol', 1, p.bronzeWeekly, 'Bronze', 'week');
  for (const week of [8, 15, 22, 29]) {
    push(week, `carol’s week ${Math.round(week / 7)} renews`, (o) =>
      kit.customerSubscriptionUpdated(
        { ...carol.s, status: 'active', periodStart: at(week), periodEnd: at(week + 7) },
        o,
      ),
    );
  }

  const dave = subscribe('dave', 3, p.silverMonthly, 'Silver', 'month');
  const daveGold = sub('dave', p.goldMonthly, product('Gold'), 'month');
  push(13, 'dave upgrades to Gold', (o) =>
    kit.customerSubscriptionUpdated(
      { ...daveGold, status: 'active', periodStart: at(3), periodEnd: dave.end === 0 ? at(33) : at(33) },
      { ...o, requestId: `req_demo${tag}` },
    ),
  );
  push(13, 'dave pays the proration', (o) =>
    kit.invoicePaid(
      {
        subscription: daveGold.id,
        customer: daveGold.customer,
        billingReason: 'subscription_update',
        lines: [
          {
            amount: -800,
            proration: true,
            priceId: p.silverMonthly,
            productId: product('Silver'),
            periodStart: at(13),
            periodEnd: at(33),
            description: 'Unused time on Silver',
          },
          {
            amount: 1667,
            proration: true,
            priceId: p.goldMonthly,
            productId: product('Gold'),
            periodStart: at(13),
            periodEnd: at(33),
            description: 'Remaining time on Gold',
          },
        ],
      } as any,
      o,
    ),
  );

  const erin = subscribe('erin', -70, p.goldQuarterly, 'Gold', 'month', 3);
  push(20, 'erin’s renewal fails', (o) =>
    kit.invoicePaymentFailed(
      {
        subscription: erin.s.id,
        customer: erin.s.customer,
        billingReason: 'subscription_cycle',
        lines: [
          {
            amount: 6900,
            priceId: p.goldQuarterly,
            productId: product('Gold'),
            periodStart: at(20),
            periodEnd: at(110),
          },
        ],
      } as any,
      o,
    ),
  );
  push(20, 'erin is past due', (o) =>
    kit.customerSubscriptionUpdated(
      { ...erin.s, status: 'past_due', periodStart: at(20), periodEnd: at(110) },
      o,
    ),
  );

  const frank = subscribe('frank', 4, p.bronzeAnnual, 'Bronze', 'year');
  push(18, 'frank cancels', (o) =>
    kit.customerSubscriptionDeleted(
      { ...frank.s, periodStart: at(4), periodEnd: at(369), endedAt: at(18), canceledAt: at(18) },
      o,
    ),
  );

  for (const [member, day, priceId, name] of [
    ['grace', 6, p.ticket, 'Event'],
    ['heidi', 9, p.groupOnce, 'Group'],
  ] as const) {
    push(day, `${member} buys ${name === 'Event' ? 'a ticket' : 'the group'}`, (o) =>
      kit.checkoutSessionCompleted(
        {
          mode: 'payment',
          paymentStatus: 'paid',
          customer: `cus_demo${member}${tag}`,
          subscription: null,
          paymentIntent: `pi_demo${member}${tag}`,
          clientReferenceId: member,
          amountTotal: 1500,
          metadata: {
            gatehouse_community_id: c,
            gatehouse_member_id: member,
            gatehouse_price_id: priceId,
            gatehouse_stripe_price_id: priceId,
          },
        } as any,
        o,
      ),
    );
  }
  push(11, 'grace’s ticket is refunded', (o) =>
    kit.chargeRefunded(
      {
        amount: 1500,
        amountRefunded: 1500,
        refunded: true,
        paymentIntent: `pi_demograce${tag}`,
        customer: `cus_demograce${tag}`,
      },
      o,
    ),
  );

  events.sort((a, b) => a.at - b.at);
  process.stderr.write(`Playing ${events.length} Stripe events (about a month of activity)…\n`);
  let done = 0;
  for (const { label, event: e } of events) {
    // Signed at delivery time: the server refuses signatures older than its tolerance.
    const signed = kit.signPayload(e, secret, Math.floor(Date.now() / 1000));
    const res = await fetch(`${url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': signed.header },
      body: signed.rawBody,
    });
    if (res.status !== 200) {
      process.stderr.write(`\nthe server refused ${e.type} (${res.status}): ${await res.text()}\n`);
      process.stderr.write(
        'Is the server using the same STRIPE_WEBHOOK_SECRET (or the same GATEHOUSE_DATA_DIR) as this command?\n',
      );
      return 1;
    }
    progress(++done, events.length, label);
  }
  process.stderr.write('\n');

  const bought = stripeBacked
    ? await buyThroughCheckout(admin, url, c, priceIds.get(p.goldMonthly)!, promoCode)
    : `Stripe is not configured on the server, so nothing was bought through Checkout. To see that too:
  npx gatehouse stripe fake --forward-to ${url}/webhooks/stripe
and start the server with STRIPE_API_BASE=http://127.0.0.1:12111 STRIPE_SECRET_KEY=sk_test_fake.
`;

  const member = signToken(config.jwtSecret, { sub: 'alice', roles: [`member:${c}`] }, '7d');
  const adminToken = signToken(config.jwtSecret, { sub: 'demo-admin', roles: [`admin:${c}`] }, '7d');
  process.stdout.write(`
Community ${community.name}: ${c}
GraphQL: ${url}/graphql

${bought}
Alice (member token, 7 days):
  ${member}
Community admin token (7 days):
  ${adminToken}

Try (with the admin token):
  { community(id: "${c}") { name tiers { name rank prices { amount currency frequency } } } }
  { canAccess(communityId: "${c}", memberId: "alice", resource: { kind: COMMUNITY }) { allowed reason validUntil } }
  { membership(communityId: "${c}", memberId: "dave") { status tier { name } currentPeriodEnd } }
  { canAccess(communityId: "${c}", memberId: "erin", resource: { kind: COMMUNITY }) { allowed reason } }
  { canAccess(communityId: "${c}", memberId: "grace", resource: { kind: EVENT, id: "${event}" }) { allowed reason } }
  { accessHistory(communityId: "${c}", memberId: "frank") { edges { node { change effectiveAt recordedAt source } } } }
  { ledgerEvents(communityId: "${c}", first: 5) { edges { node { type occurredAt } } pageInfo { endCursor hasNextPage } } }

curl -s ${url}/graphql -H 'content-type: application/json' -H "authorization: Bearer ${adminToken}" \\
  -d '{"query":"{ canAccess(communityId: \\"${c}\\", memberId: \\"alice\\", resource: { kind: COMMUNITY }) { allowed reason } }"}'
`);
  return 0;
}

/**
 * Creates a promo code (10 % off, once) in Stripe through the server. False when the server has no
 * Stripe configured; any other failure (Stripe unreachable, say) stops the demo.
 */
async function createPromoCode(admin: Gql, communityId: string, code: string): Promise<boolean> {
  try {
    await admin(`mutation($input: CreatePromoCodeInput!) { createPromoCode(input: $input) { id } }`, {
      input: { communityId, code, percentOff: 10, duration: 'ONCE' },
    });
    return true;
  } catch (err) {
    if (err instanceof GraphQLCallError && /Stripe is not configured/.test(err.message)) return false;
    throw err;
  }
}

/**
 * A new member (ivan) buys Gold monthly with the promo code: the session is started through the
 * server and, when Checkout is the fake Stripe's page, paid there; the member's status is then read
 * back once the fake's webhooks have arrived. Returns what to print.
 */
async function buyThroughCheckout(
  admin: Gql,
  url: string,
  communityId: string,
  priceId: string,
  promoCode: string,
): Promise<string> {
  process.stderr.write('ivan buys Gold through Checkout…\n');
  const { startCheckout } = await admin(
    `mutation($input: StartCheckoutInput!) { startCheckout(input: $input) { id url } }`,
    {
      input: {
        communityId,
        priceId,
        memberId: 'ivan',
        email: 'ivan@example.com',
        promoCode,
        successUrl: `${url}/healthz`,
        cancelUrl: `${url}/healthz`,
      },
    },
  );
  const page = await (await fetch(startCheckout.url)).text();
  const action = /<form method="post" action="([^"]+\/complete)"/.exec(page)?.[1];
  if (!action)
    return `Checkout session for ivan (Gold, promo code ${promoCode}): pay it in a browser, then ask for ivan's membership:
  ${startCheckout.url}
`;
  const paid = await fetch(new URL(action, startCheckout.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email: 'ivan@example.com' }),
    redirect: 'manual',
  });
  if (paid.status !== 303)
    return `The fake Stripe refused the payment (${paid.status}): ${await paid.text()}\n`;
  const deadline = Date.now() + 15_000;
  let status = 'NONE';
  while (Date.now() < deadline) {
    const { membership } = await admin(
      `query($c: ID!) { membership(communityId: $c, memberId: "ivan") { status } }`,
      { c: communityId },
    );
    status = membership.status as string;
    if (status !== 'NONE') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (status === 'NONE')
    return `ivan paid on the fake Stripe's Checkout page, but no webhook has arrived: is the fake running with
  --forward-to ${url}/webhooks/stripe ?
`;
  return `ivan bought Gold through the fake Stripe's Checkout (promo code ${promoCode}): membership ${status}.
`;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'seed a community on a running server and play a month of member activity as signed webhooks (with Stripe behind the server, also a purchase through Checkout)',
    )
    .option('--url <url>', 'the server (default http://localhost:$PORT)')
    .action(run((opts: { url?: string }) => demoCommand(opts)));
}

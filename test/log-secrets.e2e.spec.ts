import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { stripeTestKit } from '@gatehouse/stripe';
import { bearer, graphqlClient, okData } from './support/graphql-client';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';

// A representative run of the started server at LOG_LEVEL=debug, then a grep of every line it wrote
// (stdout and stderr) for the secrets it was given and the credentials it was sent.

const jwtSecret = `log-secrets-jwt-${randomBytes(16).toString('hex')}`;
const stripeKey = `sk_test_logsecrets${randomBytes(12).toString('hex')}`;
const whsec = `whsec_logsecrets${randomBytes(12).toString('hex')}`;
const account = `acct_logsecrets${randomBytes(4).toString('hex')}`;

describe('no secret in any log line', () => {
  let gh: GatehouseUnderTest;
  let output = '';
  const credentials: string[] = [];

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      {
        LOG_LEVEL: 'debug',
        GATEHOUSE_JWT_SECRET: jwtSecret,
        STRIPE_SECRET_KEY: stripeKey,
        STRIPE_WEBHOOK_SECRET: whsec,
        GATEHOUSE_PUBLIC_URL: 'https://join.example.com',
      },
      'logsecrets_e2e',
    );
    const url = gh.server.url;
    const gql = graphqlClient(url);
    const root = bearer(jwtSecret, { sub: 'root', roles: ['platform-admin'] });
    credentials.push(root);

    const communityId = (
      await okData(
        gql,
        'mutation($a: String!) { createCommunity(input: { name: "Logs", region: EU, stripeAccountId: $a }) { id } }',
        { a: account },
        root,
      )
    ).createCommunity.id as string;
    const adminToken = bearer(jwtSecret, { sub: 'admin-1', roles: [`admin:${communityId}`] });
    credentials.push(adminToken);
    const tierId = (
      await okData(
        gql,
        'mutation($c: ID!) { createTier(input: { communityId: $c, name: "Gold", rank: 1 }) { id } }',
        { c: communityId },
        adminToken,
      )
    ).createTier.id as string;
    const priceId = (
      await okData(
        gql,
        'mutation($c: ID!, $t: ID!) { createPrice(input: { communityId: $c, product: { kind: TIER, id: $t }, amount: 900, currency: "eur", frequency: MONTHLY }) { id } }',
        { c: communityId, t: tierId },
        adminToken,
      )
    ).createPrice.id as string;
    const memberToken = bearer(jwtSecret, { sub: 'member-1', roles: [`member:${communityId}`] });
    credentials.push(memberToken);
    await okData(
      gql,
      'mutation($i: StartCheckoutInput!) { startCheckout(input: $i) { id } }',
      {
        i: {
          communityId,
          priceId,
          memberId: 'member-1',
          email: 'm1@example.com',
          successUrl: 'https://example.com/ok',
          cancelUrl: 'https://example.com/no',
        },
      },
      memberToken,
    );
    await gql(
      'mutation($c: ID!) { billingPortalUrl(communityId: $c, memberId: "member-1", returnUrl: "https://example.com/") }',
      { c: communityId },
      memberToken,
    );
    // Refused and bad credentials.
    await gql(
      'query($c: ID!) { ledgerEvents(communityId: $c) { edges { cursor } } }',
      { c: communityId },
      memberToken,
    );
    const forged = jwt.sign({ roles: ['platform-admin'] }, `${jwtSecret}-not`, {
      algorithm: 'HS256',
      subject: 'root',
    });
    const expired = jwt.sign(
      { roles: ['platform-admin'], exp: Math.floor(Date.now() / 1000) - 5 },
      jwtSecret,
      { algorithm: 'HS256', subject: 'root' },
    );
    credentials.push(forged, expired);
    for (const t of [forged, expired, 'garbage.token.value'])
      await gql('{ community(id: "x") { id } }', {}, t);
    const basic = `Basic ${Buffer.from(`root:${jwtSecret}`).toString('base64')}`;
    credentials.push(basic);
    await gql('{ __typename }', {}, null, { authorization: basic });
    // A request that fails unexpectedly (masked, logged with its correlation id).
    await gql(
      'mutation($c: ID!) { createEvent(input: { communityId: $c, name: "Bad\\u0000name", startsAt: "2031-01-01T00:00:00Z", endsAt: "2031-01-02T00:00:00Z" }) { id } }',
      { c: communityId },
      adminToken,
    );

    // Webhooks: signed, signed with another secret, stale, without a signature, for an unknown account.
    const now = Math.floor(Date.now() / 1000);
    const send = async (rawBody: Buffer, header?: string) => {
      if (header)
        credentials.push(
          header,
          ...header
            .split(',')
            .filter((p) => p.startsWith('v1='))
            .map((p) => p.slice(3)),
        );
      const res = await fetch(`${url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(header && { 'stripe-signature': header }) },
        body: rawBody,
      });
      return res.status;
    };
    const event = (acct: string) =>
      stripeTestKit.customerSubscriptionUpdated({ customer: 'cus_logs' } as never, {
        account: acct,
        created: now,
      });
    const good = stripeTestKit.signPayload(event(account), whsec, now);
    expect(await send(good.rawBody, good.header)).toBe(200);
    const wrong = stripeTestKit.signPayload(event(account), 'whsec_someone_else', now);
    expect(await send(wrong.rawBody, wrong.header)).toBe(400);
    const stale = stripeTestKit.signPayload(event(account), whsec, now - 3600);
    expect(await send(stale.rawBody, stale.header)).toBe(400);
    expect(await send(good.rawBody)).toBe(400);
    const unknown = stripeTestKit.signPayload(event('acct_nobodyknows'), whsec, now);
    expect(await send(unknown.rawBody, unknown.header)).toBe(200);

    // Shutting down logs too.
    await gh.server.stop('SIGINT');
    output = gh.server.output();
  }, 120_000);

  afterAll(async () => {
    await gh?.close();
  });

  const lines = () => output.split('\n');

  it('the run logged a line per request, the refused webhooks and the unexpected error', () => {
    expect(lines().length).toBeGreaterThan(20);
    expect(output).toMatch(/"level":50.*unexpected error/);
    expect(output).toMatch(/STRIPE_SIGNATURE_MISMATCH/);
    expect(output).toContain('/webhooks/stripe');
    expect(output).toContain('/graphql');
  });

  it.each([
    ['the JWT secret', () => [jwtSecret]],
    ['the Stripe secret key', () => [stripeKey, stripeKey.slice('sk_test_'.length)]],
    ['the Stripe webhook secret', () => [whsec, whsec.slice('whsec_'.length)]],
    [
      'a bearer token or Authorization header sent',
      () => credentials.filter((c) => !c.startsWith('t=') && !/^[0-9a-f]{64}$/.test(c)),
    ],
    [
      'a Stripe-Signature header value or signature sent',
      () => credentials.filter((c) => c.startsWith('t=') || /^[0-9a-f]{64}$/.test(c)),
    ],
  ])('no line carries %s', (_what, values) => {
    const secrets = values();
    expect(secrets.length).toBeGreaterThan(0);
    const hits = lines().flatMap((line, n) =>
      secrets
        .filter((s) => line.includes(s))
        .map((s) => `line ${n + 1} carries ${s.slice(0, 12)}…: ${line.slice(0, 200)}`),
    );
    expect(hits).toEqual([]);
  });

  it('no line carries the signature part of any JWT', () => {
    const signatures = credentials.filter((c) => c.split('.').length === 3).map((c) => c.split('.')[2]);
    expect(signatures.length).toBeGreaterThan(3);
    expect(lines().filter((l) => signatures.some((s) => l.includes(s)))).toEqual([]);
  });
});

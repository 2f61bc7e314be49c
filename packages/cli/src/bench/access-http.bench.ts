import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { Arg, Query, Resolver, buildSchema } from 'type-graphql';
import { loadConfig, signToken, startGatehouse, withDevSecrets } from '@gatehouse/api';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { loadTest, median, type LoadResult } from './http-load';

// canAccess over HTTP, beside the cheapest possible Apollo + type-graphql query answered from memory,
// measured alternately in the same process with the same load generator.

const members = new Set<string>();

@Resolver()
class BareAccessResolver {
  @Query(() => Boolean)
  allowed(@Arg('memberId') memberId: string): boolean {
    return members.has(memberId);
  }
}

async function startBare(): Promise<{ url: string; close(): Promise<void> }> {
  const schema = await buildSchema({ resolvers: [BareAccessResolver], validate: false });
  const apollo = new ApolloServer({ schema });
  await apollo.start();
  const app = express();
  app.use('/graphql', express.json(), expressMiddleware(apollo));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    close: async () => {
      await apollo.stop();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function runAccessHttpBench(options: {
  /** A scratch database for the server under test. */
  databaseUrl: string;
  seconds?: number;
  runs?: number;
  members?: number;
  log: (l: string) => void;
}) {
  const seconds = options.seconds ?? 8;
  const runs = Math.max(3, options.runs ?? 3);
  const memberCount = options.members ?? 500;
  const log = options.log;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
  const config = withDevSecrets(
    loadConfig({
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      KAFKA_BROKERS: undefined,
      GATEHOUSE_REGIONS: undefined,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      GATEHOUSE_DATA_DIR: dataDir,
    }),
  );
  const gatehouse = await startGatehouse(config);
  const bare = await startBare();
  try {
    const admin = signToken(config.jwtSecret, { sub: 'bench', roles: ['platform-admin'] });
    const gql = async (query: string, variables: Record<string, unknown> = {}) => {
      const res = await fetch(`${gatehouse.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data?: any; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    };
    const account = 'acct_bench1';
    const c = (
      await gql(
        'mutation { createCommunity(input: { name: "Bench", region: US, stripeAccountId: "acct_bench1" }) { id } }',
      )
    ).createCommunity.id;
    const tier = (
      await gql(
        `mutation { createTier(input: { communityId: "${c}", name: "Gold", rank: 1, stripeProductId: "prod_benchGold" }) { id } }`,
      )
    ).createTier.id;
    await gql(
      `mutation { createPrice(input: { communityId: "${c}", product: { kind: TIER, id: "${tier}" }, amount: 1000, currency: "usd", frequency: MONTHLY, stripePriceId: "price_benchGold" }) { id } }`,
    );

    log(`seeding ${memberCount} subscribed members through signed webhooks…`);
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < memberCount; i++) {
      const member = `member-${i}`;
      members.add(member);
      const e = kit.customerSubscriptionCreated(
        {
          id: `sub_bench${i}`,
          customer: `cus_bench${i}`,
          priceId: 'price_benchGold',
          productId: 'prod_benchGold',
          status: 'active',
          periodStart: now - 86_400,
          periodEnd: now + 29 * 86_400,
          metadata: { gatehouse_member_id: member },
        },
        { account, created: now },
      );
      const signed = kit.signPayload(e, config.stripeWebhookSecrets[0], now);
      const res = await fetch(`${gatehouse.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signed.header },
        body: signed.rawBody,
      });
      if (res.status !== 200) throw new Error(`webhook refused: ${res.status}`);
    }
    const probe = `query { canAccess(communityId: "${c}", memberId: "member-${memberCount - 1}", resource: { kind: COMMUNITY }) { allowed } }`;
    for (let tries = 0; ; tries++) {
      if ((await gql(probe)).canAccess.allowed) break;
      if (tries > 600) throw new Error('the projection did not catch up');
      await new Promise((r) => setTimeout(r, 100));
    }

    const gatehouseBody = JSON.stringify({
      query: `query($m: ID!) { canAccess(communityId: "${c}", memberId: $m, resource: { kind: COMMUNITY }) { allowed } }`,
      variables: { m: 'member-7' },
    });
    const bareBody = JSON.stringify({
      query: 'query($m: String!) { allowed(memberId: $m) }',
      variables: { m: 'member-7' },
    });
    const results: { bare: LoadResult[]; gatehouse: LoadResult[] } = { bare: [], gatehouse: [] };
    // Warm both paths, then alternate so drift in machine load hits both alike.
    await loadTest({ url: bare.url, body: bareBody, connections: 32, seconds: 2 });
    await loadTest({
      url: `${gatehouse.url}/graphql`,
      body: gatehouseBody,
      headers: { authorization: `Bearer ${admin}` },
      connections: 32,
      seconds: 2,
    });
    for (let r = 0; r < runs; r++) {
      results.bare.push(await loadTest({ url: bare.url, body: bareBody, connections: 32, seconds }));
      results.gatehouse.push(
        await loadTest({
          url: `${gatehouse.url}/graphql`,
          body: gatehouseBody,
          headers: { authorization: `Bearer ${admin}` },
          connections: 32,
          seconds,
        }),
      );
      log(
        `run ${r + 1}: bare ${results.bare[r].requestsPerSecond.toFixed(0)} req/s p99 ${results.bare[r].p99Ms} ms; canAccess ${results.gatehouse[r].requestsPerSecond.toFixed(0)} req/s p99 ${results.gatehouse[r].p99Ms} ms`,
      );
    }
    const errors = [...results.bare, ...results.gatehouse].reduce((n, x) => n + x.errors + x.non2xx, 0);
    const bareRps = median(results.bare.map((x) => x.requestsPerSecond));
    const ghRps = median(results.gatehouse.map((x) => x.requestsPerSecond));
    const bareP99 = median(results.bare.map((x) => x.p99Ms));
    const ghP99 = median(results.gatehouse.map((x) => x.p99Ms));
    log(`canAccess over HTTP, concurrency 32, median of ${runs} × ${seconds}s:`);
    log(`  bare Apollo + type-graphql from memory: ${bareRps.toFixed(0)} req/s, p99 ${bareP99} ms`);
    log(`  Gatehouse canAccess:                    ${ghRps.toFixed(0)} req/s, p99 ${ghP99} ms`);
    log(
      `  ratio ${(ghRps / bareRps).toFixed(2)}× (goal ≥ 0.9×), p99 difference ${(ghP99 - bareP99).toFixed(1)} ms (goal ≤ 2 ms)${errors ? `, ${errors} errors` : ''}`,
    );
    return { bareRps, ghRps, bareP99, ghP99, ratio: ghRps / bareRps, errors };
  } finally {
    await bare.close();
    await gatehouse.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

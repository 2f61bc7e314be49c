import { createHmac } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { Client } from 'pg';
import { startCliProcess } from './cli-process';

// Talking to a started Gatehouse as Stripe and as an admin would: signed webhook POSTs, GraphQL,
// the CLI as a child process, and a direct look at the database behind it.

export type LedgerEventNode = {
  id: string;
  position: string;
  type: string;
  communityId: string;
  subject: string | null;
  source: string;
  occurredAt: string;
  data: { id?: string; api_version?: string; type?: string; [k: string]: unknown };
};

/** Stripe's v1 signature: hex HMAC-SHA256 of `${t}.${body}` keyed by the whole `whsec_…` string. */
export function stripeV1(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

export const unixNow = () => Math.floor(Date.now() / 1000);

export async function postWebhook(
  baseUrl: string,
  body: string | Buffer,
  signature: string | undefined,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(signature !== undefined && { 'stripe-signature': signature }),
    },
    body,
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

export function adminToken(jwtSecret: string): string {
  return jwt.sign({ roles: ['platform-admin'] }, jwtSecret, {
    algorithm: 'HS256',
    subject: 'root',
    expiresIn: '2h',
  });
}

type GqlAnswer = { data?: Record<string, unknown>; errors?: { message: string }[] };

export function graphqlClient(baseUrl: string, token: string) {
  async function request(
    query: string,
    variables: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const res = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const answer = (await res.json()) as GqlAnswer;
    if (answer.errors?.length) throw new Error(`GraphQL: ${JSON.stringify(answer.errors)}`);
    return answer.data ?? {};
  }
  return {
    request,
    async createCommunity(name: string, stripeAccountId?: string): Promise<string> {
      const d = await request(
        'mutation($input: CreateCommunityInput!) { createCommunity(input: $input) { id } }',
        { input: { name, region: 'EU', ...(stripeAccountId && { stripeAccountId }) } },
      );
      return (d.createCommunity as { id: string }).id;
    },
    /** Every event of a community from `ledgerEvents` (all pages). */
    async ledgerEvents(communityId: string, types?: string[]): Promise<LedgerEventNode[]> {
      const out: LedgerEventNode[] = [];
      let after: string | null = null;
      for (;;) {
        const d = await request(
          `query($c: ID!, $after: String, $types: [String!]) {
             ledgerEvents(communityId: $c, after: $after, first: 100, types: $types) {
               edges { cursor node { id position type communityId subject source occurredAt data } }
               pageInfo { hasNextPage endCursor }
             }
           }`,
          { c: communityId, after, types: types ?? null },
        );
        const page = d.ledgerEvents as {
          edges: { node: LedgerEventNode }[];
          pageInfo: { hasNextPage: boolean; endCursor: string | null };
        };
        out.push(...page.edges.map((e) => e.node));
        if (!page.pageInfo.hasNextPage) return out;
        after = page.pageInfo.endCursor;
      }
    },
  };
}

/** How many times the PostgreSQL ledger at `dbUrl` holds the event `id` (0 or 1). */
export function ledgerRowsFor(dbUrl: string, id: string): Promise<number> {
  return withDatabase(dbUrl, async (c) => {
    const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_log WHERE id = $1`, [
      id,
    ]);
    return rows[0].n;
  });
}

export async function withDatabase<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Takes a database away from everyone (superusers included: a connection limit would not stop them)
 * and drops the sessions it has; `restore()` lets clients connect again.
 */
export async function takeDatabaseDown(
  adminUrl: string,
  name: string,
): Promise<{ restore(): Promise<void> }> {
  await withDatabase(adminUrl, async (c) => {
    await c.query(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS false`);
    await c.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
  });
  return {
    restore: () =>
      withDatabase(
        adminUrl,
        async (c) => void (await c.query(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS true`)),
      ),
  };
}

export type CliResult = { code: number | null; stdout: string; stderr: string };

/** Runs the built `gatehouse` CLI with exactly these environment variables. */
export function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
): Promise<CliResult> {
  const cli = startCliProcess(args, env);
  const timer = setTimeout(() => cli.kill('SIGKILL'), timeoutMs);
  return cli.exited.then((code) => {
    clearTimeout(timer);
    return { code, stdout: cli.stdout(), stderr: cli.stderr() };
  });
}

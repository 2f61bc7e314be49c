// How commands reach a running Gatehouse server: its address, whether it answers, and GraphQL calls.

// GraphQL answers are read field by field by the commands.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Gql = <T = Record<string, any>>(query: string, variables?: Record<string, unknown>) => Promise<T>;

/** `--url`, else the local server on PORT. */
export function serverUrl(given: string | undefined, port: number): string {
  return (given ?? `http://localhost:${port || 4000}`).replace(/\/$/, '');
}

/** Does a server answer `/healthz` at this address? */
export async function serverAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3_000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** A GraphQL error answer, with the codes the server gave. */
export class GraphQLCallError extends Error {
  constructor(
    readonly status: number,
    readonly codes: string[],
    messages: string,
  ) {
    super(`GraphQL (HTTP ${status}): ${messages}`);
  }
}

/** Calls the server's GraphQL API with a bearer token; answers `data`, throws on any error. */
export function graphqlClient(url: string, token: string): Gql {
  return async (query, variables = {}) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json().catch(() => ({}))) as {
      data?: unknown;
      errors?: { message: string; extensions?: { code?: string } }[];
    };
    if (body.errors?.length || !body.data) {
      const errors = body.errors ?? [];
      throw new GraphQLCallError(
        res.status,
        errors.map((e) => e.extensions?.code ?? 'ERROR'),
        errors.map((e) => e.message).join('; ') || 'no data',
      );
    }
    return body.data as never;
  };
}

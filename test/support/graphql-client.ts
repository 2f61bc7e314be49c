import jwt from 'jsonwebtoken';

// A small GraphQL-over-HTTP client for the e2e suites: every answer keeps its HTTP status and raw text.

export type GqlError = { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> };
// Answers are asserted field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type GqlData = Record<string, any>;
export type GqlResponse = { status: number; text: string; data?: GqlData | null; errors?: GqlError[] };

export type Caller = { sub: string; roles: string[] };

export function bearer(
  secret: string,
  caller: Caller,
  expiresIn: jwt.SignOptions['expiresIn'] = '1h',
): string {
  return jwt.sign({ roles: caller.roles }, secret, { algorithm: 'HS256', subject: caller.sub, expiresIn });
}

export function graphqlClient(baseUrl: string) {
  return async function gql(
    query: string,
    variables: Record<string, unknown> = {},
    token: string | null = null,
    headers: Record<string, string> = {},
  ): Promise<GqlResponse> {
    const res = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token && { authorization: `Bearer ${token}` }),
        ...headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    const text = await res.text();
    let parsed: { data?: GqlData | null; errors?: GqlError[] } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // not JSON: the caller asserts on status and text
    }
    return { status: res.status, text, data: parsed.data, errors: parsed.errors };
  };
}

export type Gql = ReturnType<typeof graphqlClient>;

/** The data of a successful answer, or a thrown error with the GraphQL errors. */
export async function okData(
  gql: Gql,
  query: string,
  variables: Record<string, unknown>,
  token: string | null,
): Promise<GqlData> {
  const r = await gql(query, variables, token);
  if (r.errors?.length || !r.data) throw new Error(`GraphQL call failed (${r.status}): ${r.text}`);
  return r.data;
}

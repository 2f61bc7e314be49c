import { stripeTestKit as kit } from '@gatehouse/stripe';

// The two calls every end-to-end suite makes against the started server.

// GraphQL answers are asserted field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = Record<string, any>;

/** A GraphQL call that answers `data`, and fails the test on any error. */
export function graphqlAs(baseUrl: () => string, defaultToken: string) {
  return async (
    query: string,
    variables: Record<string, unknown> = {},
    token = defaultToken,
  ): Promise<Loose> => {
    const res = await fetch(`${baseUrl()}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: Loose; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };
}

/** Posts a Stripe event signed now with `secret`, as Stripe delivers it; expects 200. */
export function stripeSender(baseUrl: () => string, secret: string) {
  return async (event: Loose): Promise<void> => {
    const signed = kit.signPayload(event as never, secret, Math.floor(Date.now() / 1000));
    const res = await fetch(`${baseUrl()}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': signed.header },
      body: signed.rawBody,
    });
    expect(res.status).toBe(200);
  };
}

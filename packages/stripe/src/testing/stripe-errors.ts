import Stripe from 'stripe';

/**
 * What the SDK throws for a request Stripe refused for its rate (HTTP 429, code `rate_limit`), for a
 * unit test's stand-in request to throw; the fake Stripe API answers such refusals over HTTP itself.
 */
export function rateLimitedError(): Stripe.errors.StripeRateLimitError {
  return new Stripe.errors.StripeRateLimitError({
    statusCode: 429,
    type: 'invalid_request_error',
    code: 'rate_limit',
    message: 'Request rate limit exceeded.',
  });
}

export type StripeErrorCode =
  | 'STRIPE_SIGNATURE_MISSING'
  | 'STRIPE_SIGNATURE_MALFORMED'
  | 'STRIPE_SIGNATURE_MISMATCH'
  | 'STRIPE_SIGNATURE_TIMESTAMP_STALE'
  | 'STRIPE_SIGNATURE_TIMESTAMP_FUTURE'
  | 'STRIPE_NOT_AN_EVENT'
  | 'STRIPE_WEBHOOK_CONFIG_INVALID';

/** Base of every error this package reports on purpose; `code` is stable. */
export class StripeIntegrationError extends Error {
  constructor(
    readonly code: StripeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A delivery that must be refused (400) with nothing written: its signature, timestamp or body is wrong. */
export class StripeWebhookRejectedError extends StripeIntegrationError {}

export class StripeSignatureMissingError extends StripeWebhookRejectedError {
  constructor() {
    super('STRIPE_SIGNATURE_MISSING', 'No Stripe-Signature header');
  }
}

export class StripeSignatureMalformedError extends StripeWebhookRejectedError {
  constructor(detail: string) {
    super('STRIPE_SIGNATURE_MALFORMED', `Malformed Stripe-Signature header: ${detail}`);
  }
}

export class StripeSignatureMismatchError extends StripeWebhookRejectedError {
  constructor() {
    super('STRIPE_SIGNATURE_MISMATCH', 'No v1 signature matches the payload for any configured secret');
  }
}

export class StripeTimestampStaleError extends StripeWebhookRejectedError {
  constructor(
    readonly ageSeconds: number,
    readonly toleranceSeconds: number,
  ) {
    super(
      'STRIPE_SIGNATURE_TIMESTAMP_STALE',
      `Signature timestamp is ${ageSeconds} s old; tolerance is ${toleranceSeconds} s`,
    );
  }
}

export class StripeTimestampFutureError extends StripeWebhookRejectedError {
  constructor(
    readonly aheadSeconds: number,
    readonly toleranceSeconds: number,
  ) {
    super(
      'STRIPE_SIGNATURE_TIMESTAMP_FUTURE',
      `Signature timestamp is ${aheadSeconds} s in the future; tolerance is ${toleranceSeconds} s`,
    );
  }
}

export class StripeNotAnEventError extends StripeWebhookRejectedError {
  constructor(detail: string) {
    super('STRIPE_NOT_AN_EVENT', `The body is not a Stripe event: ${detail}`);
  }
}

/** Refused at construction: a webhook verifier without secrets or with a tolerance that disables the check. */
export class StripeWebhookConfigError extends StripeIntegrationError {
  constructor(detail: string) {
    super('STRIPE_WEBHOOK_CONFIG_INVALID', detail);
  }
}

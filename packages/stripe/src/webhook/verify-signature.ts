import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  StripeSignatureMalformedError,
  StripeSignatureMismatchError,
  StripeSignatureMissingError,
  StripeTimestampFutureError,
  StripeTimestampStaleError,
  StripeWebhookConfigError,
} from '../stripe.errors';

/** Stripe's own default: a signed delivery older than five minutes is refused. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export type SignatureVerifierOptions = {
  /** Every `whsec_…` secret currently accepted (two while a secret is rolled). */
  secrets: readonly string[];
  toleranceSeconds?: number;
};

export type VerifySignatureInput = SignatureVerifierOptions & {
  rawBody: Buffer;
  header: string | undefined;
  now: Date;
};

export type VerifiedSignature = { timestamp: number };

export type ParsedSignatureHeader = { timestamp: number; v1: string[] };

/** Splits `t=…,v1=…[,v1=…]`; other schemes (`v0`, future ones) are ignored, as Stripe does. */
export function parseSignatureHeader(header: string | undefined): ParsedSignatureHeader {
  if (header === undefined || header.trim() === '') throw new StripeSignatureMissingError();
  let timestamp: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (!/^\d{1,12}$/.test(value)) throw new StripeSignatureMalformedError('t is not a unix timestamp');
      timestamp = Number(value);
    } else if (key === 'v1' && value !== '') {
      v1.push(value);
    }
  }
  if (timestamp === undefined) throw new StripeSignatureMalformedError('no t=');
  if (v1.length === 0) throw new StripeSignatureMalformedError('no v1=');
  return { timestamp, v1 };
}

/** Lowercase hex HMAC-SHA256 of `${t}.${raw}`, keyed by the whole secret string, `whsec_` included. */
export function computeSignature(rawBody: Buffer, timestamp: number, secret: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(rawBody).digest('hex');
}

function sameSignature(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  // timingSafeEqual throws on unequal lengths; a length difference reveals nothing secret.
  return a.length === b.length && timingSafeEqual(a, b);
}

export function assertVerifierOptions(options: SignatureVerifierOptions): Required<SignatureVerifierOptions> {
  const secrets = options.secrets.map((s) => s.trim()).filter((s) => s !== '');
  if (secrets.length === 0) throw new StripeWebhookConfigError('At least one webhook secret is required');
  const toleranceSeconds = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  // Stripe's SDK treats a tolerance of 0 as "do not check": that would accept replays forever.
  if (!Number.isFinite(toleranceSeconds) || toleranceSeconds <= 0) {
    throw new StripeWebhookConfigError(`toleranceSeconds must be a positive number, got ${toleranceSeconds}`);
  }
  return { secrets, toleranceSeconds };
}

/**
 * Checks a delivery's signature over the raw bytes, then its timestamp against `now`. Accepts when
 * any `v1` matches any secret. Throws a `StripeWebhookRejectedError` subclass otherwise.
 */
export function verifyStripeSignature(input: VerifySignatureInput): VerifiedSignature {
  const { secrets, toleranceSeconds } = assertVerifierOptions(input);
  const { timestamp, v1 } = parseSignatureHeader(input.header);
  let matched = false;
  for (const secret of secrets) {
    const expected = computeSignature(input.rawBody, timestamp, secret);
    // Every candidate is compared: the loop's length does not depend on which one matches.
    for (const given of v1) if (sameSignature(expected, given)) matched = true;
  }
  if (!matched) throw new StripeSignatureMismatchError();
  const nowSeconds = Math.floor(input.now.getTime() / 1000);
  const age = nowSeconds - timestamp;
  if (age > toleranceSeconds) throw new StripeTimestampStaleError(age, toleranceSeconds);
  if (-age > toleranceSeconds) throw new StripeTimestampFutureError(-age, toleranceSeconds);
  return { timestamp };
}

export type SignatureVerifier = (rawBody: Buffer, header: string | undefined, now: Date) => VerifiedSignature;

/** A verifier with its secrets and tolerance checked once, at construction. */
export function createSignatureVerifier(options: SignatureVerifierOptions): SignatureVerifier {
  const checked = assertVerifierOptions(options);
  return (rawBody, header, now) => verifyStripeSignature({ ...checked, rawBody, header, now });
}

import Stripe from 'stripe';
import {
  StripeSignatureMalformedError,
  StripeSignatureMismatchError,
  StripeSignatureMissingError,
  StripeTimestampFutureError,
  StripeTimestampStaleError,
  StripeWebhookConfigError,
} from '../stripe.errors';
import { checkoutSessionCompleted } from '../testing/stripe-events';
import { computeSignature, createSignatureVerifier, verifyStripeSignature } from './verify-signature';

const SECRET = 'whsec_test_primary_0123456789abcdef';
const ROLLED = 'whsec_test_rolled_fedcba9876543210';
const T = 1_767_225_600;
const now = (offsetSeconds = 0) => new Date((T + offsetSeconds) * 1000);
const sdk = new Stripe('sk_test_x');

const payload = JSON.stringify(checkoutSessionCompleted({}, { created: T }), null, 2);
const raw = Buffer.from(payload, 'utf8');
const header = (opts: { secret?: string; timestamp?: number; payload?: string } = {}) =>
  sdk.webhooks.generateTestHeaderString({
    payload: opts.payload ?? payload,
    secret: opts.secret ?? SECRET,
    timestamp: opts.timestamp ?? T,
  });
const verify = createSignatureVerifier({ secrets: [SECRET] });

describe('verifyStripeSignature', () => {
  it("accepts a header made by Stripe's own SDK for the raw bytes", () => {
    expect(verify(raw, header(), now())).toEqual({ timestamp: T });
  });

  it("signs exactly as Stripe's SDK does: hex HMAC-SHA256 of `${t}.${raw}` keyed by the whole whsec_ secret", () => {
    expect(header()).toBe(`t=${T},v1=${computeSignature(raw, T, SECRET)}`);
  });

  it('refuses a missing or empty header as missing', () => {
    expect(() => verify(raw, undefined, now())).toThrow(StripeSignatureMissingError);
    expect(() => verify(raw, '  ', now())).toThrow(StripeSignatureMissingError);
  });

  it('refuses a header without t= or without v1= as malformed', () => {
    const v1 = computeSignature(raw, T, SECRET);
    expect(() => verify(raw, `v1=${v1}`, now())).toThrow(StripeSignatureMalformedError);
    expect(() => verify(raw, `t=${T}`, now())).toThrow(StripeSignatureMalformedError);
    expect(() => verify(raw, `t=${T},v0=${v1}`, now())).toThrow(StripeSignatureMalformedError);
    expect(() => verify(raw, `t=soon,v1=${v1}`, now())).toThrow(StripeSignatureMalformedError);
  });

  it('refuses a signature made with another secret', () => {
    expect(() => verify(raw, header({ secret: 'whsec_someone_else' }), now())).toThrow(
      StripeSignatureMismatchError,
    );
  });

  it('refuses a tampered body', () => {
    const tampered = Buffer.from(payload.replace('"paid"', '"unpaid"'), 'utf8');
    expect(() => verify(tampered, header(), now())).toThrow(StripeSignatureMismatchError);
  });

  it('refuses a re-serialised body (same JSON, different bytes)', () => {
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(payload)), 'utf8');
    expect(reserialised.equals(raw)).toBe(false);
    expect(() => verify(reserialised, header(), now())).toThrow(StripeSignatureMismatchError);
  });

  it('refuses a signature of the right length but wrong content, and one of the wrong length', () => {
    expect(() => verify(raw, `t=${T},v1=${'0'.repeat(64)}`, now())).toThrow(StripeSignatureMismatchError);
    expect(() => verify(raw, `t=${T},v1=abc`, now())).toThrow(StripeSignatureMismatchError);
  });

  it('accepts a timestamp 299 s old and refuses one 301 s old', () => {
    expect(verify(raw, header({ timestamp: T - 299 }), now())).toEqual({ timestamp: T - 299 });
    expect(() => verify(raw, header({ timestamp: T - 301 }), now())).toThrow(StripeTimestampStaleError);
  });

  it('refuses a timestamp more than the tolerance in the future', () => {
    expect(verify(raw, header({ timestamp: T + 300 }), now())).toEqual({ timestamp: T + 300 });
    expect(() => verify(raw, header({ timestamp: T + 301 }), now())).toThrow(StripeTimestampFutureError);
    expect(() => verify(raw, header({ timestamp: T + 86_400 * 365 }), now())).toThrow(
      StripeTimestampFutureError,
    );
  });

  it('checks the signature before the timestamp: an old forged header is a mismatch', () => {
    expect(() => verify(raw, header({ secret: 'whsec_forged', timestamp: T - 10_000 }), now())).toThrow(
      StripeSignatureMismatchError,
    );
  });

  it('accepts when any of two v1 signatures matches (the other may be from a rolled secret)', () => {
    const good = computeSignature(raw, T, SECRET);
    const other = computeSignature(raw, T, 'whsec_old_one');
    expect(verify(raw, `t=${T},v1=${other},v1=${good}`, now())).toEqual({ timestamp: T });
    expect(verify(raw, `t=${T},v1=${good},v1=${other}`, now())).toEqual({ timestamp: T });
    expect(() => verify(raw, `t=${T},v1=${other},v1=${other}`, now())).toThrow(StripeSignatureMismatchError);
  });

  it('accepts a signature made with any of several configured secrets', () => {
    const both = createSignatureVerifier({ secrets: [SECRET, ROLLED] });
    expect(both(raw, header({ secret: SECRET }), now())).toEqual({ timestamp: T });
    expect(both(raw, header({ secret: ROLLED }), now())).toEqual({ timestamp: T });
    expect(() => both(raw, header({ secret: 'whsec_third' }), now())).toThrow(StripeSignatureMismatchError);
  });

  it('uses the given tolerance', () => {
    const strict = createSignatureVerifier({ secrets: [SECRET], toleranceSeconds: 10 });
    expect(() => strict(raw, header({ timestamp: T - 11 }), now())).toThrow(StripeTimestampStaleError);
  });

  it('refuses, at construction, a tolerance of zero or less (it would turn the replay check off) and no secrets', () => {
    expect(() => createSignatureVerifier({ secrets: [SECRET], toleranceSeconds: 0 })).toThrow(
      StripeWebhookConfigError,
    );
    expect(() => createSignatureVerifier({ secrets: [SECRET], toleranceSeconds: -5 })).toThrow(
      StripeWebhookConfigError,
    );
    expect(() => createSignatureVerifier({ secrets: [SECRET], toleranceSeconds: Number.NaN })).toThrow(
      StripeWebhookConfigError,
    );
    expect(() => createSignatureVerifier({ secrets: [] })).toThrow(StripeWebhookConfigError);
    expect(() => createSignatureVerifier({ secrets: [' '] })).toThrow(StripeWebhookConfigError);
    expect(() =>
      verifyStripeSignature({
        secrets: [SECRET],
        toleranceSeconds: 0,
        rawBody: raw,
        header: header(),
        now: now(),
      }),
    ).toThrow(StripeWebhookConfigError);
  });

  it("agrees with Stripe's SDK on what it accepts", () => {
    const h = header();
    expect(() => sdk.webhooks.constructEvent(raw, h, SECRET, 300, undefined, T * 1000)).not.toThrow();
    expect(() => verify(raw, h, now())).not.toThrow();
  });
});

import { randomBytes } from 'node:crypto';

/** The kit's fixed clock: 2026-01-01T00:00:00Z, in Stripe's unix seconds. */
export const FIXED_NOW = Date.UTC(2026, 0, 1) / 1000;
export const DAY = 86_400;
export const MONTH = 30 * DAY;

// Base 62 in ASCII order, so that byte-wise order is numeric order.
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Stripe's ids open with `1` and the second they were made in, counted from this instant (mid-July
 * 2012) as five base-62 digits: `evt_1SBiOd…` was created at 1758919058. Ids made later sort later,
 * and a database index over them grows at its end, as it does for Stripe's own ids.
 */
export const STRIPE_ID_EPOCH = 1_342_389_380;

function randomAlphanumerics(n: number): string {
  const bytes = randomBytes(n);
  let out = '';
  for (const b of bytes) out += BASE62[b % 62];
  return out;
}

/** Ten characters Stripe ids share per account: this process's ids all come from one "account". */
const ACCOUNT_TAG = randomAlphanumerics(10);

function base62(value: number, digits: number): string {
  let out = '';
  let rest = Math.max(0, Math.floor(value));
  for (let i = 0; i < digits; i++) {
    out = BASE62[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

/**
 * A Stripe-shaped id: `prefix_`, then 24 alphanumerics as Stripe writes them: `1`, the creation
 * second (`at`, unix seconds; now by default), an account tag and 8 random characters
 * (`sub_1SAGUABe0ycHroRBHH0HMWOy`). Gatehouse never reads anything into an id; the shape matters to
 * the database, whose unique indexes see Stripe's ids arrive in time order.
 */
export function stripeId(prefix: string, at: number = Date.now() / 1000): string {
  return `${prefix}_1${base62(at - STRIPE_ID_EPOCH, 5)}${ACCOUNT_TAG}${randomAlphanumerics(8)}`;
}

/** When a Stripe-shaped id was made (unix seconds), read from its time digits. */
export function stripeIdTime(id: string): number | null {
  const m = /_1([0-9A-Za-z]{5})[0-9A-Za-z]{18}$/.exec(id);
  if (!m) return null;
  let value = 0;
  for (const c of m[1]) value = value * 62 + BASE62.indexOf(c);
  return value + STRIPE_ID_EPOCH;
}

/** Random alphanumerics for codes and request ids, which carry no time. */
export function randomCode(length: number): string {
  return randomAlphanumerics(length);
}

import { randomBytes } from 'node:crypto';

/** The kit's fixed clock: 2026-01-01T00:00:00Z, in Stripe's unix seconds. */
export const FIXED_NOW = Date.UTC(2026, 0, 1) / 1000;
export const DAY = 86_400;
export const MONTH = 30 * DAY;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A Stripe-shaped id: `prefix_` and 24 random alphanumerics (e.g. `sub_1T…`). */
export function stripeId(prefix: string): string {
  const bytes = randomBytes(24);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return `${prefix}_${out}`;
}

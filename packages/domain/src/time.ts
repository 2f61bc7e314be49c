import { BadUserInputError } from './errors';

/**
 * Inside `domain` every instant is a number of milliseconds since the Unix epoch, UTC.
 * Stripe's epoch seconds are converted at the edge (`fromStripeSeconds`), GraphQL's ISO strings
 * with `parseInstantOrThrow` / `toIso`.
 */
export type EpochMs = number;

export const SECOND_MS = 1000;
export const HOUR_MS = 3600 * SECOND_MS;
export const DAY_MS = 24 * HOUR_MS;

export function fromStripeSeconds(seconds: number): EpochMs {
  return seconds * SECOND_MS;
}

export function toStripeSeconds(at: EpochMs): number {
  return Math.floor(at / SECOND_MS);
}

export function toIso(at: EpochMs): string {
  return new Date(at).toISOString();
}

/** Parses an ISO-8601 string that carries an offset (`Z` or `±hh:mm`); a bare local time is ambiguous. */
export function parseInstantOrThrow(iso: string, field = 'at'): EpochMs {
  const withOffset = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;
  const ms = withOffset.test(iso) ? Date.parse(iso) : NaN;
  if (Number.isNaN(ms)) {
    throw new BadUserInputError(`${field} must be an ISO-8601 date-time with an offset`, {
      [field]: 'must be an ISO-8601 date-time with an offset',
    });
  }
  return ms;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `15 Jan 2026`: the day format Stripe uses in proration line descriptions (UTC here). */
export function formatDay(at: EpochMs): string {
  const d = new Date(at);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

export type IntervalUnit = 'day' | 'week' | 'month' | 'year';

/** Adds whole billing intervals in UTC; a month end clamps (31 Jan + 1 month = 28/29 Feb), as Stripe does. */
export function addInterval(at: EpochMs, unit: IntervalUnit, count: number): EpochMs {
  if (unit === 'day') return at + count * DAY_MS;
  if (unit === 'week') return at + count * 7 * DAY_MS;
  const d = new Date(at);
  const months = unit === 'year' ? 12 * count : count;
  const target = d.getUTCMonth() + months;
  const year = d.getUTCFullYear() + Math.floor(target / 12);
  const month = ((target % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Date.UTC(
    year,
    month,
    Math.min(d.getUTCDate(), lastDay),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  );
}

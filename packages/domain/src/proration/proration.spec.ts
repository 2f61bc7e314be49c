import { BadUserInputError } from '../errors';
import { DAY_MS, HOUR_MS } from '../time';
import {
  previewProration,
  prorate,
  tierChangeTiming,
  type PlanSide,
  type ProrationRequest,
} from './proration';

const START = Date.UTC(2026, 0, 1);
const monthly = (amount: number, name: string, quantity = 1): PlanSide => ({
  amount,
  quantity,
  interval: 'month',
  intervalCount: 1,
  name,
});
const request = (o: Partial<ProrationRequest> = {}): ProrationRequest => ({
  from: monthly(1000, 'Basic'),
  to: monthly(2000, 'Gold'),
  currency: 'USD',
  periodStart: START,
  periodEnd: START + 30 * DAY_MS,
  prorationDate: START + 15 * DAY_MS,
  behavior: 'create_prorations',
  ...o,
});
// 31-day period, change 7 d 3 h 17 min 29 s in: 2 061 751 of 2 678 400 seconds remain.
const odd = {
  periodEnd: START + 31 * DAY_MS,
  prorationDate: START + 7 * DAY_MS + 3 * HOUR_MS + 17 * 60_000 + 29_000,
};

describe('previewProration', () => {
  it('credits half the old price and charges half the new one halfway through a 30-day period', () => {
    const p = previewProration(request());
    expect(p.lines.map((l) => [l.description, l.amount])).toEqual([
      ['Unused time on Basic after 16 Jan 2026', -500],
      ['Remaining time on Gold after 16 Jan 2026', 1000],
    ]);
    expect(p).toMatchObject({
      credit: -500,
      charge: 1000,
      net: 500,
      dueNow: 0,
      currency: 'usd',
      intervalChange: false,
    });
  });

  it('rounds each line on its own, so the net can differ from rounding the difference', () => {
    // 1500 × 0.76977 = 1154.65 → 1155; 2500 × 0.76977 = 1924.42 → 1924; the difference alone would round to 770.
    const p = previewProration(request({ ...odd, from: monthly(1500, 'Basic'), to: monthly(2500, 'Gold') }));
    expect([p.credit, p.charge, p.net]).toEqual([-1155, 1924, 769]);
  });

  it('multiplies by the quantity before rounding', () => {
    // 3 × 1000 × 0.76977 = 2309.31 → 2309; 3 × 2500 × 0.76977 = 5773.27 → 5773.
    const p = previewProration(
      request({ ...odd, from: monthly(1000, 'Seat', 3), to: monthly(2500, 'Pro seat', 3) }),
    );
    expect(p.lines.map((l) => [l.description, l.amount])).toEqual([
      ['Unused time on 3 × Seat after 8 Jan 2026', -2309],
      ['Remaining time on 3 × Pro seat after 8 Jan 2026', 5773],
    ]);
  });

  it('charges the net at once with always_invoice', () =>
    expect(previewProration(request({ behavior: 'always_invoice' })).dueNow).toBe(500));

  it('never charges a negative net: a downgrade leaves credit balance', () => {
    const p = previewProration(
      request({ behavior: 'always_invoice', from: monthly(2000, 'Gold'), to: monthly(1000, 'Basic') }),
    );
    expect([p.net, p.dueNow]).toEqual([-500, 0]);
  });

  it('creates no lines with proration behavior none', () =>
    expect(previewProration(request({ behavior: 'none' }))).toMatchObject({ lines: [], net: 0, dueNow: 0 }));

  it('on a change to annual credits unused time, charges the full new price now and restarts the cycle', () => {
    const annual: PlanSide = {
      amount: 10000,
      quantity: 1,
      interval: 'year',
      intervalCount: 1,
      name: 'Gold annual',
    };
    const p = previewProration(request({ to: annual }));
    expect(p.lines.map((l) => [l.amount, l.proration])).toEqual([
      [-500, true],
      [10000, false],
    ]);
    expect(p).toMatchObject({ net: 9500, dueNow: 9500, intervalChange: true });
    expect(p.nextPeriod).toEqual({ start: START + 15 * DAY_MS, end: Date.UTC(2027, 0, 16) });
  });

  it('refuses a proration date outside the current period', () =>
    expect(() => previewProration(request({ prorationDate: START + 31 * DAY_MS }))).toThrow(
      BadUserInputError,
    ));

  it('refuses a zero quantity', () =>
    expect(() => previewProration(request({ to: monthly(2000, 'Gold', 0) }))).toThrow(BadUserInputError));
});

describe('prorate', () => {
  it('rounds halves away from zero', () => {
    expect(prorate(1, 1, 1, 2)).toBe(1);
    expect(prorate(-1, 1, 1, 2)).toBe(-1);
    expect(prorate(3, 1, 1, 2)).toBe(2);
  });

  it('stays exact when the intermediate product passes 2^53', () =>
    // 999 999 990 000 × (1 − 1/31 536 000) = 999 999 958 290.21
    expect(prorate(99_999_999, 10_000, 31_536_000 - 1, 31_536_000)).toBe(999_999_958_290));
});

describe('tierChangeTiming', () => {
  it('upgrades at once and downgrades at the period end by default', () => {
    expect(tierChangeTiming(1, 2)).toBe('IMMEDIATE');
    expect(tierChangeTiming(2, 1)).toBe('PERIOD_END');
  });

  it('changes within a rank at once', () => expect(tierChangeTiming(2, 2)).toBe('IMMEDIATE'));

  it('follows a community policy', () =>
    expect(tierChangeTiming(2, 1, { upgrade: 'IMMEDIATE', downgrade: 'IMMEDIATE' })).toBe('IMMEDIATE'));
});

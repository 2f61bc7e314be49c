import fc from 'fast-check';
import { SECOND_MS } from '../time';
import { previewProration, prorationFraction, type PlanSide, type ProrationRequest } from './proration';

const START = Date.UTC(2026, 0, 1);
const side = (interval: 'month' | 'year') =>
  fc.record({
    amount: fc.integer({ min: 0, max: 10_000_000 }),
    quantity: fc.integer({ min: 1, max: 500 }),
    interval: fc.constant(interval),
    intervalCount: fc.constant(1),
    name: fc.constant(interval === 'month' ? 'Monthly' : 'Annual'),
  }) as fc.Arbitrary<PlanSide>;

const samePeriodChange = fc
  .record({
    from: side('month'),
    to: side('month'),
    periodSeconds: fc.integer({ min: 1, max: 400 * 86_400 }),
    elapsed: fc.double({ min: 0, max: 1, noNaN: true }),
    behavior: fc.constantFrom('create_prorations' as const, 'always_invoice' as const),
  })
  .map(({ periodSeconds, elapsed, ...r }): ProrationRequest => {
    const periodEnd = START + periodSeconds * SECOND_MS;
    const prorationDate = START + Math.floor(elapsed * periodSeconds) * SECOND_MS;
    return { ...r, currency: 'usd', periodStart: START, periodEnd, prorationDate };
  });

describe('proration properties', () => {
  it('keeps the fraction of the period in [0, 1]', () =>
    fc.assert(
      fc.property(samePeriodChange, (r) => {
        const f = prorationFraction(r.periodStart, r.periodEnd, r.prorationDate);
        expect(f).toBeGreaterThanOrEqual(0);
        expect(f).toBeLessThanOrEqual(1);
      }),
    ));

  it('never credits more than the old price nor charges more than the new one', () =>
    fc.assert(
      fc.property(samePeriodChange, (r) => {
        const p = previewProration(r);
        expect(-p.credit).toBeLessThanOrEqual(r.from.amount * r.from.quantity);
        expect(p.charge).toBeLessThanOrEqual(r.to.amount * r.to.quantity);
      }),
    ));

  it('signs credits negative and charges positive, and dueNow is never negative', () =>
    fc.assert(
      fc.property(samePeriodChange, (r) => {
        const p = previewProration(r);
        expect(p.credit).toBeLessThanOrEqual(0);
        expect(p.charge).toBeGreaterThanOrEqual(0);
        expect(p.net).toBe(p.credit + p.charge);
        expect(p.dueNow).toBeGreaterThanOrEqual(0);
      }),
    ));

  it('nets an upgrade and its reverse at the same instant to zero', () =>
    fc.assert(
      fc.property(samePeriodChange, (r) => {
        const up = previewProration(r);
        const down = previewProration({ ...r, from: r.to, to: r.from });
        // Each line is rounded on its own and symmetrically, so reversing swaps the same two amounts: exact 0.
        expect(up.net + down.net).toBe(0);
      }),
    ));

  it('charges the full new price on a change to annual, less at most the old price', () =>
    fc.assert(
      fc.property(samePeriodChange, side('year'), (r, annual) => {
        const p = previewProration({ ...r, to: annual });
        expect(p.charge).toBe(annual.amount * annual.quantity);
        expect(p.net).toBeGreaterThanOrEqual(
          annual.amount * annual.quantity - r.from.amount * r.from.quantity,
        );
        expect(p.nextPeriod.start).toBe(r.prorationDate);
      }),
    ));
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEvent } from './stripe-events';
import { FIXED_NOW, stripeId, stripeIdTime } from './stripe-ids';

const fixtures = join(__dirname, 'fixtures');

describe('Stripe-shaped ids', () => {
  it('read the creation second out of real Stripe ids', () => {
    for (const file of [
      'customer.subscription.updated.renewal.basil.json',
      'checkout.session.completed.subscription.legacy.json',
    ]) {
      const event = JSON.parse(readFileSync(join(fixtures, file), 'utf8')) as { id: string; created: number };
      // The id is made within a second of the `created` Stripe reports.
      expect(Math.abs(stripeIdTime(event.id)! - event.created)).toBeLessThanOrEqual(1);
    }
    // A subscription made four days before the event above.
    expect(stripeIdTime('sub_1SAGUABe0ycHroRBHH0HMWOy')).toBe(1758573442);
  });

  it('are made like them: 24 alphanumerics after the prefix, the time first', () => {
    const id = stripeId('sub', 1758573442);
    expect(id).toMatch(/^sub_1SAGUA[0-9A-Za-z]{18}$/);
    expect(stripeIdTime(id)).toBe(1758573442);
    expect(new Set(Array.from({ length: 1000 }, () => stripeId('evt', FIXED_NOW))).size).toBe(1000);
  });

  it('sort by creation time, byte-wise, as a database index in C collation sees them', () => {
    const times = [1_400_000_000, 1_700_000_000, 1_700_000_001, 1_700_000_061, 1_800_000_000, FIXED_NOW];
    const ids = times.map((t) => stripeId('evt', t));
    const sorted = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(sorted).toEqual([...ids].sort((a, b) => stripeIdTime(a)! - stripeIdTime(b)!));
    expect(stripeIdTime(stripeId('cus'))).toBeCloseTo(Date.now() / 1000, -1);
  });

  it('give events the id of their creation second', () => {
    const event = buildEvent(
      'customer.created',
      { id: stripeId('cus'), object: 'customer' },
      { created: 1_760_000_000 },
    );
    expect(stripeIdTime(event.id)).toBe(1_760_000_000);
    expect(stripeIdTime(buildEvent('customer.created', { id: 'cus_x', object: 'customer' }).id)).toBe(
      FIXED_NOW,
    );
  });
});

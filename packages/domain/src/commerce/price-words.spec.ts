import { describeDiscount, describePrice, describeTrial, formatMoney } from './price-words';

describe('prices in words', () => {
  it.each([
    [{ amount: 1200, currency: 'eur', frequency: 'MONTHLY' as const }, '€12.00 per month'],
    [{ amount: 500, currency: 'usd', frequency: 'WEEKLY' as const }, '$5.00 per week'],
    [{ amount: 3000, currency: 'eur', frequency: 'QUARTERLY' as const }, '€30.00 every 3 months'],
    [{ amount: 10000, currency: 'gbp', frequency: 'ANNUAL' as const }, '£100.00 per year'],
    [
      { amount: 4000, currency: 'eur', frequency: 'INSTALLMENTS' as const, installments: 3 },
      '3 payments of €40.00',
    ],
    [{ amount: 9900, currency: 'eur', frequency: 'ONE_TIME' as const }, 'one payment of €99.00'],
  ])('%j reads "%s"', (price, words) => expect(describePrice(price)).toBe(words));

  it('uses the currency minor unit: yen have none', () => expect(formatMoney(1200, 'jpy')).toBe('¥1,200'));
  it('names the trial length, and nothing without one', () => {
    expect(describeTrial(14)).toBe('14-day free trial');
    expect(describeTrial(undefined)).toBeNull();
  });

  it.each([
    [{ percentOff: 20, duration: 'REPEATING' as const, durationInMonths: 3 }, '20% off for 3 months'],
    [{ amountOff: 500, currency: 'eur', duration: 'ONCE' as const }, '€5.00 off once'],
    [{ percentOff: 12.5, duration: 'FOREVER' as const }, '12.5% off forever'],
  ])('a discount %j reads "%s"', (promo, words) => expect(describeDiscount(promo)).toBe(words));
});

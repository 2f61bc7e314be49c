import type { Catalog } from '../catalog/catalog.evolve';
import { BadUserInputError } from '../errors';
import {
  checkImportPricesOrThrow,
  planImport,
  type ImportCandidate,
  type ImportInput,
} from './import.decide';
import { migrationFactIds } from './migration.events';

const NOW = Date.UTC(2026, 0, 15);
const DAY = 86_400_000;

function candidate(overrides: Partial<ImportCandidate> = {}): ImportCandidate {
  const id = overrides.subscriptionId ?? 'sub_1';
  return {
    subscriptionId: id,
    customerId: 'cus_1',
    email: 'Ada@Example.com',
    status: 'active',
    currentPeriodEnd: NOW + 10 * DAY,
    raw: { id, object: 'subscription' },
    ...overrides,
  };
}

function input(overrides: Partial<ImportInput> = {}): ImportInput {
  return {
    communityId: 'c1',
    candidates: [candidate()],
    directory: { byCustomer: new Map(), byEmail: new Map() },
    known: new Set(),
    now: NOW,
    newMemberId: (customer) => `stripe-${customer}`,
    invitationToken: (customer) => `tok-${customer}`,
    ...overrides,
  };
}

describe('planImport', () => {
  it('links by metadata first, then by a known customer id, then by email', () => {
    const plan = planImport(
      input({
        candidates: [
          candidate({ subscriptionId: 'sub_a', customerId: 'cus_a', metadataMemberId: 'm-meta' }),
          candidate({ subscriptionId: 'sub_b', customerId: 'cus_b', email: 'b@example.com' }),
          candidate({ subscriptionId: 'sub_c', customerId: 'cus_c', email: 'C@Example.com' }),
        ],
        directory: {
          byCustomer: new Map([
            ['cus_a', 'm-wrong'],
            ['cus_b', 'm-customer'],
          ]),
          byEmail: new Map([
            ['b@example.com', 'm-wrong'],
            ['c@example.com', 'm-email'],
          ]),
        },
      }),
    );
    expect(plan.outcomes).toEqual([
      { subscriptionId: 'sub_a', action: 'link', memberId: 'm-meta', linkedBy: 'metadata' },
      { subscriptionId: 'sub_b', action: 'link', memberId: 'm-customer', linkedBy: 'customer' },
      { subscriptionId: 'sub_c', action: 'link', memberId: 'm-email', linkedBy: 'email' },
    ]);
    expect(plan.report).toEqual({ linked: 3, invited: 0, skipped: 0, problems: [] });
    expect(plan.facts.map((f) => f.type)).toEqual(Array(3).fill('SubscriptionImported'));
  });

  it('invites an unknown customer once as a pending member, whatever the number of subscriptions', () => {
    const plan = planImport(
      input({ candidates: [candidate({ subscriptionId: 'sub_1' }), candidate({ subscriptionId: 'sub_2' })] }),
    );
    expect(plan.report).toEqual({ linked: 0, invited: 1, skipped: 0, problems: [] });
    expect(plan.facts.map((f) => [f.id, f.type, f.subject])).toEqual([
      [migrationFactIds.member('c1', 'cus_1'), 'MemberImported', 'stripe-cus_1'],
      ['migration:c1:sub_1', 'SubscriptionImported', 'stripe-cus_1'],
      ['migration:c1:sub_2', 'SubscriptionImported', 'stripe-cus_1'],
    ]);
    expect(plan.facts[0].data).toMatchObject({ email: 'ada@example.com', invitationToken: 'tok-cus_1' });
  });

  it('appends nothing for subscriptions and members already imported (a re-run)', () => {
    const first = planImport(input());
    const again = planImport(input({ known: new Set(first.facts.map((f) => f.id)) }));
    expect(again.facts).toEqual([]);
    expect(again.report).toEqual({ linked: 0, invited: 0, skipped: 1, problems: [] });
  });

  it('keeps a canceled subscription paid through a running period until that period ends', () => {
    const plan = planImport(
      input({
        candidates: [
          candidate({ subscriptionId: 'sub_paid', status: 'canceled', currentPeriodEnd: NOW + DAY }),
          candidate({ subscriptionId: 'sub_over', status: 'canceled', currentPeriodEnd: NOW - DAY }),
        ],
      }),
    );
    const imported = plan.facts.find((f) => f.id === 'migration:c1:sub_paid');
    expect(imported?.data).toMatchObject({ paidThroughUntil: NOW + DAY });
    expect(plan.facts.some((f) => f.id === 'migration:c1:sub_over')).toBe(false);
    expect(plan.outcomes).toContainEqual({
      subscriptionId: 'sub_over',
      action: 'skip',
      reason: 'canceled and its last period is over',
    });
  });

  it('skips subscriptions that never paid, and reports a customer it cannot reach', () => {
    const plan = planImport(
      input({
        candidates: [
          candidate({ subscriptionId: 'sub_inc', status: 'incomplete_expired' }),
          candidate({ subscriptionId: 'sub_anon', customerId: 'cus_anon', email: undefined }),
        ],
      }),
    );
    expect(plan.facts).toEqual([]);
    expect(plan.report.skipped).toBe(2);
    expect(plan.report.problems).toEqual(['sub_anon: customer cus_anon has no email and no linked member']);
  });
});

describe('checkImportPricesOrThrow', () => {
  const catalog = { prices: { p1: { stripePriceId: 'price_1' } } } as unknown as Catalog;

  it('refuses Stripe prices that are not prices of the community', () => {
    expect(() => checkImportPricesOrThrow(catalog, ['price_1', 'price_x'])).toThrow(BadUserInputError);
    expect(() => checkImportPricesOrThrow(catalog, [])).toThrow(BadUserInputError);
    expect(() => checkImportPricesOrThrow(catalog, ['price_1'])).not.toThrow();
  });
});

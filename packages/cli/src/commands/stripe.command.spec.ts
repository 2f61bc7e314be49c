import { stripeTestKit as kit } from '@gatehouse/stripe';
import {
  CliUsageError,
  compareSubscription,
  formatDrift,
  formatQuarantine,
  formatQuarantineDrop,
  parseHeldAccountOrThrow,
  formatDelivery,
  retryHours,
  formatReconcileReport,
  reconcileProgress,
  parseForwardToOrThrow,
  parsePortOrThrow,
  parseLatencyOrThrow,
  parseRequestsPerSecondOrThrow,
  parseSinceOrThrow,
  type ProjectedSubscription,
} from './stripe.command';

const now = new Date('2026-01-10T12:00:00.000Z');

describe('gatehouse stripe: --since', () => {
  it.each([
    ['72h', '2026-01-07T12:00:00.000Z'],
    ['30d', '2025-12-11T12:00:00.000Z'],
    ['90m', '2026-01-10T10:30:00.000Z'],
    ['2026-01-09T00:00:00Z', '2026-01-09T00:00:00.000Z'],
    ['2026-01-09', '2026-01-09T00:00:00.000Z'],
  ])('reads %s as a point in time', (value, expected) => {
    expect(parseSinceOrThrow(value, now).toISOString()).toBe(expected);
  });

  it.each(['', '72', '3w', 'h72', 'yesterday', '-5h', '2026-13-45'])(
    'refuses "%s" with a usage error',
    (value) => {
      expect(() => parseSinceOrThrow(value, now)).toThrow(CliUsageError);
    },
  );

  it('refuses an instant in the future', () => {
    expect(() => parseSinceOrThrow('2026-02-01T00:00:00Z', now)).toThrow(/in the future/);
  });
});

describe('gatehouse stripe reconcile and drift: --requests-per-second', () => {
  it('takes an integer from 1 to 100 and refuses anything else with a usage error', () => {
    expect(parseRequestsPerSecondOrThrow('1')).toBe(1);
    expect(parseRequestsPerSecondOrThrow('100')).toBe(100);
    for (const value of ['0', '101', '2.5', '-3', 'ten', ''])
      expect(() => parseRequestsPerSecondOrThrow(value)).toThrow(CliUsageError);
    // The fake's --rate-limit is read the same way, and named in the error.
    expect(() => parseRequestsPerSecondOrThrow('0', '--rate-limit')).toThrow(/^--rate-limit must be/);
  });
});

describe('gatehouse stripe fake: --latency', () => {
  it('takes whole milliseconds up to a minute and refuses anything else with a usage error', () => {
    expect(parseLatencyOrThrow('0')).toBe(0);
    expect(parseLatencyOrThrow('250')).toBe(250);
    expect(parseLatencyOrThrow('60000')).toBe(60_000);
    for (const value of ['-1', '60001', '1.5', '200ms', ''])
      expect(() => parseLatencyOrThrow(value)).toThrow(CliUsageError);
  });
});

describe('gatehouse stripe fake: --port', () => {
  it('accepts 0 to 65535', () => {
    expect(parsePortOrThrow('0')).toBe(0);
    expect(parsePortOrThrow('12111')).toBe(12111);
    expect(parsePortOrThrow('65535')).toBe(65535);
  });
  it.each(['65536', 'eighty', '-1', '1.5', ''])('refuses "%s"', (value) => {
    expect(() => parsePortOrThrow(value)).toThrow(CliUsageError);
  });
});

describe('gatehouse stripe drift: comparing a projected subscription with Stripe', () => {
  const end = kit.FIXED_NOW + 30 * 86_400;
  const projected: ProjectedSubscription = {
    communityId: 'c1',
    memberId: 'm1',
    subscriptionId: 'sub_1',
    stripeAccountId: 'acct_1',
    status: 'active',
    priceId: 'price_gold',
    currentPeriodEnd: end * 1000,
  };

  it.each(['2024-06-20', '2025-03-31.basil', '2025-09-30.clover'] as const)(
    'finds no difference when Stripe agrees (%s shape: period on the subscription or on the item)',
    (apiVersion) => {
      const sub = kit.buildSubscription(
        { id: 'sub_1', status: 'active', priceId: 'price_gold', periodEnd: end },
        apiVersion,
      );
      expect(compareSubscription(projected, sub)).toEqual([]);
    },
  );

  it('reports status, price and period end that differ', () => {
    const sub = kit.buildSubscription(
      { id: 'sub_1', status: 'past_due', priceId: 'price_silver', periodEnd: end + 86_400 },
      '2025-03-31.basil',
    );
    expect(compareSubscription(projected, sub)).toEqual([
      expect.objectContaining({ field: 'status', projected: 'active', stripe: 'past_due' }),
      expect.objectContaining({ field: 'price', projected: 'price_gold', stripe: 'price_silver' }),
      expect.objectContaining({
        field: 'periodEnd',
        projected: new Date(end * 1000).toISOString(),
        stripe: new Date((end + 86_400) * 1000).toISOString(),
      }),
    ]);
  });

  it('reports a subscription of an account Stripe would not let the platform read', () => {
    expect(compareSubscription(projected, { refused: 401 })).toEqual([
      expect.objectContaining({ field: 'access', projected: 'active', stripe: 'refused (401)' }),
    ]);
  });

  it('reports a subscription Stripe does not know', () => {
    expect(compareSubscription(projected, null)).toEqual([
      expect.objectContaining({ field: 'existence', stripe: 'not found' }),
    ]);
  });

  it('reports a linked subscription the projection has no state for', () => {
    const linkOnly = { ...projected, status: null, priceId: null, currentPeriodEnd: null };
    const sub = kit.buildSubscription(
      { id: 'sub_1', status: 'active', priceId: 'price_gold' },
      '2025-03-31.basil',
    );
    expect(compareSubscription(linkOnly, sub)).toEqual([
      expect.objectContaining({ field: 'existence', projected: 'not projected', stripe: 'active' }),
    ]);
  });

  it('prints "no drift" only when there is no difference', () => {
    expect(formatDrift([], 3)).toBe('no drift: 3 subscription(s) match Stripe\n');
    expect(formatDrift(compareSubscription(projected, null), 1)).toMatch(
      /1 difference\(s\).*\n.*sub_1 existence/,
    );
  });
});

describe('gatehouse stripe reconcile: progress', () => {
  it('says how far each account has got every thousand events listed', () => {
    const lines: string[] = [];
    const progress = reconcileProgress((l) => lines.push(l));
    for (let listed = 100; listed <= 2_000; listed += 100)
      progress({ account: 'acct_1', listed, missing: 2 });
    progress({ account: null, listed: 1_000, missing: 0 });
    progress({ account: null, listed: 1_050, missing: 1 });
    expect(lines).toEqual([
      'acct_1: 1000 events listed, 2 missing from the ledger so far\n',
      'acct_1: 2000 events listed, 2 missing from the ledger so far\n',
      'platform: 1000 events listed, 0 missing from the ledger so far\n',
    ]);
  });
});

describe('gatehouse stripe reconcile: the report', () => {
  it('lists each account with its counts and the ids it appended', () => {
    const text = formatReconcileReport({
      since: '2026-01-07T12:00:00.000Z',
      clamped: false,
      listed: 3,
      appended: 1,
      alreadyPresent: 2,
      unassigned: 0,
      scopes: [
        {
          account: 'acct_1',
          communityId: 'c1',
          listed: 3,
          appended: 1,
          alreadyPresent: 2,
          unassigned: 0,
          appendedIds: ['evt_missed'],
        },
      ],
      refused: [{ account: 'acct_gone', message: 'Application access may have been revoked.' }],
    });
    expect(text).toMatch(/acct_1\s+c1\s+3\s+1\s+2\s+0/);
    expect(text).toMatch(
      /^acct_gone\s+not listed: Stripe refused \(Application access may have been revoked\.\)$/m,
    );
    expect(text).toContain('  + evt_missed');
    expect(text).toContain('total: 3 listed, 1 appended, 2 already in the ledger');
  });
});

describe('gatehouse stripe quarantine: the list', () => {
  it('shows each account with its events, the oldest one and the last hold, and the total', () => {
    const text = formatQuarantine([
      {
        accountId: 'acct_typo',
        events: 3,
        oldestCreated: new Date('2026-01-09T08:00:00.000Z'),
        lastHeldAt: new Date('2026-01-10T11:59:00.000Z'),
      },
      {
        accountId: 'acct_new',
        events: 1,
        oldestCreated: new Date('2026-01-10T11:00:00.000Z'),
        lastHeldAt: new Date('2026-01-10T11:00:05.000Z'),
      },
    ]);
    expect(text).toMatch(/^acct_typo\s+3\s+2026-01-09T08:00:00Z\s+2026-01-10T11:59:00Z$/m);
    expect(text).toMatch(/^acct_new\s+1\s+2026-01-10T11:00:00Z\s+2026-01-10T11:00:05Z$/m);
    expect(text).toContain('4 event(s) held for 2 account(s)');
    expect(text).toContain(
      'those of an account linked already are taken by the projecting server within 30 s',
    );
    expect(text).toContain('`gatehouse stripe quarantine drop <account>`');
  });

  it('says when nothing is held', () => {
    expect(formatQuarantine([])).toMatch(/^no Stripe events held/);
  });
});

describe('gatehouse stripe quarantine drop', () => {
  const held = [
    {
      accountId: 'acct_gone',
      events: 2,
      oldestCreated: new Date('2025-11-01T08:00:00.000Z'),
      lastHeldAt: new Date('2025-11-02T09:00:00.000Z'),
    },
  ];
  const report = {
    dryRun: true,
    createdBefore: '2025-12-11T12:00:00.000Z',
    held,
    dropped: 0,
    savedTo: null,
    linkedMeanwhile: [],
  };

  it('takes connected account ids and "platform", and refuses anything else with a usage error', () => {
    expect(parseHeldAccountOrThrow('acct_1Ab2')).toBe('acct_1Ab2');
    expect(parseHeldAccountOrThrow('platform')).toBe('platform');
    for (const value of ['', 'acct_', 'cus_123', 'acct_1 2', 'community-1'])
      expect(() => parseHeldAccountOrThrow(value)).toThrow(CliUsageError);
  });

  it('names the option a bad --older-than came from', () => {
    expect(() => parseSinceOrThrow('3w', now, '--older-than')).toThrow(/^--older-than must be a duration/);
    expect(parseSinceOrThrow('30d', now, '--older-than').toISOString()).toBe('2025-12-11T12:00:00.000Z');
  });

  it('says what a dry run would drop, and that it dropped nothing', () => {
    const text = formatQuarantineDrop(report);
    expect(text).toMatch(/^acct_gone\s+2\s+2025-11-01T08:00:00Z\s+2025-11-02T09:00:00Z$/m);
    expect(text).toContain(
      '2 event(s) created before 2025-12-11T12:00:00.000Z held for 1 account(s) would be dropped. Nothing was dropped',
    );
    expect(text).not.toMatch(/^dropped/m);
  });

  it('says how many it dropped, and where the copy is', () => {
    const text = formatQuarantineDrop({ ...report, dryRun: false, dropped: 2, savedTo: 'gone.jsonl' });
    expect(text).toMatch(
      /^dropped 2 event\(s\) created before 2025-12-11T12:00:00.000Z held for 1 account\(s\); a copy of each is in gone.jsonl$/m,
    );
    expect(text).not.toContain('would be dropped');
    expect(formatQuarantineDrop({ ...report, dryRun: false, dropped: 2, createdBefore: null })).toMatch(
      /^dropped 2 event\(s\) held for 1 account\(s\)$/m,
    );
  });

  it('names the accounts linked while it ran, whose events it left', () => {
    const text = formatQuarantineDrop({
      ...report,
      dryRun: false,
      held: [...held, { ...held[0], accountId: 'acct_late' }],
      dropped: 2,
      linkedMeanwhile: ['acct_late'],
    });
    expect(text).toMatch(/^dropped 2 event\(s\) created before \S+ held for 1 account\(s\)$/m);
    expect(text).toContain('left those of acct_late: linked to a community while this ran');
  });

  it('says when nothing matches', () => {
    expect(formatQuarantineDrop({ ...report, held: [] })).toMatch(
      /^no Stripe events created before .* nothing to drop/,
    );
  });
});

describe('gatehouse stripe fake: --forward-to and the delivery lines', () => {
  it('takes an http(s) URL and refuses anything else with a usage error', () => {
    expect(parseForwardToOrThrow('http://127.0.0.1:4000/webhooks/stripe')).toBe(
      'http://127.0.0.1:4000/webhooks/stripe',
    );
    expect(parseForwardToOrThrow('https://gatehouse.example/webhooks/stripe')).toBe(
      'https://gatehouse.example/webhooks/stripe',
    );
    for (const bad of ['', 'localhost:4000', 'ftp://127.0.0.1/webhooks', '/webhooks/stripe'])
      expect(() => parseForwardToOrThrow(bad)).toThrow(CliUsageError);
  });

  it('says when a refused delivery is tried again, from the fake’s own delays', () => {
    expect(retryHours()).toBe('1, 3 and 6');
    expect(retryHours([1_800, 1_800])).toBe('0.5 and 1');
  });

  it('prints one line per attempt: the event, its account, the answer and when it is tried again', () => {
    const base = { eventId: 'evt_1', type: 'customer.created', ms: 3, attempt: 1 };
    expect(formatDelivery({ ...base, account: 'acct_1', status: 200, ok: true })).toBe(
      '--> customer.created [evt_1] acct_1: 200\n',
    );
    expect(formatDelivery({ ...base, account: null, status: 400, ok: false })).toBe(
      '-x- customer.created [evt_1]: 400\n',
    );
    expect(formatDelivery({ ...base, account: null, status: null, ok: false, error: 'ECONNREFUSED' })).toBe(
      '-x- customer.created [evt_1]: no answer (ECONNREFUSED)\n',
    );
    expect(
      formatDelivery({ ...base, account: null, status: 503, ok: false, nextAttemptAt: 1_800_003_600 }),
    ).toBe('-x- customer.created [evt_1]: 503, tried again at 2027-01-15T09:00:00Z\n');
    expect(formatDelivery({ ...base, account: null, status: 200, ok: true, attempt: 2 })).toBe(
      '--> customer.created [evt_1]: 200 (attempt 2)\n',
    );
  });
});

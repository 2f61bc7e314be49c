import type { StripeEvent } from '../stripe-event';
import type { QuarantineStore } from '../quarantine/quarantine.port';
import { MemoryLedger } from '../testing/memory-ledger';
import { signPayload } from '../testing/sign';
import { customerSubscriptionUpdated, invoicePaid } from '../testing/stripe-events';
import { FIXED_NOW } from '../testing/stripe-ids';
import type { CommunityDirectory } from './community-directory.port';
import { createWebhookIngestor } from './ingest.handler';

const SECRET = 'whsec_ingest_test';

class MemoryQuarantine implements QuarantineStore {
  readonly held = new Map<string, StripeEvent[]>();
  async init(): Promise<void> {}
  async put(accountId: string, event: StripeEvent): Promise<void> {
    const list = this.held.get(accountId) ?? [];
    if (!list.some((e) => e.id === event.id)) list.push(event);
    this.held.set(accountId, list);
  }
  async take(accountId: string): Promise<StripeEvent[]> {
    return [...(this.held.get(accountId) ?? [])];
  }
  async discard(accountId: string, ids: readonly string[]): Promise<void> {
    this.held.set(
      accountId,
      (this.held.get(accountId) ?? []).filter((e) => !ids.includes(e.id)),
    );
  }
  async heldAmong(accountIds: readonly string[]): Promise<string[]> {
    return accountIds.filter((a) => (this.held.get(a) ?? []).length > 0);
  }
}

const directory: CommunityDirectory = {
  communityForStripeAccount: async (acct) => (acct === 'acct_known' ? 'community-connected' : null),
  platformCommunity: async () => 'community-platform',
};

function setup() {
  const ledger = new MemoryLedger();
  const quarantine = new MemoryQuarantine();
  const logs: { level: string; obj: object; msg?: string }[] = [];
  const logger = {
    info: (obj: object, msg?: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg?: string) => logs.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg?: string) => logs.push({ level: 'error', obj, msg }),
  };
  const ingest = createWebhookIngestor({
    ledger,
    secrets: [SECRET],
    directory,
    quarantine,
    logger,
    clock: () => new Date(FIXED_NOW * 1000),
  });
  return { ledger, quarantine, logs, ingest };
}

describe('createWebhookIngestor', () => {
  it('appends a verified event verbatim as a ledger fact, then answers 200', async () => {
    const { ledger, ingest } = setup();
    const event = customerSubscriptionUpdated(
      { id: 'sub_1' },
      { apiVersion: '2025-03-31.basil', created: FIXED_NOW - 60 },
    );
    const { rawBody, header } = signPayload(event, SECRET);
    const res = await ingest(rawBody, header);
    expect(res).toEqual({ status: 200, body: { received: true, id: event.id, duplicate: false } });
    expect(ledger.events).toHaveLength(1);
    expect(ledger.events[0]).toMatchObject({
      id: event.id,
      type: 'customer.subscription.updated',
      communityId: 'community-platform',
      subject: 'sub_1',
      occurredAt: new Date((FIXED_NOW - 60) * 1000).toISOString(),
      source: 'stripe',
    });
    expect(ledger.events[0].data).toEqual(JSON.parse(rawBody.toString('utf8')));
    expect((ledger.events[0].data as StripeEvent).api_version).toBe('2025-03-31.basil');
  });

  it('routes a Connect event to the community of its account', async () => {
    const { ledger, ingest } = setup();
    const { rawBody, header } = signPayload(invoicePaid({}, { account: 'acct_known' }), SECRET);
    expect((await ingest(rawBody, header)).status).toBe(200);
    expect(ledger.events[0].communityId).toBe('community-connected');
  });

  it('has one append effect for the same event delivered 10 times concurrently, and answers 200 to all', async () => {
    const { ledger, ingest } = setup();
    const { rawBody, header } = signPayload(invoicePaid(), SECRET);
    const results = await Promise.all(Array.from({ length: 10 }, () => ingest(rawBody, header)));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(ledger.events).toHaveLength(1);
  });

  it('answers 200 with duplicate: true for a redelivery, writing nothing new', async () => {
    const { ledger, ingest } = setup();
    const { rawBody, header } = signPayload(invoicePaid(), SECRET);
    await ingest(rawBody, header);
    const again = await ingest(rawBody, header);
    expect(again).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(ledger.events).toHaveLength(1);
  });

  it('answers 503 and acknowledges nothing when the ledger throws, so that Stripe retries; a retry then records it', async () => {
    const { ledger, ingest, logs } = setup();
    const { rawBody, header } = signPayload(invoicePaid(), SECRET);
    ledger.failNext(1);
    const res = await ingest(rawBody, header);
    expect(res.status).toBe(503);
    expect(ledger.events).toHaveLength(0);
    expect(logs.some((l) => l.level === 'error')).toBe(true);
    expect((await ingest(rawBody, header)).status).toBe(200);
    expect(ledger.events).toHaveLength(1);
  });

  it('answers 503 LEDGER_TIMEOUT when the ledger does not confirm in time; a retry shares the append under way', async () => {
    const ledger = new MemoryLedger();
    let confirm: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => (confirm = resolve));
    let appends = 0;
    const slowLedger = {
      append: async (events: Parameters<MemoryLedger['append']>[0]) => {
        appends++;
        await stalled;
        return ledger.append(events);
      },
    };
    const logs: { level: string; msg?: string }[] = [];
    const log = (level: string) => (_obj: object, msg?: string) => void logs.push({ level, msg });
    const ingest = createWebhookIngestor({
      ledger: slowLedger,
      secrets: [SECRET],
      directory,
      quarantine: new MemoryQuarantine(),
      logger: { info: log('info'), warn: log('warn'), error: log('error') },
      clock: () => new Date(FIXED_NOW * 1000),
      answerWithinMs: 50,
    });
    const event = invoicePaid();
    const { rawBody, header } = signPayload(event, SECRET);

    const started = Date.now();
    const first = await ingest(rawBody, header);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(first).toEqual({
      status: 503,
      body: {
        error: {
          code: 'LEDGER_TIMEOUT',
          message: 'The ledger did not confirm the event in time; retry later',
        },
      },
    });
    expect(logs).toContainEqual({
      level: 'warn',
      msg: 'stripe event not confirmed by the ledger in time; answered 503, Stripe will retry',
    });

    // Stripe's retry while the first append is still stalled: the same append, not a second one.
    const retry = ingest(rawBody, header);
    confirm();
    expect(await retry).toEqual({ status: 200, body: { received: true, id: event.id, duplicate: false } });
    expect(appends).toBe(1);
    expect(ledger.events).toHaveLength(1);
    expect((await ingest(rawBody, header)).body).toMatchObject({ duplicate: true });
  });

  it('holds an event of an unknown connected account in quarantine, answers 200 and logs it', async () => {
    const { ledger, quarantine, ingest, logs } = setup();
    const event = invoicePaid({}, { account: 'acct_unknown' });
    const { rawBody, header } = signPayload(event, SECRET);
    const res = await ingest(rawBody, header);
    expect(res).toEqual({ status: 200, body: { received: true, id: event.id, quarantined: true } });
    expect(ledger.appendCalls).toHaveLength(0);
    expect((await quarantine.take('acct_unknown')).map((e) => e.id)).toEqual([event.id]);
    expect(logs.find((l) => l.level === 'warn')?.obj).toMatchObject({
      eventId: event.id,
      account: 'acct_unknown',
    });
  });

  it.each([
    ['a missing signature', (raw: Buffer) => [raw, undefined] as const, 'STRIPE_SIGNATURE_MISSING'],
    [
      'a signature by another secret',
      (raw: Buffer) => [raw, signPayload(raw.toString(), 'whsec_other').header] as const,
      'STRIPE_SIGNATURE_MISMATCH',
    ],
    [
      'a stale timestamp',
      (raw: Buffer) => [raw, signPayload(raw.toString(), SECRET, FIXED_NOW - 301).header] as const,
      'STRIPE_SIGNATURE_TIMESTAMP_STALE',
    ],
    [
      'a future timestamp',
      (raw: Buffer) => [raw, signPayload(raw.toString(), SECRET, FIXED_NOW + 301).header] as const,
      'STRIPE_SIGNATURE_TIMESTAMP_FUTURE',
    ],
  ])('answers 400 and writes nothing for %s', async (_name, make, code) => {
    const { ledger, quarantine, ingest } = setup();
    const { rawBody } = signPayload(invoicePaid({}, { account: 'acct_unknown' }), SECRET);
    const [raw, header] = make(rawBody);
    const res = await ingest(raw, header);
    expect(res).toEqual({ status: 400, body: { error: { code, message: expect.any(String) } } });
    expect(ledger.appendCalls).toHaveLength(0);
    expect(quarantine.held.size).toBe(0);
  });

  it.each([
    ['not JSON', 'not json at all'],
    ['a JSON array', '[]'],
    ['an object that is not an event', JSON.stringify({ id: 'cus_1', object: 'customer' })],
    [
      'an event without data.object',
      JSON.stringify({ id: 'evt_1', object: 'event', type: 'invoice.paid', created: FIXED_NOW, data: {} }),
    ],
    [
      'an event with a non-evt id',
      JSON.stringify({
        id: 'x_1',
        object: 'event',
        type: 'invoice.paid',
        created: FIXED_NOW,
        data: { object: {} },
      }),
    ],
    [
      'an event without created',
      JSON.stringify({ id: 'evt_1', object: 'event', type: 'invoice.paid', data: { object: {} } }),
    ],
  ])(
    'answers 400 STRIPE_NOT_AN_EVENT and writes nothing for a signed body that is %s',
    async (_name, text) => {
      const { ledger, ingest } = setup();
      const { rawBody, header } = signPayload(text, SECRET);
      const res = await ingest(rawBody, header);
      expect(res).toMatchObject({ status: 400, body: { error: { code: 'STRIPE_NOT_AN_EVENT' } } });
      expect(ledger.appendCalls).toHaveLength(0);
    },
  );

  it('answers 503 when the quarantine cannot hold an event', async () => {
    const { quarantine, ingest } = setup();
    quarantine.put = async () => {
      throw new Error('database down');
    };
    const { rawBody, header } = signPayload(invoicePaid({}, { account: 'acct_unknown' }), SECRET);
    expect((await ingest(rawBody, header)).status).toBe(503);
  });
});

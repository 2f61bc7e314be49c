import { envelopeSchema, MAX_EVENT_BYTES, prepareBatch, prepareEnvelopes } from './envelope';
import { LedgerPayloadTooLargeError, LedgerValidationError } from './ledger.errors';
import type { NewEvent } from './ledger.port';

const at = new Date('2026-03-01T12:00:00.000Z');
const valid: NewEvent = {
  type: 'TierDefined',
  communityId: 'c-1',
  source: 'admin',
  occurredAt: '2026-03-01T11:00:00Z',
  data: { tierId: 't-1' },
};

describe('prepareEnvelopes', () => {
  it('completes an event with a UUIDv7 id, recordedAt, nulls and schema version 1', () => {
    const [e] = prepareEnvelopes([valid], at);
    expect(e).toEqual({
      ...valid,
      id: expect.stringMatching(/^[0-9a-f-]{14}7/),
      occurredAt: '2026-03-01T11:00:00.000Z',
      recordedAt: '2026-03-01T12:00:00.000Z',
      subject: null,
      actor: null,
      causationId: null,
      correlationId: null,
      schemaVersion: 1,
    });
  });

  it('keeps a Stripe evt_ id as given', () => {
    expect(prepareEnvelopes([{ ...valid, id: 'evt_1PZ', source: 'stripe' }], at)[0].id).toBe('evt_1PZ');
  });

  it('lists every failing field of a refused event, with its index in the batch', () => {
    const bad = {
      ...valid,
      occurredAt: '1 March',
      source: 'email',
      schemaVersion: 0,
      data: 'x',
      extra: 1,
    } as unknown as NewEvent;
    let err: unknown;
    try {
      prepareEnvelopes([valid, bad], at);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LedgerValidationError);
    expect(err).toMatchObject({ code: 'LEDGER_INVALID_EVENT', index: 1 });
    expect(Object.keys((err as LedgerValidationError).fields).sort()).toEqual([
      'data',
      'extra',
      'occurredAt',
      'schemaVersion',
      'source',
    ]);
  });

  it('refuses a missing community or type', () => {
    expect(() => prepareEnvelopes([{ ...valid, communityId: '' }], at)).toThrow(LedgerValidationError);
    expect(() => prepareEnvelopes([{ ...valid, type: undefined } as unknown as NewEvent], at)).toThrow(
      LedgerValidationError,
    );
  });

  it('refuses an event over 1 MiB serialized', () => {
    const big = { ...valid, data: { blob: 'x'.repeat(MAX_EVENT_BYTES) } };
    expect(() => prepareEnvelopes([big], at)).toThrow(LedgerPayloadTooLargeError);
    const justUnder = { ...valid, data: { blob: 'x'.repeat(MAX_EVENT_BYTES - 1_000) } };
    expect(() => prepareEnvelopes([justUnder], at)).not.toThrow();
  });

  it('counts the limit in UTF-8 bytes, not characters', () => {
    // Two bytes per character: under the limit in characters, over it in bytes.
    const wide = { ...valid, data: { blob: 'é'.repeat(MAX_EVENT_BYTES / 2 + 1_000) } };
    expect(() => prepareEnvelopes([wide], at)).toThrow(LedgerPayloadTooLargeError);
    const narrow = { ...valid, data: { blob: 'é'.repeat(MAX_EVENT_BYTES / 2 - 1_000) } };
    expect(() => prepareEnvelopes([narrow], at)).not.toThrow();
  });

  it('gives each envelope of a batch its JSON, in the normalised spelling that is stored', () => {
    const { envelopes, json } = prepareBatch(
      [valid, { ...valid, id: 'evt_2', occurredAt: '2026-03-01T12:30:00+01:00' }],
      at,
    );
    expect(json).toHaveLength(2);
    expect(json.map((j) => JSON.parse(j) as unknown)).toEqual(envelopes);
    expect(JSON.parse(json[1])).toMatchObject({ id: 'evt_2', occurredAt: '2026-03-01T11:30:00.000Z' });
  });

  it('publishes a schema that names every envelope field as required', () => {
    expect(envelopeSchema.required).toEqual([
      'id',
      'type',
      'communityId',
      'subject',
      'occurredAt',
      'recordedAt',
      'source',
      'actor',
      'causationId',
      'correlationId',
      'schemaVersion',
      'data',
    ]);
  });
});

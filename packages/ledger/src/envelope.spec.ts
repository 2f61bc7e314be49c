import {
  envelopeJson,
  envelopeSchema,
  holdsNulCharacter,
  MAX_EVENT_BYTES,
  prepareBatch,
  prepareEnvelopes,
} from './envelope';
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
    expect(json.map((j) => JSON.parse(envelopeJson(j)) as unknown)).toEqual(envelopes);
    expect(JSON.parse(envelopeJson(json[1]))).toMatchObject({
      id: 'evt_2',
      occurredAt: '2026-03-01T11:30:00.000Z',
    });
  });

  it('serializes the payload apart from the rest, and joins them into exactly the envelope’s JSON', () => {
    const data = { zeta: 1, a: [1.5, { y: 'x', b: null }], mid: 'é\u2028', quote: '"}' };
    const { envelopes, json } = prepareBatch([{ ...valid, data }], at);
    expect(json[0].data).toBe(JSON.stringify(data));
    expect(JSON.parse(json[0].meta)).not.toHaveProperty('data');
    expect(envelopeJson(json[0])).toBe(JSON.stringify(envelopes[0]));
  });

  it('refuses the character U+0000 anywhere in an event, which PostgreSQL text cannot hold', () => {
    for (const [event, field] of [
      [{ ...valid, data: { name: 'Meetup\u0000' } }, 'data'],
      [{ ...valid, data: { nested: [{ ['k\u0000']: 1 }] } }, 'data'],
      [{ ...valid, subject: 'mem\u0000' }, '(event)'],
    ] as const) {
      const err = (() => {
        try {
          prepareEnvelopes([valid, event], at);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(LedgerValidationError);
      expect(err).toMatchObject({ index: 1, fields: { [field]: expect.stringMatching(/U\+0000/) } });
    }
    // The text backslash-u-0-0-0-0 is not the character.
    expect(() =>
      prepareEnvelopes([{ ...valid, data: { path: 'C:\\u0000', more: '\\\\u0000' } }], at),
    ).not.toThrow();
  });

  it('tells the escape of U+0000 from a backslash followed by u0000', () => {
    expect(holdsNulCharacter(JSON.stringify({ a: 'x\u0000' }))).toBe(true);
    expect(holdsNulCharacter(JSON.stringify({ a: '\\u0000' }))).toBe(false);
    expect(holdsNulCharacter(JSON.stringify({ a: '\\\u0000' }))).toBe(true);
    expect(holdsNulCharacter(JSON.stringify({ a: '\\\\u0000', b: 'ok' }))).toBe(false);
    expect(holdsNulCharacter(JSON.stringify({ a: '\\u0000', b: '\u0000' }))).toBe(true);
  });

  it('counts the limit over the whole envelope, not the payload alone', () => {
    const meta = JSON.stringify({ ...prepareEnvelopes([valid], at)[0], data: undefined });
    // {"blob":"…"} plus the envelope's other fields and ,"data": is exactly the limit
    const room = MAX_EVENT_BYTES - (meta.length + ',"data":'.length) - '{"blob":""}'.length;
    const exact = { ...valid, data: { blob: 'x'.repeat(room) } };
    expect(Buffer.byteLength(envelopeJson(prepareBatch([exact], at).json[0]))).toBe(MAX_EVENT_BYTES);
    expect(() => prepareEnvelopes([{ ...valid, data: { blob: 'x'.repeat(room + 1) } }], at)).toThrow(
      LedgerPayloadTooLargeError,
    );
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

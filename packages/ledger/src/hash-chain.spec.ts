import { createHash } from 'node:crypto';
import reference from 'canonicalize';
import fc from 'fast-check';
import { canonicalEvent, chainHash, GENESIS_HASH, verifyChain, type ChainedEvent } from './hash-chain';
import type { RecordedEvent } from './ledger.port';

function event(i: number): RecordedEvent {
  return {
    id: `e-${i}`,
    type: 'TierDefined',
    communityId: 'c-1',
    subject: null,
    occurredAt: '2026-01-01T00:00:00.000Z',
    recordedAt: '2026-01-01T00:00:01.000Z',
    source: 'admin',
    actor: 'admin-1',
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data: { z: 1, a: [i, { y: 2, b: 3 }] },
    position: `p-${i}`,
  };
}

/** The envelope fields of `e`, with `data` replaced: what the canonical form covers. */
function envelopeOf(e: RecordedEvent, data: unknown): Record<string, unknown> {
  const { position: _position, ...envelope } = e;
  return { ...envelope, data };
}

function chain(events: RecordedEvent[]): ChainedEvent[] {
  let prev = GENESIS_HASH;
  return events.map((e) => {
    const hash = chainHash(prev, e);
    prev = hash;
    return { ...e, hash };
  });
}

describe('hash chain', () => {
  it('writes any JSON data exactly as an RFC 8785 reference implementation does', () => {
    // Lone surrogates, control characters, non-BMP keys, -0, 1e21 and deep nesting included.
    const data = fc.oneof(
      fc.jsonValue({ stringUnit: 'binary' }),
      fc.jsonValue({ stringUnit: 'grapheme' }),
      fc.constantFrom(-0, 1e21, 5e-7, 0.1 + 0.2, Number.MAX_SAFE_INTEGER + 2, {
        // Sorted by UTF-16 code units: a surrogate pair (0xD83D...) after U+00E9, U+FB01 after both.
        '\u{1F600}': 1,
        '\u00e9': 2,
        e: 3,
        'e\u0301': 4,
        '\ufb01': 5,
      }),
    );
    fc.assert(
      fc.property(data, (value) => {
        expect(canonicalEvent({ ...event(1), data: value })).toBe(reference(envelopeOf(event(1), value)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('refuses what is not JSON data rather than hashing something else', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const data of [cyclic, { n: Number.NaN }, { n: 1n }, { f: () => 1 }]) {
      expect(() => canonicalEvent({ ...event(1), data })).toThrow();
    }
  });

  it('canonicalizes with sorted keys and without the position', () => {
    const text = canonicalEvent(event(1));
    expect(text).not.toContain('position');
    expect(text.startsWith('{"actor":"admin-1","causationId":null,"communityId":"c-1"')).toBe(true);
    expect(text).toContain('"data":{"a":[1,{"b":3,"y":2}],"z":1}');
    expect(canonicalEvent({ ...event(1), position: 'elsewhere' })).toBe(text);
  });

  it('hashes the previous hash followed by the canonical event', () => {
    const expected = createHash('sha256')
      .update(GENESIS_HASH + canonicalEvent(event(1)))
      .digest('hex');
    expect(chainHash(GENESIS_HASH, event(1))).toBe(expected);
    expect(GENESIS_HASH).toBe('0'.repeat(64));
  });

  it('verifies an intact chain', () => {
    expect(verifyChain(chain([event(1), event(2), event(3)]))).toBeNull();
    expect(verifyChain([])).toBeNull();
  });

  it('reports the first broken link when an event was altered', () => {
    const events = chain([event(1), event(2), event(3), event(4)]);
    events[2] = { ...events[2], data: { tampered: true } };
    expect(verifyChain(events)).toMatchObject({ index: 2, eventId: 'e-3', actual: events[2].hash });
  });

  it('reports a removed event as a break at its successor', () => {
    const events = chain([event(1), event(2), event(3)]);
    expect(verifyChain([events[0], events[2]])).toMatchObject({ index: 1, eventId: 'e-3' });
  });
});

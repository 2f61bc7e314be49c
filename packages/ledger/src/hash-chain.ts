import { createHash } from 'node:crypto';
import { configure } from 'safe-stable-stringify';
import { envelopeOf } from './envelope';
import type { EventEnvelope, RecordedEvent } from './ledger.port';

/** The previous hash of a community's first event. */
export const GENESIS_HASH = '0'.repeat(64);

// Keys sorted by UTF-16 code units, numbers and strings as JSON.stringify writes them: RFC 8785 for
// JSON data, at about half the cost of a recursive canonicalizer (the archive hashes every event).
// Anything that is not JSON data (a cycle, NaN, a function, a BigInt) throws rather than hashing.
const canonicalize = configure({ deterministic: true, strict: true, circularValue: Error, bigint: false });

/** Canonical JSON (RFC 8785) of the envelope; the position is left out, it differs per adapter. */
export function canonicalEvent(event: EventEnvelope | RecordedEvent): string {
  const text = canonicalize(envelopeOf(event));
  if (text === undefined) throw new TypeError(`Event ${event.id} cannot be canonicalized`);
  return text;
}

/** sha256 (hex) of the previous hash's text followed by the canonical event. */
export function chainHash(prevHash: string, event: EventEnvelope | RecordedEvent): string {
  return createHash('sha256').update(prevHash, 'utf8').update(canonicalEvent(event), 'utf8').digest('hex');
}

export type ChainedEvent = (EventEnvelope | RecordedEvent) & { hash: string };

export type BrokenLink = {
  /** Index in the verified list. */
  index: number;
  eventId: string;
  expected: string;
  actual: string;
};

/** Walks one community's events in log order and reports the first event whose hash does not match. */
export function verifyChain(
  events: Iterable<ChainedEvent>,
  prevHash: string = GENESIS_HASH,
): BrokenLink | null {
  let prev = prevHash;
  let index = 0;
  for (const event of events) {
    const expected = chainHash(prev, event);
    if (expected !== event.hash) return { index, eventId: event.id, expected, actual: event.hash };
    prev = event.hash;
    index++;
  }
  return null;
}

import Ajv2020, { type ErrorObject } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { v7 as uuidv7 } from 'uuid';
import schema from './envelope.schema.json';
import { LedgerPayloadTooLargeError, LedgerValidationError, UnknownCommunityError } from './ledger.errors';
import type { EventEnvelope, NewEvent, RecordedEvent } from './ledger.port';

/** The published JSON Schema of the event envelope (draft 2020-12). */
export const envelopeSchema: Readonly<Record<string, unknown>> = schema;

/** Largest serialized envelope the ledger accepts: 1 MiB. */
export const MAX_EVENT_BYTES = 1024 * 1024;

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv, ['date-time']);
const validate = ajv.compile<EventEnvelope>(schema);

function fieldOf(err: ErrorObject): string {
  const path = err.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (err.keyword === 'required') {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    return path ? `${path}.${missing}` : missing;
  }
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    return path ? `${path}.${extra}` : extra;
  }
  return path || '(event)';
}

function assertEnvelopeSchema(envelope: EventEnvelope, index: number): void {
  if (validate(envelope)) return;
  const fields: Record<string, string> = {};
  for (const err of validate.errors ?? []) {
    const field = fieldOf(err);
    if (!(field in fields)) fields[field] = err.message ?? err.keyword;
  }
  throw new LedgerValidationError(fields, index);
}

/**
 * An envelope's JSON in two parts: its payload (`data`) and the rest (`meta`, whose last key would
 * be `data`). The PostgreSQL adapter sends them apart; `envelopeJson` joins them.
 */
export type EnvelopeJson = { meta: string; data: string };

/** What joining the two parts adds: `,"data":`. */
const DATA_KEY = ',"data":';

/** The JSON of the whole envelope, as `JSON.stringify` gives it (`data` is the last key). */
export function envelopeJson(parts: EnvelopeJson): string {
  return `${parts.meta.slice(0, -1)}${DATA_KEY}${parts.data}}`;
}

/** Payloads serialized ahead of their append (`serializePayloadEarly`), by payload object. */
const earlyPayloads = new WeakMap<object, string>();

/**
 * Serializes an event's payload now, for its append to reuse, so that the append does not wait for
 * it: a caller that queues events (`AppendBatcher`) does it as each arrives, while the batch before
 * is being written. The append then stores the payload as it was at this moment. A payload that
 * cannot be serialized is left for the append to report.
 */
export function serializePayloadEarly(event: NewEvent): void {
  const { data } = event;
  if (typeof data !== 'object' || data === null || earlyPayloads.has(data)) return;
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch {
    return;
  }
  earlyPayloads.set(data, json);
}

/**
 * Whether a JSON text holds the character U+0000 (which `JSON.stringify` writes as the escape
 * `\u0000`; a backslash written before `u0000` is escaped itself, as `\\`).
 */
export function holdsNulCharacter(json: string): boolean {
  for (let at = json.indexOf('\\u0000'); at >= 0; at = json.indexOf('\\u0000', at + 1)) {
    let backslashes = 0;
    while (at - backslashes - 1 >= 0 && json.charCodeAt(at - backslashes - 1) === 92) backslashes++;
    if (backslashes % 2 === 0) return true;
  }
  return false;
}

/** The envelope as stored and sent, serialized once, checked against the size limit. */
function serializeWithinLimit(envelope: EventEnvelope, index: number): EnvelopeJson {
  const { data, ...rest } = envelope;
  const early = typeof data === 'object' && data !== null ? earlyPayloads.get(data) : undefined;
  const parts = { meta: JSON.stringify(rest), data: early ?? JSON.stringify(data) };
  // PostgreSQL's text cannot hold U+0000: the PostgreSQL ledger would fail on it, and a projection
  // storing the string would fail on it again every time it read the event.
  for (const part of ['data', 'meta'] as const)
    if (holdsNulCharacter(parts[part]))
      throw new LedgerValidationError(
        { [part === 'data' ? 'data' : '(event)']: 'holds the character U+0000, which cannot be stored' },
        index,
      );
  const length = parts.meta.length + DATA_KEY.length + parts.data.length;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: count the bytes only when it could matter.
  if (length * 3 > MAX_EVENT_BYTES) {
    const bytes =
      Buffer.byteLength(parts.meta, 'utf8') + DATA_KEY.length + Buffer.byteLength(parts.data, 'utf8');
    if (bytes > MAX_EVENT_BYTES) throw new LedgerPayloadTooLargeError(bytes, MAX_EVENT_BYTES, index);
  }
  return parts;
}

/** Checks one envelope against the schema and the size limit, or throws a typed error. */
export function assertValidEnvelope(envelope: EventEnvelope, index = 0): void {
  assertEnvelopeSchema(envelope, index);
  serializeWithinLimit(envelope, index);
}

const ENVELOPE_FIELDS = new Set<string>((schema as { required: string[] }).required);

function unknownFields(keys: string[]): Record<string, string> {
  return Object.fromEntries(
    keys.map((k) => [k, k === 'recordedAt' ? 'is set by the ledger' : 'is not an envelope field']),
  );
}

/** New events completed into envelopes, each with its JSON (what the adapters store or send). */
export type PreparedBatch = { envelopes: EventEnvelope[]; json: EnvelopeJson[] };

/**
 * Completes new events into envelopes (UUIDv7 ids, `recordedAt`, nulls, schema version 1) and
 * validates the whole batch before anything is written: one bad event refuses the batch.
 */
export function prepareEnvelopes(events: readonly NewEvent[], recordedAt: Date): EventEnvelope[] {
  return prepareBatch(events, recordedAt).envelopes;
}

/** `prepareEnvelopes`, also giving each envelope's JSON: serialized once, for the size check and the write. */
export function prepareBatch(events: readonly NewEvent[], recordedAt: Date): PreparedBatch {
  const at = recordedAt.toISOString();
  const json: EnvelopeJson[] = [];
  const envelopes = events.map((e, index) => {
    const envelope: EventEnvelope = {
      id: e.id ?? uuidv7(),
      type: e.type,
      communityId: e.communityId,
      subject: e.subject ?? null,
      occurredAt: e.occurredAt,
      recordedAt: at,
      source: e.source,
      actor: e.actor ?? null,
      causationId: e.causationId ?? null,
      correlationId: e.correlationId ?? null,
      schemaVersion: e.schemaVersion ?? 1,
      data: e.data,
    };
    const unknown = Object.keys(e).filter((k) => !ENVELOPE_FIELDS.has(k) || k === 'recordedAt');
    try {
      assertEnvelopeSchema(envelope, index);
    } catch (err) {
      if (err instanceof LedgerValidationError && unknown.length > 0) {
        throw new LedgerValidationError({ ...err.fields, ...unknownFields(unknown) }, index);
      }
      throw err;
    }
    if (unknown.length > 0) throw new LedgerValidationError(unknownFields(unknown), index);
    // One spelling of each instant (millisecond UTC), whatever the store: hashes depend on it.
    const occurred = new Date(envelope.occurredAt);
    if (Number.isNaN(occurred.getTime()))
      throw new LedgerValidationError({ occurredAt: 'must be a real instant' }, index);
    envelope.occurredAt = occurred.toISOString();
    json.push(serializeWithinLimit(envelope, index));
    return envelope;
  });
  return { envelopes, json };
}

/** Optional guard given to adapters: does this community exist (in this region)? */
export type CommunityExists = (communityId: string) => Promise<boolean>;

export async function assertCommunitiesExist(
  envelopes: readonly EventEnvelope[],
  communityExists: CommunityExists | undefined,
): Promise<void> {
  if (!communityExists) return;
  for (const id of new Set(envelopes.map((e) => e.communityId))) {
    if (!(await communityExists(id))) throw new UnknownCommunityError(id);
  }
}

/** The envelope of a recorded event, without its position. */
export function envelopeOf(event: EventEnvelope | RecordedEvent): EventEnvelope {
  return {
    id: event.id,
    type: event.type,
    communityId: event.communityId,
    subject: event.subject,
    occurredAt: event.occurredAt,
    recordedAt: event.recordedAt,
    source: event.source,
    actor: event.actor,
    causationId: event.causationId,
    correlationId: event.correlationId,
    schemaVersion: event.schemaVersion,
    data: event.data,
  };
}

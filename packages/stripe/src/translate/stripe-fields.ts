// Small readers over untyped Stripe JSON: a field is either there with the expected type or absent.
import type { EpochMs } from '@gatehouse/domain';

export type Json = Record<string, unknown>;

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function record(value: unknown): Json {
  return isRecord(value) ? value : {};
}

export function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

export function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function bool(value: unknown): boolean | null {
  return typeof value === 'boolean' ? value : null;
}

/** Stripe unix seconds → epoch milliseconds (null stays null). */
export function ms(value: unknown): EpochMs | null {
  const s = num(value);
  return s === null ? null : s * 1000;
}

/** The id of a reference that may be expanded: `"cus_…"` or `{ id: "cus_…", … }`. */
export function idOf(value: unknown): string | null {
  if (typeof value === 'string') return value || null;
  return isRecord(value) ? str(value.id) : null;
}

/** The `data` of a Stripe list (`{ object: 'list', data: [...] }`), or a bare array. */
export function listData(value: unknown): Json[] {
  const data = Array.isArray(value) ? value : isRecord(value) && Array.isArray(value.data) ? value.data : [];
  return data.filter(isRecord);
}

export function metadataOf(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(value))) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Checks `object` and returns the object, or throws: a translator applied to the wrong object is a bug. */
export function expectObject(value: unknown, object: string): Json {
  const o = record(value);
  if (o.object !== object || typeof o.id !== 'string') {
    throw new TypeError(`Expected a Stripe ${object}, got ${String(o.object ?? typeof value)}`);
  }
  return o;
}

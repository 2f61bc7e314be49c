import { invalid, required } from './fake-stripe-store';

export type Params = Record<string, unknown>;

export function param(params: Params, name: string): unknown {
  return params[name];
}

export function strParam(params: Params, name: string): string | undefined {
  const v = params[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw invalid(name, `Invalid string: ${name}`);
  return v;
}

export function requiredStr(params: Params, name: string): string {
  const v = strParam(params, name);
  if (v === undefined) throw required(name);
  return v;
}

export function intParam(params: Params, name: string): number | undefined {
  const v = strParam(params, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw invalid(name, `Invalid integer: ${v}`);
  return Number(v);
}

export function numParam(params: Params, name: string): number | undefined {
  const v = strParam(params, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw invalid(name, `Invalid decimal: ${v}`);
  return n;
}

export function boolParam(params: Params, name: string): boolean | undefined {
  const v = strParam(params, name);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw invalid(name, `Invalid boolean: ${v}`);
  return v === 'true';
}

export function objParam(params: Params, name: string): Params | undefined {
  const v = params[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(name, `Invalid hash: ${name}`);
  return v as Params;
}

/** `items[0][price]=…` arrives as an array (or, past qs' array limit, as an index-keyed object). */
export function arrayParam(params: Params, name: string): Params[] {
  const v = params[name];
  if (v === undefined || v === '') return [];
  const list = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? Object.values(v) : null;
  if (!list) throw invalid(name, `Invalid array: ${name}`);
  return list.map((e) => (typeof e === 'object' && e !== null ? (e as Params) : { value: e }));
}

export function metadataParam(params: Params, name = 'metadata'): Record<string, string> {
  const m = objParam(params, name) ?? {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (typeof v === 'string' && v !== '') out[k] = v;
  return out;
}

export function expandParam(params: Params): string[] {
  const v = params.expand;
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((e): e is string => typeof e === 'string');
}

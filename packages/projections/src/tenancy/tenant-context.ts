import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidTenantError } from './tenancy.errors';

/** The setting the row-level security policy compares with `community_id`. */
export const TENANT_SETTING = 'gatehouse.community';
/** The setting's value for system work (projector, ledger, migrations, CLI): every community. */
export const SYSTEM_TENANT = '*';

type TenantScope = { readonly tenant: string };

const scope = new AsyncLocalStorage<TenantScope>();

/** Runs `fn` with reads scoped to one community. */
export function runAsTenant<T>(communityId: string, fn: () => T): T {
  if (!isTenantId(communityId)) throw new InvalidTenantError(communityId);
  return scope.run({ tenant: communityId }, fn);
}

/** Runs `fn` with reads over every community (join pages, webhooks, creating a community, rebuilds). */
export function runAsSystem<T>(fn: () => T): T {
  return scope.run({ tenant: SYSTEM_TENANT }, fn);
}

/** Runs `fn` with no tenant, whatever the caller's scope: scoped reads then see no rows. */
export function runWithoutTenant<T>(fn: () => T): T {
  return scope.run({ tenant: '' }, fn);
}

/** The value `gatehouse.community` takes in the current transaction ('' when there is no tenant). */
export function currentTenant(): string {
  return scope.getStore()?.tenant ?? '';
}

/** Whether a community id can name a tenant: not empty and not the system wildcard. */
export function isTenantId(communityId: string | undefined | null): communityId is string {
  return typeof communityId === 'string' && communityId !== '' && communityId !== SYSTEM_TENANT;
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return Array.isArray(value) || proto === Object.prototype || proto === null;
}

function bindTo(tenant: string, value: unknown, seen: Map<object, unknown>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return seen.get(value);
  if (!isPlain(value)) return value;
  seen.set(value, value);
  let lazy = false;
  for (const key of Object.keys(value)) {
    const d = Object.getOwnPropertyDescriptor(value, key)!;
    if (d.get) lazy = true;
    else if (d.writable) {
      const bound = bindTo(tenant, d.value, seen);
      if (bound !== d.value) (value as Record<string, unknown>)[key] = bound;
    }
  }
  if (!lazy) return value;
  const proxy = new Proxy(value, {
    get(target, prop, receiver) {
      const read = () => Reflect.get(target, prop, receiver) as unknown;
      return Object.getOwnPropertyDescriptor(target, prop)?.get ? scope.run({ tenant }, read) : read();
    },
  });
  seen.set(value, proxy);
  return proxy;
}

/**
 * `value` with its lazy fields (getters, at any depth in plain objects and arrays) bound to the
 * current scope: GraphQL reads them after the service call has returned, outside its scope.
 */
export function bindLazyFields<T>(value: T): T {
  return bindTo(currentTenant(), value, new Map()) as T;
}

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

/**
 * Defines `key` on `target` as a field computed when read, in the tenant scope current now: GraphQL
 * reads such fields (an access grant's `causedBy`) after the service call has returned, outside its
 * scope, and must not read them as whatever community it is serving then.
 */
export function defineLazyField<T extends object, V>(target: T, key: string, read: () => V): T {
  const store = scope.getStore() ?? { tenant: '' };
  Object.defineProperty(target, key, { enumerable: true, get: () => scope.run(store, read) });
  return target;
}

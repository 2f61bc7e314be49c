import { InvalidTenantError } from './tenancy.errors';
import {
  SYSTEM_TENANT,
  defineLazyField,
  currentTenant,
  isTenantId,
  runAsSystem,
  runAsTenant,
  runWithoutTenant,
} from './tenant-context';

describe('tenant context', () => {
  it('has no tenant outside any scope', () => {
    expect(currentTenant()).toBe('');
  });

  it('keeps the tenant across awaits inside runAsTenant, and drops it after', async () => {
    const seen = await runAsTenant('c1', async () => {
      await new Promise((r) => setTimeout(r, 1));
      return currentTenant();
    });
    expect(seen).toBe('c1');
    expect(currentTenant()).toBe('');
  });

  it('keeps concurrent calls apart', async () => {
    const read = (id: string) =>
      runAsTenant(id, async () => {
        await new Promise((r) => setTimeout(r, id === 'a' ? 5 : 1));
        return currentTenant();
      });
    expect(await Promise.all([read('a'), read('b')])).toEqual(['a', 'b']);
  });

  it('reads every community as system, and nothing inside runWithoutTenant', () => {
    expect(runAsSystem(() => currentTenant())).toBe(SYSTEM_TENANT);
    expect(runAsSystem(() => runWithoutTenant(() => currentTenant()))).toBe('');
    expect(runAsSystem(() => runAsTenant('c1', () => currentTenant()))).toBe('c1');
  });

  it('refuses the wildcard or an empty id as a tenant, so a caller cannot ask for every community', () => {
    expect(() => runAsTenant(SYSTEM_TENANT, () => undefined)).toThrow(InvalidTenantError);
    expect(() => runAsTenant('', () => undefined)).toThrow(InvalidTenantError);
    expect(isTenantId('*')).toBe(false);
    expect(isTenantId(undefined)).toBe(false);
    expect(isTenantId('in_abc')).toBe(true);
  });
});

describe('lazy fields of a result', () => {
  const lazy = () => {
    const grant = { source: 'SUBSCRIPTION' } as { source: string; causedBy?: string };
    defineLazyField(grant, 'causedBy', () => currentTenant());
    return { allowed: true, grants: [grant] };
  };

  it('are read in the scope of the call that made them, however late', () => {
    const decision = runAsTenant('c1', () => lazy());
    expect(decision.grants[0].causedBy).toBe('c1');
    expect(runAsTenant('c2', () => decision.grants[0].causedBy)).toBe('c1');
    expect(runAsSystem(() => decision.grants[0].causedBy)).toBe('c1');
    expect(decision.grants[0].source).toBe('SUBSCRIPTION');
    expect(Object.keys(decision.grants[0])).toEqual(['source', 'causedBy']);
  });

  it('made outside any scope, read no tenant even inside one', () => {
    const decision = lazy();
    expect(runAsTenant('c2', () => decision.grants[0].causedBy)).toBe('');
    expect(runAsSystem(() => decision.grants[0].causedBy)).toBe('');
  });
});

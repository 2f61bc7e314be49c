import type { Region } from './config';
import { GatehouseError } from './graphql/errors';
import type { GatehouseServices } from './graphql/services';
import type { RegionRuntime } from './region';

// Several regions: every call goes to the region that holds the community. A community id made in a
// multi-region deployment starts with its region (`in_…`), so routing needs no shared directory.

export function communityIdPrefix(region: Region): string {
  return `${region}_`;
}

export function regionOfCommunity<T extends { region: Region }>(
  regions: readonly T[],
  fallback: T,
  communityId: string,
): T {
  const m = /^(us|eu|in)_/.exec(communityId);
  return (m && regions.find((r) => r.region === m[1])) || fallback;
}

// How each operation names its community: first argument, or in the (caller, …) position.
const BY_FIRST_ARG = new Set([
  'community',
  'communityExists',
  'price',
  'product',
  'membership',
  'canAccess',
  'accessHistory',
  'accessList',
  'ledgerEvents',
  'previewTierChange',
  'prorationOutcomes',
  'upsellOffers',
  'promoCodes',
]);

/** The community a service call is about, from its arguments (undefined when it names none). */
export function communityIdOf(method: string, args: unknown[]): string | undefined {
  if (BY_FIRST_ARG.has(method)) return typeof args[0] === 'string' ? args[0] : undefined;
  const second = args[1];
  if (typeof second === 'string') return second;
  if (
    second &&
    typeof second === 'object' &&
    typeof (second as { communityId?: unknown }).communityId === 'string'
  ) {
    return (second as { communityId: string }).communityId;
  }
  return undefined;
}

export function routeServices(regions: readonly RegionRuntime[], defaultRegion: Region): GatehouseServices {
  const fallback = regions.find((r) => r.region === defaultRegion) ?? regions[0];
  const target = {} as GatehouseServices;
  return new Proxy(target, {
    get(_t, name: string) {
      if (name === 'createCommunity') {
        return (caller: never, input: { region: string }) => {
          const region = regions.find((r) => r.region === input.region.toLowerCase());
          if (!region) {
            throw new GatehouseError(
              'BAD_USER_INPUT',
              `Region ${input.region} is not configured on this deployment`,
              {
                region: 'is not served here',
              },
            );
          }
          return region.services.createCommunity(caller, input as never);
        };
      }
      if (name === 'rebuildProjections') {
        return async (caller: never, communityId?: string) => {
          const chosen = communityId ? [regionOfCommunity(regions, fallback, communityId)] : regions;
          const reports = await Promise.all(
            chosen.map((r) => r.services.rebuildProjections(caller, communityId)),
          );
          return reports.flat();
        };
      }
      return (...args: unknown[]) => {
        const communityId = communityIdOf(name, args);
        const region = communityId ? regionOfCommunity(regions, fallback, communityId) : fallback;
        const fn = (region.services as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
        return fn.apply(region.services, args);
      };
    },
  });
}

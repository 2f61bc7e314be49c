import type Stripe from 'stripe';
import type { Ledger } from '@gatehouse/ledger';
import {
  AccessIndex,
  AccessQuery,
  CatalogQuery,
  LedgerEventsQuery,
  MembershipQuery,
  isTenantId,
  runAsSystem,
  runAsTenant,
  runWithoutTenant,
  type Projector,
} from '@gatehouse/projections';
import { AccessService, resourceRefOrThrow } from './access.service';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { GatehouseError } from '../graphql/errors';
import type { GatehouseServices } from '../graphql/services';
import { CatalogService } from './catalog.service';
import { advisoryStripeAccountLock, type StripeAccountLock } from './advisory-locks';
import { createCommerceService, type CommerceService } from './commerce.service';
import { toLedgerEvent } from './ledger-events.mapper';
import { createTiersService } from './tiers.service';
import { ImportService, joinCommunity } from './import.service';
import { MigrationQuery, ProjectorNotLeadingError } from '@gatehouse/projections';
import { ResourceKind } from '../graphql/enums';
import { communityIdOf } from '../region-router';

export * from './import.service';
export * from './reconcile-window-store';
export * from './installments';
export * from './advisory-locks';

export type ServiceDeps = {
  /** System work: commands' lookups, the webhook directory, join pages. */
  dataSource: DataSource;
  /** The query objects' reads, scoped to each call's community (default: `dataSource`). */
  readSource?: DataSource;
  ledger: Ledger;
  projector: Projector;
  stripe: Stripe | null;
  log: Logger;
  publicUrl: string | (() => string);
  clock?: () => Date;
  waitMs?: number;
  accessIndex?: AccessIndex;
  /** Prefix of new community ids: the region, when several run (ids then say where a community lives). */
  communityIdPrefix?: string;
  /** Called after a community is linked to a Stripe (Connect) account. */
  onStripeAccountLinked?: (accountId: string, communityId: string) => Promise<void>;
  /** The community a Stripe account is linked to, in any region (default: this region's catalog). */
  communityForStripeAccount?: (accountId: string) => Promise<string | null>;
  /**
   * Serialises the linking of a Stripe account wherever it may be linked (default: an advisory lock
   * in this region's database; several regions share the default region's).
   */
  stripeAccountLock?: StripeAccountLock;
};

/** The services behind the GraphQL resolvers, built from the read models, the ledger and Stripe. */
export type Services = GatehouseServices & { catalogQuery: CatalogQuery; commerce: CommerceService };

// Each call reads as the community it names; these two read every community.
const SYSTEM_CALLS = new Set(['createCommunity', 'rebuildProjections']);

/** Enters the tenant context once per service call: the read data source scopes every query to it. */
function scopedToTenant(services: Services): Services {
  const scoped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(services)) {
    if (typeof value !== 'function') continue;
    scoped[name] = (...args: unknown[]) => {
      // Lazy fields of the result (an access grant's `causedBy`) carry this scope: `defineLazyField`.
      const call = () => (value as (...a: unknown[]) => unknown).apply(services, args);
      if (SYSTEM_CALLS.has(name)) return runAsSystem(call);
      const communityId = communityIdOf(name, args);
      return isTenantId(communityId) ? runAsTenant(communityId, call) : runWithoutTenant(call);
    };
  }
  // Join pages find a community by an invitation token alone, so they read as system.
  const commerce = new Proxy(services.commerce, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (...a: unknown[]) => runAsSystem(() => v.apply(target, a)) : v;
    },
  });
  // Webhook directory and reconciler lookups span communities: that catalog reads the system source.
  return { ...(scoped as unknown as GatehouseServices), catalogQuery: services.catalogQuery, commerce };
}

/** A Stripe account belongs to one community: its events are routed by it. */
function stripeAccountTaken(account: string): GatehouseError {
  return new GatehouseError('CONFLICT', `Stripe account ${account} is already linked to another community`, {
    stripeAccountId: 'is linked to another community',
  });
}

export function createGatehouseServices(deps: ServiceDeps): Services {
  const clock = deps.clock ?? (() => new Date());
  const reads = deps.readSource ?? deps.dataSource;
  const catalogQuery = new CatalogQuery(reads);
  const ledgerEvents = new LedgerEventsQuery(reads);
  const commands = { ledger: deps.ledger, projector: deps.projector, clock, waitMs: deps.waitMs ?? 10_000 };
  const catalog = new CatalogService({
    ...commands,
    catalog: catalogQuery,
    stripe: deps.stripe,
    communityIdPrefix: deps.communityIdPrefix,
  });
  const commerce = createCommerceService({ ...deps, dataSource: reads });
  const tiers = createTiersService({ ...deps, dataSource: reads });
  const accessIndex = deps.accessIndex ?? new AccessIndex();
  const access = new AccessService({
    ds: reads,
    access: new AccessQuery(reads, accessIndex),
    memberships: new MembershipQuery(reads, accessIndex),
    now: () => clock().getTime(),
  });

  const systemCatalog = new CatalogQuery(deps.dataSource);
  const linkedTo =
    deps.communityForStripeAccount ?? ((account: string) => systemCatalog.communityForStripeAccount(account));
  const lockStripeAccount = deps.stripeAccountLock ?? advisoryStripeAccountLock(deps.dataSource);
  return scopedToTenant({
    catalogQuery: systemCatalog,
    commerce,
    community: (id) => catalog.community(id),
    communityExists: (id) => catalogQuery.exists(id),
    price: (c, p) => catalog.price(c, p),
    product: (c, k, id) => catalog.product(c, k, id),
    async ledgerEvents(communityId, after, first, types) {
      const page = await ledgerEvents.page({ communityId, after, first, types });
      return {
        edges: page.edges.map((e) => ({ cursor: e.cursor, node: toLedgerEvent(e.node) })),
        pageInfo: page.pageInfo,
      };
    },
    async createCommunity(caller, input) {
      const account = input.stripeAccountId;
      if (!account) return catalog.createCommunity(caller, input);
      // Under the account's lock the community made by an earlier request is in the catalog (the
      // command waits for its projection), whichever region holds it.
      const community = await lockStripeAccount(account, async () => {
        if (await linkedTo(account)) throw stripeAccountTaken(account);
        try {
          return await catalog.createCommunity(caller, input);
        } catch (err) {
          // Linked meanwhile by a caller outside the lock's database (a region's own unique index).
          if (await linkedTo(account)) throw stripeAccountTaken(account);
          throw err;
        }
      });
      // The community is made and linked whatever the release does: what stays held is released by
      // the projecting server's quarantine sweep.
      await deps
        .onStripeAccountLinked?.(account, community.id)
        .catch((err: unknown) =>
          deps.log.warn(
            { err, account, communityId: community.id },
            'the Stripe events held for this account were not released now; the projecting server releases them within 30 s',
          ),
        );
      return community;
    },
    createTier: (caller, input) => catalog.createTier(caller, input),
    createGroup: (caller, input) => catalog.createGroup(caller, input),
    createEvent: (caller, input) => catalog.createEvent(caller, input),
    createPrice: (caller, input) => catalog.createPrice(caller, input),
    setPaidOnly: (caller, input) => catalog.setPaidOnly(caller, input),

    previewTierChange: (c, m, toPriceId, at) => tiers.previewTierChange(c, m, toPriceId, at),
    prorationOutcomes: (c, m) => tiers.prorationOutcomes(c, m),
    upsellOffers: (c, m) => tiers.upsellOffers(c, m),
    promoCodes: (c) => commerce.promoCodes(c),
    changePrice: (caller, input) => tiers.changePrice(caller, input),
    createPromoCode: (caller, input) => commerce.createPromoCode(caller, input),
    createInvitationLink: (caller, input) => commerce.createInvitationLink(caller, input),
    startCheckout: (caller, input) => commerce.startCheckout(caller, input),
    changeTier: (caller, input) => tiers.changeTier(caller, input),
    billingPortalUrl: (caller, c, m, returnUrl) => commerce.billingPortalUrl(caller, c, m, returnUrl),
    importStripeSubscriptions: (caller, input) =>
      new ImportService({
        ...commands,
        stripe: deps.stripe,
        catalog: catalogQuery,
        migration: new MigrationQuery(deps.dataSource),
        waitFor: (communityId, appended) =>
          deps.projector.waitForAppended(communityId, appended, commands.waitMs),
      }).importStripeSubscriptions(caller, input),
    async joinCommunity(caller, input) {
      await joinCommunity({ ...commands, catalog: catalogQuery }, caller, input);
      return access.canAccess(input.communityId, input.memberId, { kind: ResourceKind.COMMUNITY });
    },
    migrateGroupToTiers: (caller, input) => tiers.migrateGroupToTiers(caller, input),
    // The tiers service's view adds a pending price migration as the scheduled change.
    membership: (c, m, asOf) => tiers.membership(c, m, asOf),
    canAccess: (c, m, r, at, asKnownAt) => access.canAccess(c, m, r, at, asKnownAt),
    accessHistory: (c, m, first, after) => access.accessHistory(c, m, first, after),
    accessList: (c, r, at, first, after) => access.accessList(c, r, at, first, after),
    async grantComplimentaryAccess(caller, input) {
      const resource = resourceRefOrThrow(input.resource);
      await catalog.setComplimentaryAccess(caller, input.communityId, input.memberId, resource, {
        grant: true,
        until: input.until ?? undefined,
        reason: input.reason,
      });
      return access.canAccess(input.communityId, input.memberId, input.resource);
    },
    async revokeComplimentaryAccess(caller, communityId, memberId, resourceInput, reason) {
      const resource = resourceRefOrThrow(resourceInput);
      await catalog.setComplimentaryAccess(caller, communityId, memberId, resource, { grant: false, reason });
      return access.canAccess(communityId, memberId, resourceInput);
    },
    async rebuildProjections(_caller, communityId) {
      if (communityId) {
        // Projections are rebuilt whole; a community id only checks that it exists.
        if (!(await catalogQuery.exists(communityId)))
          throw new GatehouseError('NOT_FOUND', 'Community not found');
      }
      const reports = await deps.projector.rebuild().catch((err: unknown) => {
        if (err instanceof ProjectorNotLeadingError) throw new GatehouseError('CONFLICT', err.message);
        throw err;
      });
      return reports.map((r) => ({ projection: r.projection, events: r.events, seconds: r.seconds }));
    },
  });
}

import { v7 as uuidv7 } from 'uuid';
import type Stripe from 'stripe';
import {
  decideCatalog,
  emptyCatalog,
  stripeRecurringFor,
  type Catalog,
  type CatalogCommand,
  type ProductRef,
  type ResourceRef,
} from '@gatehouse/domain';
import type { CatalogQuery } from '@gatehouse/projections';
import { retryingRateLimited } from '@gatehouse/stripe';
import type { Caller } from '../auth/auth';
import { GatehouseError } from '../graphql/errors';
import type {
  CreateCommunityInput,
  CreateEventInput,
  CreateGroupInput,
  CreatePriceInput,
  CreateTierInput,
  SetPaidOnlyInput,
} from '../graphql/inputs';
import type { Community, Event, Group, Price, Tier } from '../graphql/types';
import { appendAndWait, type CommandContext } from './commands';
import { toCommunity, toEvent, toGroup, toPrice, toTier } from './catalog.mapper';

export type CatalogServiceDeps = CommandContext & {
  catalog: CatalogQuery;
  /** Null when STRIPE_SECRET_KEY is not set. */
  stripe: Stripe | null;
  communityIdPrefix?: string;
};

export function stripeOrThrow(stripe: Stripe | null): Stripe {
  if (!stripe) throw new GatehouseError('STRIPE_ERROR', 'Stripe is not configured: set STRIPE_SECRET_KEY');
  return stripe;
}

/** Request options that address a community's connected Stripe account, when it has one. */
export function stripeAccountOf(catalog: Catalog): { stripeAccount?: string } {
  return catalog.community?.stripeAccountId ? { stripeAccount: catalog.community.stripeAccountId } : {};
}

/**
 * The waits before a request made for a member or an admin, refused for Stripe's rate (429), is made
 * again: short, as someone waits for the answer. A refused request was not carried out, so making it
 * again is safe (writes carry idempotency keys besides).
 */
export const INTERACTIVE_RATE_LIMIT_BACKOFF_MS: readonly number[] = [250, 500, 1_000];

/**
 * Stripe's own errors become STRIPE_ERROR with Stripe's message; everything else passes through. A
 * refusal for Stripe's rate is tried again after each of `rateLimitBackoffMs` first.
 */
export async function callStripe<T>(
  what: string,
  fn: () => Promise<T>,
  rateLimitBackoffMs: readonly number[] = INTERACTIVE_RATE_LIMIT_BACKOFF_MS,
): Promise<T> {
  try {
    return await retryingRateLimited(fn, { backoffMs: rateLimitBackoffMs })();
  } catch (err) {
    const e = err as { type?: string; message?: string };
    if (typeof e.type === 'string' && e.type.startsWith('Stripe')) {
      throw new GatehouseError('STRIPE_ERROR', `Stripe refused to ${what}: ${e.message ?? e.type}`);
    }
    throw err;
  }
}

export class CatalogService {
  constructor(private readonly deps: CatalogServiceDeps) {}

  catalogOrThrow(communityId: string): Promise<Catalog> {
    return this.deps.catalog.getOrThrow(communityId);
  }

  async community(id: string): Promise<Community | null> {
    const catalog = await this.deps.catalog.get(id);
    return catalog ? toCommunity(catalog) : null;
  }

  async price(communityId: string, priceId: string): Promise<Price | null> {
    const catalog = await this.deps.catalog.get(communityId);
    const p = catalog?.prices[priceId];
    return p ? toPrice(communityId, p) : null;
  }

  async product(
    communityId: string,
    kind: ProductRef['kind'],
    id: string,
  ): Promise<Tier | Group | Event | null> {
    const catalog = await this.deps.catalog.get(communityId);
    if (!catalog) return null;
    if (kind === 'TIER') return catalog.tiers[id] ? toTier(communityId, catalog, id) : null;
    if (kind === 'GROUP') return catalog.groups[id] ? toGroup(communityId, catalog, id) : null;
    return catalog.events[id] ? toEvent(communityId, catalog, id) : null;
  }

  private async decideAndAppend(
    caller: Caller,
    communityId: string,
    command: CatalogCommand,
    catalog?: Catalog,
  ): Promise<Catalog> {
    const state =
      catalog ??
      (command.type === 'createCommunity' ? emptyCatalog() : await this.catalogOrThrow(communityId));
    const facts = decideCatalog(command, state, this.deps.clock().getTime());
    await appendAndWait(this.deps, communityId, caller.sub, facts);
    return this.catalogOrThrow(communityId);
  }

  async createCommunity(caller: Caller, input: CreateCommunityInput): Promise<Community> {
    const communityId = `${this.deps.communityIdPrefix ?? ''}${uuidv7()}`;
    const catalog = await this.decideAndAppend(caller, communityId, {
      type: 'createCommunity',
      data: {
        communityId,
        name: input.name,
        region: input.region.toLowerCase(),
        stripeAccountId: input.stripeAccountId ?? undefined,
        paidOnly: input.paidOnly ?? undefined,
        pastDueGraceDays: input.pastDueGraceDays ?? undefined,
      },
    });
    return toCommunity(catalog)!;
  }

  async createTier(caller: Caller, input: CreateTierInput): Promise<Tier> {
    const tierId = uuidv7();
    const catalog = await this.decideAndAppend(caller, input.communityId, {
      type: 'createTier',
      data: {
        tierId,
        name: input.name,
        rank: input.rank,
        groupIds: input.groupIds ?? undefined,
        stripeProductId: input.stripeProductId ?? undefined,
      },
    });
    return toTier(input.communityId, catalog, tierId);
  }

  async createGroup(caller: Caller, input: CreateGroupInput): Promise<Group> {
    const groupId = uuidv7();
    const catalog = await this.decideAndAppend(caller, input.communityId, {
      type: 'createGroup',
      data: { groupId, name: input.name, stripeProductId: input.stripeProductId ?? undefined },
    });
    return toGroup(input.communityId, catalog, groupId);
  }

  async createEvent(caller: Caller, input: CreateEventInput): Promise<Event> {
    const eventId = uuidv7();
    const catalog = await this.decideAndAppend(caller, input.communityId, {
      type: 'createEvent',
      data: {
        eventId,
        name: input.name,
        startsAt: input.startsAt.getTime(),
        endsAt: input.endsAt.getTime(),
        capacity: input.capacity ?? undefined,
        stripeProductId: input.stripeProductId ?? undefined,
      },
    });
    return toEvent(input.communityId, catalog, eventId);
  }

  /** Links an existing Stripe price, or creates one (and its product when needed) in Stripe first. */
  async createPrice(caller: Caller, input: CreatePriceInput): Promise<Price> {
    const catalog = await this.catalogOrThrow(input.communityId);
    const priceId = uuidv7();
    const currency = input.currency.toLowerCase();
    const product = { kind: input.product.kind, id: input.product.id } as ProductRef;
    const base = {
      priceId,
      product,
      amount: input.amount,
      currency,
      frequency: input.frequency,
      installments: input.installments ?? undefined,
      trialDays: input.trialDays ?? undefined,
    };
    // Validate before anything is created in Stripe.
    decideCatalog(
      { type: 'createPrice', data: { ...base, stripePriceId: input.stripePriceId ?? 'price_pending' } },
      catalog,
      this.deps.clock().getTime(),
    );

    let stripePriceId = input.stripePriceId ?? undefined;
    let stripeProductId = productStripeId(catalog, product);
    const stripe = this.deps.stripe;
    const account = catalog.community?.stripeAccountId
      ? { stripeAccount: catalog.community.stripeAccountId }
      : {};
    if (stripePriceId) {
      if (stripe) {
        const existing = await callStripe('read the price', () =>
          stripe.prices.retrieve(stripePriceId!, {}, account),
        );
        stripeProductId = typeof existing.product === 'string' ? existing.product : existing.product.id;
      }
    } else {
      const s = stripeOrThrow(stripe);
      if (!stripeProductId) {
        const name = productName(catalog, product);
        const created = await callStripe('create the product', () =>
          s.products.create(
            {
              name,
              metadata: {
                gatehouse_community_id: input.communityId,
                gatehouse_product: `${product.kind}:${product.id}`,
              },
            },
            { idempotencyKey: `gatehouse:product:${product.kind}:${product.id}`, ...account },
          ),
        );
        stripeProductId = created.id;
      }
      const recurring =
        input.frequency === 'INSTALLMENTS'
          ? { interval: 'month' as const, interval_count: 1 }
          : stripeRecurringFor(input.frequency);
      const created = await callStripe('create the price', () =>
        s.prices.create(
          {
            product: stripeProductId!,
            unit_amount: input.amount,
            currency,
            ...(recurring ? { recurring } : {}),
            metadata: { gatehouse_community_id: input.communityId, gatehouse_price_id: priceId },
          },
          { idempotencyKey: `gatehouse:price:${priceId}`, ...account },
        ),
      );
      stripePriceId = created.id;
    }
    const next = await this.decideAndAppend(
      caller,
      input.communityId,
      { type: 'createPrice', data: { ...base, stripePriceId, stripeProductId } },
      catalog,
    );
    return toPrice(input.communityId, next.prices[priceId]);
  }

  /** Appends a complimentary grant (or its revocation) for a member; the caller answers from the access read model. */
  async setComplimentaryAccess(
    caller: Caller,
    communityId: string,
    memberId: string,
    resource: ResourceRef,
    change: { grant: true; until?: Date; reason: string } | { grant: false; reason: string },
  ): Promise<void> {
    const catalog = await this.catalogOrThrow(communityId);
    const command: CatalogCommand = change.grant
      ? {
          type: 'grantComplimentaryAccess',
          data: { memberId, resource, until: change.until?.getTime(), reason: change.reason },
        }
      : { type: 'revokeComplimentaryAccess', data: { memberId, resource, reason: change.reason } };
    const facts = decideCatalog(command, catalog, this.deps.clock().getTime());
    await appendAndWait(this.deps, communityId, caller.sub, facts, { subject: memberId });
  }

  async setPaidOnly(caller: Caller, input: SetPaidOnlyInput): Promise<Community> {
    const catalog = await this.decideAndAppend(caller, input.communityId, {
      type: 'setPaidOnly',
      data: { paidOnly: input.paidOnly, freeMembersUntil: input.freeMembersUntil?.getTime() },
    });
    return toCommunity(catalog)!;
  }
}

/**
 * The Stripe product behind one of ours: the one it was created with, else the one an earlier price
 * of it was created under (Stripe's idempotency keys last 24 hours: a key alone would let a price
 * added a day later make a second product).
 */
function productStripeId(catalog: Catalog, product: ProductRef): string | undefined {
  const own =
    product.kind === 'TIER'
      ? catalog.tiers[product.id]?.stripeProductId
      : product.kind === 'GROUP'
        ? catalog.groups[product.id]?.stripeProductId
        : catalog.events[product.id]?.stripeProductId;
  return (
    own ??
    Object.values(catalog.prices).find(
      (p) => p.product.kind === product.kind && p.product.id === product.id && p.stripeProductId,
    )?.stripeProductId
  );
}

function productName(catalog: Catalog, product: ProductRef): string {
  const community = catalog.community?.name ?? '';
  if (product.kind === 'TIER') return `${community} — ${catalog.tiers[product.id]?.name ?? 'tier'}`;
  if (product.kind === 'GROUP') return `${community} — ${catalog.groups[product.id]?.name ?? 'group'}`;
  return `${community} — ${catalog.events[product.id]?.name ?? 'event'}`;
}

import { v7 as uuidv7 } from 'uuid';
import type Stripe from 'stripe';
import {
  BadUserInputError,
  NotFoundError,
  decideCatalog,
  grantsFor,
  memberCommerceView,
  membershipView,
  mergeCommerceViews,
  planPriceMigration,
  planTierChange,
  priceByStripePriceId,
  priceOrThrow,
  selectUpsells,
  stripeRecurringFor,
  toStripeSeconds,
  type Catalog,
  type ChangeTiming as DomainTiming,
  type MemberPriceMigrationScheduled,
  type MigrationStep,
  type Price as DomainPrice,
  type PriceMigrationCompleted,
  type PriceMigrationKind,
  type ProrationPreview as DomainPreview,
  type SubscriptionSnapshot,
  type TierChangePlan,
  type TierChangeRequested,
} from '@gatehouse/domain';
import type { Ledger } from '@gatehouse/ledger';
import {
  CatalogQuery,
  CommerceQuery,
  MembershipQuery,
  TiersQuery,
  type AccessIndex,
  type Projector,
} from '@gatehouse/projections';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Caller } from '../auth/auth';
import { ChangeTiming } from '../graphql/enums';
import type { ChangePriceInput, ChangeTierInput, MigrateGroupToTiersInput } from '../graphql/inputs';
import type {
  ImportReport,
  Membership,
  Price,
  ProrationOutcome,
  ProrationPreview,
  UpsellOffer,
} from '../graphql/types';
import { toEvent, toGroup, toPrice, toTier } from './catalog.mapper';
import { toMembership } from './membership.mapper';
import { callStripe, stripeAccountOf, stripeOrThrow } from './catalog.service';
import { appendAndWait, type CommandContext } from './commands';
import { toLedgerEvent } from './ledger-events.mapper';

export type TiersServiceDeps = CommandContext & {
  catalog: CatalogQuery;
  members: MembershipQuery;
  tiers: TiersQuery;
  /** Trials seen at checkout (one trial per member per product). */
  commerce?: CommerceQuery;
  /** Null when STRIPE_SECRET_KEY is not set. */
  stripe: Stripe | null;
  log: Logger;
};

const sec = toStripeSeconds;

/**
 * Tier changes (previews, immediate changes and scheduled downgrades), proration outcomes, upsells,
 * price changes and the migrations of subscribers between prices. Requests are recorded as facts before
 * Stripe is called; what the member holds follows the Stripe events that come back.
 */
export class TiersService {
  constructor(private readonly deps: TiersServiceDeps) {}

  private now(): number {
    return this.deps.clock().getTime();
  }

  private catalogOrThrow(communityId: string): Promise<Catalog> {
    return this.deps.catalog.getOrThrow(communityId);
  }

  private account(catalog: Catalog): { stripeAccount?: string } {
    return stripeAccountOf(catalog);
  }

  /** The subscription the member's membership is about (the one `membership` shows). */
  private async currentSubscription(
    communityId: string,
    memberId: string,
  ): Promise<SubscriptionSnapshot | undefined> {
    const record = await this.deps.members.get(communityId, memberId, this.now());
    if (!record.stripeSubscriptionId) return undefined;
    const doc = await this.deps.members.doc(communityId, memberId);
    return doc.state.subscriptions[record.stripeSubscriptionId]?.latest;
  }

  private previewOf(communityId: string, plan: TierChangePlan): ProrationPreview {
    return toPreview(
      communityId,
      plan.fromPrice as DomainPrice,
      plan.toPrice,
      plan.timing,
      plan.prorationDate,
      plan.preview,
    );
  }

  // ---- queries

  async previewTierChange(
    communityId: string,
    memberId: string,
    toPriceId: string,
    at?: Date,
  ): Promise<ProrationPreview> {
    const catalog = await this.catalogOrThrow(communityId);
    const subscription = await this.currentSubscription(communityId, memberId);
    const plan = planTierChange({ subscription, catalog, toPriceId, at: at?.getTime() ?? this.now() });
    return this.previewOf(communityId, plan);
  }

  async prorationOutcomes(communityId: string, memberId?: string): Promise<ProrationOutcome[]> {
    const [catalog, rows] = await Promise.all([
      this.catalogOrThrow(communityId),
      this.deps.tiers.outcomes(communityId, memberId),
    ]);
    const price = (stripePriceId: string | null) => {
      const p = stripePriceId ? priceByStripePriceId(catalog, stripePriceId) : undefined;
      return p ? toPrice(communityId, p) : null;
    };
    return rows.map((r) => ({
      id: r.invoiceId,
      // An invoice no member could be tied to is shown under its Stripe customer.
      memberId: r.memberId ?? r.customerId ?? r.invoiceId,
      stripeInvoiceId: r.invoiceId,
      fromPrice: price(r.fromStripePriceId),
      toPrice: price(r.toStripePriceId),
      credit: r.credit,
      charge: r.charge,
      net: r.net,
      currency: r.currency,
      effectiveAt: r.effectiveAt,
      previewMatched: r.previewMatched,
      causedBy: toLedgerEvent({ ...r.causedBy, data: r.causedBy.data ?? {} }),
    }));
  }

  async upsellOffers(communityId: string, memberId: string): Promise<UpsellOffer[]> {
    const catalog = await this.catalogOrThrow(communityId);
    const community = catalog.community!;
    const now = this.now();
    const [doc, trialedPriceIds] = await Promise.all([
      this.deps.members.doc(communityId, memberId),
      this.deps.commerce?.trialedPriceIds(communityId, memberId) ?? Promise.resolve([] as string[]),
    ]);
    const view = membershipView(doc.state, catalog, now);
    const live = ['ACTIVE', 'TRIALING', 'PAST_DUE'].includes(view.status);
    const tier = live && view.tierId ? catalog.tiers[view.tierId] : undefined;
    const currentPrice = view.stripePriceId ? priceByStripePriceId(catalog, view.stripePriceId) : undefined;
    const access = grantsFor(doc.state, catalog, community)
      .filter((g) => !g.suspended && g.validFrom <= now && (g.validUntil === null || g.validUntil > now))
      .map((g) => g.resource);
    const trials = mergeCommerceViews(memberCommerceView(doc.state, catalog), {
      subscribedProducts: [],
      trialedProducts: trialedPriceIds.flatMap((id) =>
        catalog.prices[id] ? [catalog.prices[id].product] : [],
      ),
    });
    const subscription =
      tier && view.stripeSubscriptionId
        ? doc.state.subscriptions[view.stripeSubscriptionId]?.latest
        : undefined;
    const offers = selectUpsells(
      catalog,
      {
        trialedProducts: trials.trialedProducts,
        access,
        ...(tier && { tierRank: tier.rank }),
        ...(tier && currentPrice && { currency: currentPrice.currency }),
      },
      now,
    );
    return offers.map((o) => {
      let preview: ProrationPreview | null = null;
      if (o.tierUpgrade && subscription) {
        try {
          preview = this.previewOf(
            communityId,
            planTierChange({ subscription, catalog, toPriceId: o.price.priceId, at: now }),
          );
        } catch (err) {
          this.deps.log.debug({ err, priceId: o.price.priceId }, 'no proration preview for an upsell');
        }
      }
      const product =
        o.product.kind === 'TIER'
          ? toTier(communityId, catalog, o.product.id)
          : o.product.kind === 'GROUP'
            ? toGroup(communityId, catalog, o.product.id)
            : toEvent(communityId, catalog, o.product.id);
      return { product, price: toPrice(communityId, o.price), trialDays: o.trialDays ?? null, preview };
    });
  }

  /** The membership, with a price migration still ahead shown as its scheduled change. */
  async membership(communityId: string, memberId: string, asOf?: Date): Promise<Membership> {
    const now = this.now();
    const [catalog, record, migrations] = await Promise.all([
      this.deps.catalog.get(communityId),
      this.deps.members.get(communityId, memberId, now, asOf?.getTime()),
      this.deps.tiers.memberMigrations(communityId, memberId),
    ]);
    return toMembership(communityId, catalog, record, migrations, asOf?.getTime() ?? now);
  }

  // ---- commands

  async changeTier(caller: Caller, input: ChangeTierInput): Promise<Membership> {
    const { communityId, memberId } = input;
    const catalog = await this.catalogOrThrow(communityId);
    const subscription = await this.currentSubscription(communityId, memberId);
    const plan = planTierChange({
      subscription,
      catalog,
      toPriceId: input.toPriceId,
      at: input.prorationDate?.getTime() ?? this.now(),
      ...(input.timing && { timing: input.timing as DomainTiming }),
    });
    const s = plan.subscription;
    const p = plan.preview;
    const request: TierChangeRequested = {
      type: 'TierChangeRequested',
      data: {
        communityId,
        memberId,
        subscriptionId: s.subscriptionId,
        itemId: s.itemId,
        ...(plan.fromPrice && { fromPriceId: plan.fromPrice.priceId }),
        fromStripePriceId: s.priceId,
        toPriceId: plan.toPrice.priceId,
        toStripePriceId: plan.toPrice.stripePriceId,
        quantity: s.quantity,
        timing: plan.timing,
        prorationDate: plan.prorationDate,
        preview: {
          credit: p.credit,
          charge: p.charge,
          net: p.net,
          dueNow: p.dueNow,
          currency: p.currency,
          lines: p.lines,
        },
      },
    };
    // The request (and its preview) is a fact before Stripe hears of it, so the invoice finds it.
    const [appended] = await appendAndWait(this.deps, communityId, caller.sub, [request], {
      subject: memberId,
    });
    const stripe = stripeOrThrow(this.deps.stripe);
    const key = `gatehouse:tier-change:${appended.id}`;
    const account = this.account(catalog);
    if (plan.timing === 'IMMEDIATE') {
      if (s.scheduleId) {
        // A pending scheduled change gives way to the one asked for now.
        await callStripe('release the subscription schedule', () =>
          stripe.subscriptionSchedules.release(
            s.scheduleId!,
            {},
            { idempotencyKey: `${key}:release`, ...account },
          ),
        );
      }
      await callStripe('change the subscription', () =>
        stripe.subscriptions.update(
          s.subscriptionId,
          {
            // The item id changes the price in place (without it Stripe adds an item); the quantity is kept.
            items: [{ id: s.itemId, price: plan.toPrice.stripePriceId, quantity: s.quantity }],
            proration_behavior: 'always_invoice',
            proration_date: sec(plan.prorationDate),
          },
          { idempotencyKey: key, ...account },
        ),
      );
    } else {
      await this.scheduleAtPeriodEnd(stripe, s, plan.toPrice, key, account);
    }
    return this.membership(communityId, memberId);
  }

  /** A schedule from the subscription: the current price until the period ends, then the new one. */
  private async scheduleAtPeriodEnd(
    stripe: Stripe,
    s: SubscriptionSnapshot,
    to: DomainPrice,
    key: string,
    account: { stripeAccount?: string },
  ): Promise<void> {
    const recurring = stripeRecurringFor(to.frequency) ?? { interval: 'month', interval_count: 1 };
    const scheduleId =
      s.scheduleId ??
      (
        await callStripe('create the subscription schedule', () =>
          stripe.subscriptionSchedules.create(
            { from_subscription: s.subscriptionId },
            { idempotencyKey: `${key}:schedule`, ...account },
          ),
        )
      ).id;
    await callStripe('schedule the change', () =>
      stripe.subscriptionSchedules.update(
        scheduleId,
        {
          end_behavior: 'release',
          proration_behavior: 'none',
          phases: [
            {
              items: [{ price: s.priceId, quantity: s.quantity }],
              start_date: sec(s.currentPeriodStart),
              end_date: sec(s.currentPeriodEnd),
            },
            {
              items: [{ price: to.stripePriceId, quantity: s.quantity }],
              duration: { interval: recurring.interval, interval_count: recurring.interval_count },
            },
          ],
        },
        { idempotencyKey: `${key}:phases`, ...account },
      ),
    );
  }

  async changePrice(caller: Caller, input: ChangePriceInput): Promise<Price> {
    const { communityId } = input;
    const catalog = await this.catalogOrThrow(communityId);
    const old = priceOrThrow(catalog, input.priceId);
    const existing = old.supersededBy && catalog.prices[old.supersededBy.priceId];
    let next: DomainPrice;
    if (
      existing &&
      existing.amount === input.amount &&
      old.supersededBy?.existingSubscribers === input.existingSubscribers
    ) {
      // The same change again resumes it (an interrupted migration picks up the members left).
      next = existing;
    } else {
      const newPriceId = uuidv7();
      // Validate before anything is created in Stripe.
      decideCatalog(
        {
          type: 'changePrice',
          data: {
            priceId: old.priceId,
            newPriceId,
            newStripePriceId: `price_pending_${newPriceId}`,
            amount: input.amount,
            existingSubscribers: input.existingSubscribers,
          },
        },
        catalog,
        this.now(),
      );
      const stripe = stripeOrThrow(this.deps.stripe);
      const recurring =
        old.frequency === 'INSTALLMENTS'
          ? { interval: 'month' as const, interval_count: 1 }
          : stripeRecurringFor(old.frequency);
      const productId = old.stripeProductId ?? (await this.stripeProductOf(stripe, old, catalog));
      // Stripe prices are immutable: a new amount is a new price on the same product.
      const created = await callStripe('create the price', () =>
        stripe.prices.create(
          {
            product: productId,
            unit_amount: input.amount,
            currency: old.currency,
            ...(recurring ? { recurring } : {}),
            metadata: {
              gatehouse_community_id: communityId,
              gatehouse_price_id: newPriceId,
              gatehouse_supersedes: old.priceId,
            },
          },
          { idempotencyKey: `gatehouse:price:${newPriceId}`, ...this.account(catalog) },
        ),
      );
      const facts = decideCatalog(
        {
          type: 'changePrice',
          data: {
            priceId: old.priceId,
            newPriceId,
            newStripePriceId: created.id,
            amount: input.amount,
            existingSubscribers: input.existingSubscribers,
          },
        },
        catalog,
        this.now(),
      );
      await appendAndWait(this.deps, communityId, caller.sub, facts);
      const after = await this.catalogOrThrow(communityId);
      next = after.prices[newPriceId];
    }
    if (input.existingSubscribers === 'MIGRATE_AT_RENEWAL') {
      const after = await this.catalogOrThrow(communityId);
      await this.migrate(caller, after, {
        migrationId: `price-change:${old.priceId}`,
        kind: 'PRICE_CHANGE',
        priceMap: new Map([[old.stripePriceId, next]]),
        // Same product, new amount from the next renewal: switched now without proration.
        timing: 'PERIOD_END',
        viaSchedule: false,
      });
    }
    return toPrice(communityId, next);
  }

  private async stripeProductOf(stripe: Stripe, price: DomainPrice, catalog: Catalog): Promise<string> {
    const p = await callStripe('read the price', () =>
      stripe.prices.retrieve(price.stripePriceId, {}, this.account(catalog)),
    );
    return typeof p.product === 'string' ? p.product : p.product.id;
  }

  async migrateGroupToTiers(caller: Caller, input: MigrateGroupToTiersInput): Promise<ImportReport> {
    const { communityId, groupId } = input;
    const catalog = await this.catalogOrThrow(communityId);
    if (!catalog.groups[groupId]) throw new NotFoundError(`group ${groupId} not found`);
    const problems: Record<string, string> = {};
    const priceMap = new Map<string, DomainPrice>();
    input.priceMap.forEach((m, i) => {
      const from = catalog.prices[m.fromPriceId];
      const to = catalog.prices[m.toPriceId];
      if (!from || from.product.kind !== 'GROUP' || from.product.id !== groupId) {
        problems[`priceMap[${i}].fromPriceId`] = 'is not a price of this group';
      } else if (!to || to.product.kind !== 'TIER') {
        problems[`priceMap[${i}].toPriceId`] = 'is not a tier price';
      } else if (!catalog.tiers[to.product.id]?.groupIds.includes(groupId)) {
        // The tier must open the group, or its members would lose it at the switch.
        problems[`priceMap[${i}].toPriceId`] = 'is a price of a tier that does not grant this group';
      } else if (
        to.currency !== from.currency ||
        to.frequency === 'ONE_TIME' ||
        from.frequency === 'ONE_TIME'
      ) {
        problems[`priceMap[${i}].toPriceId`] = 'must be a recurring price in the same currency';
      } else {
        priceMap.set(from.stripePriceId, to);
      }
    });
    if (Object.keys(problems).length > 0)
      throw new BadUserInputError('The price map cannot be used', problems);
    const result = await this.migrate(caller, catalog, {
      migrationId: `group-to-tiers:${groupId}`,
      kind: 'GROUP_TO_TIERS',
      priceMap,
      timing: input.timing as DomainTiming,
      viaSchedule: true,
    });
    return {
      dryRun: false,
      linked: result.migrated,
      invited: 0,
      skipped: result.skipped.length,
      problems: result.skipped.map((s) => `${s.memberId}: ${s.reason}`),
    };
  }

  /**
   * Moves each subscriber of the mapped prices, one Stripe call and one fact each, so an interrupted
   * run resumes where it stopped: members already recorded are skipped, and the idempotency key
   * makes a repeated Stripe call return the first answer.
   */
  private async migrate(
    caller: Caller,
    catalog: Catalog,
    m: {
      migrationId: string;
      kind: PriceMigrationKind;
      priceMap: Map<string, DomainPrice>;
      timing: DomainTiming;
      viaSchedule: boolean;
    },
  ): Promise<{ migrated: number; skipped: { memberId: string; reason: string }[] }> {
    const communityId = catalog.community!.communityId;
    const [subscribers, done] = await Promise.all([
      this.deps.tiers.subscribersOf(communityId, [...m.priceMap.keys()]),
      this.deps.tiers.migratedSubscriptions(communityId, m.migrationId),
    ]);
    const plan = planPriceMigration({
      subscribers,
      priceMap: m.priceMap,
      timing: m.timing,
      at: this.now(),
      alreadyScheduled: done,
    });
    const stripe = plan.steps.length > 0 ? stripeOrThrow(this.deps.stripe) : null;
    const account = this.account(catalog);
    let migrated = 0;
    for (const step of plan.steps) {
      await this.migrateOne(stripe!, step, m, account);
      const fact: MemberPriceMigrationScheduled = {
        type: 'MemberPriceMigrationScheduled',
        data: {
          communityId,
          migrationId: m.migrationId,
          kind: m.kind,
          memberId: step.memberId,
          subscriptionId: step.subscription.subscriptionId,
          fromStripePriceId: step.subscription.priceId,
          toPriceId: step.toPrice.priceId,
          toStripePriceId: step.toPrice.stripePriceId,
          effectiveAt: step.effectiveAt,
          timing: step.timing,
        },
      };
      await appendAndWait(this.deps, communityId, caller.sub, [fact], {
        source: 'migration',
        subject: step.memberId,
      });
      migrated++;
      this.deps.log.info(
        { migrationId: m.migrationId, migrated, of: plan.steps.length, already: done.size },
        'price migration progress',
      );
    }
    const completed: PriceMigrationCompleted = {
      type: 'PriceMigrationCompleted',
      data: {
        communityId,
        migrationId: m.migrationId,
        kind: m.kind,
        migrated: done.size + migrated,
        skipped: plan.skipped.length,
        at: this.now(),
      },
    };
    await appendAndWait(this.deps, communityId, caller.sub, [completed], { source: 'migration' });
    return { migrated, skipped: plan.skipped };
  }

  private async migrateOne(
    stripe: Stripe,
    step: MigrationStep,
    m: { migrationId: string; viaSchedule: boolean },
    account: { stripeAccount?: string },
  ): Promise<void> {
    const s = step.subscription;
    const key = `gatehouse:migration:${m.migrationId}:${s.subscriptionId}`;
    if (step.timing === 'PERIOD_END' && m.viaSchedule) {
      await this.scheduleAtPeriodEnd(stripe, s, step.toPrice, key, account);
      return;
    }
    // No proration: the member has paid for this period; the new price is billed from the next renewal.
    await callStripe('switch the subscription price', () =>
      stripe.subscriptions.update(
        s.subscriptionId,
        {
          items: [{ id: s.itemId, price: step.toPrice.stripePriceId, quantity: s.quantity }],
          proration_behavior: 'none',
        },
        { idempotencyKey: key, ...account },
      ),
    );
  }
}

function toPreview(
  communityId: string,
  from: DomainPrice,
  to: DomainPrice,
  timing: DomainTiming,
  prorationDate: number,
  p: DomainPreview,
): ProrationPreview {
  return {
    fromPrice: toPrice(communityId, from),
    toPrice: toPrice(communityId, to),
    prorationDate: new Date(prorationDate),
    credit: p.credit,
    charge: p.charge,
    net: p.net,
    currency: p.currency,
    lines: p.lines.map((l) => ({
      description: l.description,
      amount: l.amount,
      periodStart: new Date(l.periodStart),
      periodEnd: new Date(l.periodEnd),
    })),
    dueNow: p.dueNow,
    timing: timing as ChangeTiming,
  };
}

/** The tiers service over one database, as the composition root builds it. */
export function createTiersService(deps: {
  dataSource: DataSource;
  ledger: Ledger;
  projector: Projector;
  stripe: Stripe | null;
  log: Logger;
  clock?: () => Date;
  waitMs?: number;
  accessIndex?: AccessIndex;
}): TiersService {
  return new TiersService({
    ledger: deps.ledger,
    projector: deps.projector,
    clock: deps.clock ?? (() => new Date()),
    waitMs: deps.waitMs ?? 10_000,
    catalog: new CatalogQuery(deps.dataSource),
    members: new MembershipQuery(deps.dataSource, deps.accessIndex),
    tiers: new TiersQuery(deps.dataSource),
    commerce: new CommerceQuery(deps.dataSource),
    stripe: deps.stripe,
    log: deps.log.child({ component: 'tiers' }),
  });
}

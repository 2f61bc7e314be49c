import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import {
  checkImportPricesOrThrow,
  decideCatalog,
  migrationFactIds,
  planImport,
  type Catalog,
  type ImportCandidate,
  type ImportPlan,
} from '@gatehouse/domain';
import type { AppendResult, Ledger } from '@gatehouse/ledger';
import type { CatalogQuery, MigrationQuery } from '@gatehouse/projections';
import {
  atMostPerSecond,
  RECONCILE_REQUESTS_PER_SECOND,
  retryingRateLimited,
  translateSubscription,
} from '@gatehouse/stripe';
import type { Caller } from '../auth/auth';
import { GatehouseError } from '../graphql/errors';
import { callStripe, stripeOrThrow } from './catalog.service';
import { appendAndWait, type CommandContext } from './commands';

export type ImportServiceDeps = {
  ledger: Ledger;
  clock: () => Date;
  stripe: Stripe | null;
  catalog: CatalogQuery;
  migration: MigrationQuery;
  /** Waits until the projections applied these appends to the community (read your writes); absent in the CLI. */
  waitFor?: (communityId: string, appended: readonly AppendResult[]) => Promise<boolean>;
};

export type ImportRequest = { communityId: string; stripePriceIds: string[]; dryRun: boolean };
export type ImportResult = {
  dryRun: boolean;
  linked: number;
  invited: number;
  skipped: number;
  problems: string[];
};
export type ImportProgress = { phase: 'listing' | 'appending'; done: number; total?: number };

const APPEND_CHUNK = 100;

type StripeObject = Record<string, unknown>;
const isObject = (v: unknown): v is StripeObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A new member's id for a Stripe customer: stable, so a resumed or repeated import finds the same member. */
export const importedMemberId = (customerId: string): string => `stripe-${customerId}`;

/**
 * `importStripeSubscriptions`: brings customers who already pay through Stripe into the community
 * without charging them again. Lists the subscriptions on the given prices in the community's
 * (connected) account, ties each to a member, and appends migration facts whose ids derive from the
 * Stripe ids, so a re-run (or a run resumed after a failure) appends only what is missing.
 */
export class ImportService {
  constructor(private readonly deps: ImportServiceDeps) {}

  async importStripeSubscriptions(
    caller: Caller,
    request: ImportRequest,
    onProgress: (p: ImportProgress) => void = () => undefined,
  ): Promise<ImportResult> {
    const { communityId } = request;
    const catalog = await this.catalogOrThrow(communityId);
    checkImportPricesOrThrow(catalog, request.stripePriceIds);
    const stripe = stripeOrThrow(this.deps.stripe);
    const account = catalog.community?.stripeAccountId;
    const options: Stripe.RequestOptions = account ? { stripeAccount: account } : {};

    const subscriptions = await this.listSubscriptions(stripe, request.stripePriceIds, options, onProgress);
    const candidates = subscriptions.map(candidateOf);

    const customerIds = [...new Set(candidates.flatMap((c) => (c.customerId ? [c.customerId] : [])))];
    const emails = [...new Set(candidates.flatMap((c) => (c.email ? [c.email.toLowerCase()] : [])))];
    const factIds = [
      ...candidates.map((c) => migrationFactIds.subscription(communityId, c.subscriptionId)),
      ...customerIds.map((id) => migrationFactIds.member(communityId, id)),
    ];
    const [directory, known] = await Promise.all([
      this.deps.migration.directory(communityId, customerIds, emails),
      this.deps.migration.knownEventIds(communityId, factIds),
    ]);
    const plan = planImport({
      communityId,
      candidates,
      directory,
      known,
      now: this.deps.clock().getTime(),
      newMemberId: importedMemberId,
      invitationToken: () => randomBytes(18).toString('base64url'),
    });
    if (!request.dryRun) await this.append(caller, communityId, plan, onProgress);
    return { dryRun: request.dryRun, ...plan.report };
  }

  private async catalogOrThrow(communityId: string): Promise<Catalog> {
    const catalog = await this.deps.catalog.get(communityId);
    if (!catalog?.community) throw new GatehouseError('NOT_FOUND', 'Community not found');
    return catalog;
  }

  private async listSubscriptions(
    stripe: Stripe,
    prices: readonly string[],
    options: Stripe.RequestOptions,
    onProgress: (p: ImportProgress) => void,
  ): Promise<StripeObject[]> {
    const found = new Map<string, StripeObject>();
    // Page by page, at most RECONCILE_REQUESTS_PER_SECOND pages a second, a page that Stripe refuses
    // for its rate asked for again after a while: a long listing is not lost to one refusal.
    const listPage = retryingRateLimited(
      atMostPerSecond(RECONCILE_REQUESTS_PER_SECOND, (params: Stripe.SubscriptionListParams) =>
        stripe.subscriptions.list(params, options),
      ),
    );
    for (const price of prices) {
      // A refused page is asked for again by itself (listPage), never the whole listing ([]).
      await callStripe(
        'list subscriptions',
        async () => {
          let startingAfter: string | undefined;
          for (;;) {
            // `status: 'all'`: canceled subscriptions may still be paid through their period.
            const page = await listPage({
              price,
              status: 'all',
              limit: 100,
              expand: ['data.customer'],
              ...(startingAfter && { starting_after: startingAfter }),
            });
            for (const sub of page.data) found.set(sub.id, sub as unknown as StripeObject);
            onProgress({ phase: 'listing', done: found.size });
            if (!page.has_more || page.data.length === 0) break;
            startingAfter = page.data[page.data.length - 1].id;
          }
        },
        [],
      );
    }
    onProgress({ phase: 'listing', done: found.size, total: found.size });
    return [...found.values()].sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
  }

  private async append(
    caller: Caller,
    communityId: string,
    plan: ImportPlan,
    onProgress: (p: ImportProgress) => void,
  ): Promise<void> {
    const occurredAt = this.deps.clock().toISOString();
    const correlationId = `import:${communityId}:${occurredAt}`;
    const appended: AppendResult[] = [];
    for (let i = 0; i < plan.facts.length; i += APPEND_CHUNK) {
      const chunk = plan.facts.slice(i, i + APPEND_CHUNK);
      const results = await this.deps.ledger.append(
        chunk.map((f) => ({
          id: f.id,
          type: f.type,
          communityId,
          subject: f.subject,
          occurredAt,
          source: 'migration' as const,
          actor: caller.sub,
          correlationId,
          data: f.data,
        })),
      );
      appended.push(...results);
      onProgress({
        phase: 'appending',
        done: Math.min(i + APPEND_CHUNK, plan.facts.length),
        total: plan.facts.length,
      });
    }
    if (this.deps.waitFor && appended.length > 0 && !(await this.deps.waitFor(communityId, appended))) {
      throw new GatehouseError(
        'CONFLICT',
        'The import was recorded but is not visible yet; query again in a moment',
      );
    }
  }
}

/** A listed subscription, its customer expanded (`data.customer`; a deleted one as `{ id, deleted: true }`). */
function candidateOf(sub: StripeObject): ImportCandidate {
  const view = translateSubscription(sub);
  const customer = isObject(sub.customer) ? sub.customer : undefined;
  const customerMetadata = isObject(customer?.metadata) ? customer.metadata : {};
  const email =
    customer && customer.deleted !== true && typeof customer.email === 'string' ? customer.email : undefined;
  const metadataMemberId =
    view.metadata.gatehouse_member_id ??
    (typeof customerMetadata.gatehouse_member_id === 'string'
      ? customerMetadata.gatehouse_member_id
      : undefined);
  return {
    subscriptionId: view.id,
    customerId: view.customerId,
    ...(email && { email }),
    ...(metadataMemberId && { metadataMemberId }),
    status: view.status,
    currentPeriodEnd: view.currentPeriodEnd,
    // The ledger keeps the subscription as listed, with the customer as an id (its details live at Stripe).
    raw: { ...sub, customer: view.customerId },
  };
}

/** `joinCommunity`: a free member joins (refused in a paid-only community once free joining has closed). */
export async function joinCommunity(
  ctx: CommandContext & { catalog: CatalogQuery },
  caller: Caller,
  input: { communityId: string; memberId: string; email?: string | null },
): Promise<void> {
  const catalog = await ctx.catalog.get(input.communityId);
  if (!catalog?.community) throw new GatehouseError('NOT_FOUND', 'Community not found');
  const facts = decideCatalog(
    {
      type: 'joinAsFreeMember',
      data: { memberId: input.memberId, ...(input.email && { email: input.email }) },
    },
    catalog,
    ctx.clock().getTime(),
  );
  await appendAndWait(ctx, input.communityId, caller.sub, facts, { subject: input.memberId });
}

import type Stripe from 'stripe';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { installmentPlanEndsAt, toStripeSeconds, type EpochMs } from '@gatehouse/domain';
import type { Ledger, Position, RecordedEvent, Subscription } from '@gatehouse/ledger';
import { translateSubscription } from '@gatehouse/stripe';

// Installment plans end by themselves: Checkout cannot create a subscription schedule, so the plan's
// subscription carries `gatehouse_installments=N` and gets `cancel_at` (start + N intervals) once,
// when the ledger first shows it. The Nth invoice is then the last one Stripe sends.

export const INSTALLMENT_PLANS_CONSUMER = 'installment-plans';
const WATCHED = ['customer.subscription.created', 'customer.subscription.updated'];
const RETRY_MS = 5_000;

export type InstallmentPlanDeps = {
  ledger: Ledger;
  dataSource: DataSource;
  stripe: Stripe | null;
  log: Logger;
};

export type InstallmentPlanRequest = {
  subscriptionId: string;
  installments: number;
  cancelAt: EpochMs;
  account: string | null;
};

/** The `cancel_at` an event asks for, or null when it is not an open-ended installment plan. */
export function installmentPlanRequest(event: {
  type: string;
  data: unknown;
}): InstallmentPlanRequest | null {
  if (!WATCHED.includes(event.type)) return null;
  const stripeEvent = event.data as { account?: string; data?: { object?: unknown } };
  const object = stripeEvent.data?.object;
  if (typeof object !== 'object' || object === null) return null;
  const sub = translateSubscription(object);
  const installments = Number(sub.metadata.gatehouse_installments);
  if (!Number.isInteger(installments) || installments < 1) return null;
  // Already bounded (by us earlier, a schedule, or an admin), or over: nothing to do.
  if (sub.cancelAt !== null || sub.scheduleId !== null || sub.cancelAtPeriodEnd) return null;
  if (['canceled', 'incomplete_expired'].includes(sub.status)) return null;
  const raw = object as { start_date?: unknown };
  const started = typeof raw.start_date === 'number' ? raw.start_date * 1000 : sub.currentPeriodStart;
  // A trial is not an installment: the first paid period begins when the trial ends.
  const firstPaid = sub.trialEnd ?? started;
  if (firstPaid === null) return null;
  return {
    subscriptionId: sub.id,
    installments,
    cancelAt: installmentPlanEndsAt(firstPaid, installments),
    account: stripeEvent.account ?? null,
  };
}

/**
 * Follows the ledger under its own checkpoint and asks Stripe once per installment plan to end it.
 * A plan already asked for (or refused by Stripe) is not asked again; a Stripe outage stops the
 * batch, which is retried from the checkpoint.
 */
export class InstallmentPlanFollower {
  private subscription: Subscription | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: InstallmentPlanDeps) {}

  start(): this {
    void this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.subscription?.stop();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    try {
      const rows = await this.deps.dataSource.query<{ position: string }[]>(
        'SELECT position FROM ledger_follower_checkpoints WHERE consumer = $1',
        [INSTALLMENT_PLANS_CONSUMER],
      );
      let checkpoint: Position | undefined = rows[0]?.position;
      this.subscription = this.deps.ledger.subscribe(
        INSTALLMENT_PLANS_CONSUMER,
        // Every event, in pages of the projector's size, so the pages it reads are shared with it (a
        // type filter would make each read skip everything after the last watched event again).
        { after: checkpoint, maxBatch: 250 },
        async (events) => {
          for (const event of events) {
            await this.handle(event);
            checkpoint = this.deps.ledger.advance(checkpoint, event);
          }
          if (checkpoint !== undefined) await this.saveCheckpoint(checkpoint);
        },
      );
      await this.subscription.done;
    } catch (err) {
      this.deps.log.warn({ err }, 'installment plans: follower stopped, retrying');
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.run(), RETRY_MS);
  }

  private async handle(event: RecordedEvent): Promise<void> {
    if (event.source !== 'stripe') return;
    const request = installmentPlanRequest(event);
    if (!request) return;
    const done = await this.deps.dataSource.query<unknown[]>(
      'SELECT 1 FROM installment_plan_requests WHERE community_id = $1 AND subscription_id = $2',
      [event.communityId, request.subscriptionId],
    );
    if (done.length > 0) return;
    const stripe = this.deps.stripe;
    if (!stripe) {
      this.deps.log.warn(
        { subscriptionId: request.subscriptionId },
        'installment plan left open: Stripe is not configured',
      );
      return;
    }
    let outcome = 'requested';
    try {
      await stripe.subscriptions.update(
        request.subscriptionId,
        { cancel_at: toStripeSeconds(request.cancelAt) },
        {
          idempotencyKey: `gatehouse:installments:${request.subscriptionId}:${request.installments}`,
          ...(request.account && { stripeAccount: request.account }),
        },
      );
    } catch (err) {
      // Stripe refused (the subscription was canceled meanwhile, say): recorded, not retried forever.
      if ((err as { type?: string }).type !== 'StripeInvalidRequestError') throw err;
      outcome = `refused: ${(err as Error).message}`;
      this.deps.log.warn(
        { err, subscriptionId: request.subscriptionId },
        'installment plan: Stripe refused cancel_at',
      );
    }
    await this.deps.dataSource.query(
      `INSERT INTO installment_plan_requests (community_id, subscription_id, installments, cancel_at, event_id, outcome, requested_at)
       VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT DO NOTHING`,
      [
        event.communityId,
        request.subscriptionId,
        request.installments,
        new Date(request.cancelAt),
        event.id,
        outcome,
      ],
    );
  }

  private async saveCheckpoint(position: Position): Promise<void> {
    await this.deps.dataSource.query(
      `INSERT INTO ledger_follower_checkpoints (consumer, position, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (consumer) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`,
      [INSTALLMENT_PLANS_CONSUMER, position],
    );
  }
}

/** Starts the follower; the composition root stops it on shutdown. */
export function startInstallmentPlans(deps: InstallmentPlanDeps): InstallmentPlanFollower {
  return new InstallmentPlanFollower(deps).start();
}

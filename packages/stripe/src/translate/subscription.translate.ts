import type { EpochMs } from '@gatehouse/domain';
import { bool, expectObject, idOf, listData, metadataOf, ms, num, record, str } from './stripe-fields';

export type StripeSubscriptionItemView = {
  itemId: string;
  priceId: string | null;
  productId: string | null;
  quantity: number;
  /** Per item since basil; copied from the subscription for older versions. */
  currentPeriodStart: EpochMs | null;
  currentPeriodEnd: EpochMs | null;
};

export type StripeSubscriptionView = {
  id: string;
  customerId: string | null;
  status: string;
  items: StripeSubscriptionItemView[];
  /** Top-level before basil; since basil the earliest item start and the latest item end. */
  currentPeriodStart: EpochMs | null;
  currentPeriodEnd: EpochMs | null;
  trialStart: EpochMs | null;
  trialEnd: EpochMs | null;
  cancelAtPeriodEnd: boolean;
  cancelAt: EpochMs | null;
  canceledAt: EpochMs | null;
  endedAt: EpochMs | null;
  metadata: Record<string, string>;
  scheduleId: string | null;
  latestInvoiceId: string | null;
};

function pick(values: (number | null)[], choose: (...n: number[]) => number): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? choose(...known) : null;
}

export function translateSubscription(value: unknown): StripeSubscriptionView {
  const sub = expectObject(value, 'subscription');
  const topStart = ms(sub.current_period_start);
  const topEnd = ms(sub.current_period_end);
  const items = listData(sub.items).map((item): StripeSubscriptionItemView => {
    const price = record(item.price);
    const plan = record(item.plan);
    return {
      itemId: str(item.id) ?? '',
      priceId: idOf(item.price) ?? idOf(item.plan),
      productId: idOf(price.product) ?? idOf(plan.product),
      quantity: num(item.quantity) ?? 1,
      currentPeriodStart: ms(item.current_period_start) ?? topStart,
      currentPeriodEnd: ms(item.current_period_end) ?? topEnd,
    };
  });
  return {
    id: sub.id as string,
    customerId: idOf(sub.customer),
    status: str(sub.status) ?? 'incomplete',
    items,
    currentPeriodStart:
      topStart ??
      pick(
        items.map((i) => i.currentPeriodStart),
        Math.min,
      ),
    currentPeriodEnd:
      topEnd ??
      pick(
        items.map((i) => i.currentPeriodEnd),
        Math.max,
      ),
    trialStart: ms(sub.trial_start),
    trialEnd: ms(sub.trial_end),
    cancelAtPeriodEnd: bool(sub.cancel_at_period_end) ?? false,
    cancelAt: ms(sub.cancel_at),
    canceledAt: ms(sub.canceled_at),
    endedAt: ms(sub.ended_at),
    metadata: metadataOf(sub.metadata),
    scheduleId: idOf(sub.schedule),
    latestInvoiceId: idOf(sub.latest_invoice),
  };
}

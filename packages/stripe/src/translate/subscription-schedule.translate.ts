import type { EpochMs } from '@gatehouse/domain';
import { expectObject, idOf, listData, metadataOf, ms, num, record, str } from './stripe-fields';

export type StripeSchedulePhaseView = {
  start: EpochMs | null;
  end: EpochMs | null;
  items: { priceId: string | null; quantity: number }[];
  /** Before clover: a count of billing intervals. */
  iterations: number | null;
  /** From clover: an explicit length. */
  duration: { interval: string; intervalCount: number } | null;
};

export type StripeSubscriptionScheduleView = {
  id: string;
  subscriptionId: string | null;
  customerId: string | null;
  status: string | null;
  endBehavior: string | null;
  metadata: Record<string, string>;
  phases: StripeSchedulePhaseView[];
};

export function translateSubscriptionSchedule(value: unknown): StripeSubscriptionScheduleView {
  const sched = expectObject(value, 'subscription_schedule');
  return {
    id: sched.id as string,
    subscriptionId: idOf(sched.subscription),
    customerId: idOf(sched.customer),
    status: str(sched.status),
    endBehavior: str(sched.end_behavior),
    metadata: metadataOf(sched.metadata),
    phases: listData(sched.phases).map((phase) => {
      const duration = record(phase.duration);
      const interval = str(duration.interval);
      return {
        start: ms(phase.start_date),
        end: ms(phase.end_date),
        items: listData(phase.items).map((i) => ({
          priceId: idOf(i.price) ?? idOf(i.plan),
          quantity: num(i.quantity) ?? 1,
        })),
        iterations: num(phase.iterations),
        duration: interval ? { interval, intervalCount: num(duration.interval_count) ?? 1 } : null,
      };
    }),
  };
}

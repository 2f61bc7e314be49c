import {
  invoiceEvent,
  subscriptionEvent,
  checkoutEvent,
  disputeEvent,
  chargeRefundedEvent,
} from './stripe-events.builders';
import { readStripeEvent } from './stripe-event.translate';

const created = 1_767_225_600; // 2026-01-01T00:00:00Z

describe('readStripeEvent', () => {
  it('reads the period from the subscription in the pre-basil shape', () => {
    const legacy = {
      id: 'evt_legacy',
      type: 'customer.subscription.updated',
      api_version: '2023-08-16',
      created,
      data: {
        object: {
          id: 'sub_1',
          object: 'subscription',
          customer: 'cus_1',
          status: 'past_due',
          current_period_start: created,
          current_period_end: created + 2_592_000,
          cancel_at_period_end: false,
          metadata: { gatehouse_member_id: 'mem_1' },
          items: { data: [{ id: 'si_1', quantity: 2, price: { id: 'price_1', product: 'prod_1' } }] },
        },
      },
    };
    const { fact, hints } = readStripeEvent(legacy);
    expect(fact).toEqual({
      type: 'SubscriptionObserved',
      data: expect.objectContaining({
        subscriptionId: 'sub_1',
        status: 'past_due',
        priceId: 'price_1',
        productId: 'prod_1',
        quantity: 2,
        currentPeriodStart: created * 1000,
        currentPeriodEnd: (created + 2_592_000) * 1000,
        memberId: 'mem_1',
        observedAt: created * 1000,
        eventId: 'evt_legacy',
      }),
    });
    expect(hints).toEqual({ memberId: 'mem_1', customerId: 'cus_1', subscriptionId: 'sub_1' });
  });

  it('marks what an update reports as an update (the later state within its second), not a creation', () => {
    const spec = {
      id: 'sub_u',
      customer: 'cus_u',
      status: 'active',
      price: 'price_u',
      product: 'prod_u',
      periodStart: created * 1000,
      periodEnd: (created + 86_400) * 1000,
    };
    const updated = readStripeEvent(subscriptionEvent('customer.subscription.updated', created * 1000, spec));
    const made = readStripeEvent(subscriptionEvent('customer.subscription.created', created * 1000, spec));
    expect(updated.fact?.data).toMatchObject({ update: true });
    expect(made.fact?.data).not.toHaveProperty('update');
  });

  it('reads a schedule’s update as an update, and its release (no subscription left) as its end', () => {
    const schedule = (type: string, object: Record<string, unknown>) =>
      readStripeEvent({
        id: `evt_${type}`,
        type,
        created,
        data: {
          object: {
            id: 'sub_sched_1',
            object: 'subscription_schedule',
            customer: 'cus_1',
            phases: [{ start_date: created, end_date: created + 86_400, items: [{ price: 'price_1' }] }],
            ...object,
          },
        },
      }).fact;
    expect(
      schedule('subscription_schedule.updated', { status: 'active', subscription: 'sub_1' }),
    ).toMatchObject({ type: 'ScheduleObserved', data: { subscriptionId: 'sub_1', update: true } });
    const released = schedule('subscription_schedule.released', {
      status: 'released',
      subscription: null,
      released_subscription: 'sub_1',
    });
    expect(released).toMatchObject({
      type: 'ScheduleObserved',
      data: { subscriptionId: 'sub_1', ended: true },
    });
    expect(released?.data).not.toHaveProperty('update');
  });

  it('reads the period from the items in the basil shape and treats a deletion as SubscriptionDeleted', () => {
    const e = subscriptionEvent('customer.subscription.deleted', created * 1000, {
      id: 'sub_2',
      customer: 'cus_2',
      status: 'canceled',
      price: 'price_2',
      product: 'prod_2',
      periodStart: created * 1000,
      periodEnd: (created + 86_400) * 1000,
      endedAt: (created + 100) * 1000,
    });
    const { fact } = readStripeEvent(e);
    expect(fact?.type).toBe('SubscriptionDeleted');
    expect(fact?.data).toMatchObject({
      currentPeriodEnd: (created + 86_400) * 1000,
      endedAt: (created + 100) * 1000,
    });
  });

  it('finds the subscription of an invoice under parent in basil and at the top before', () => {
    const basil = readStripeEvent(
      invoiceEvent('invoice.paid', created * 1000, { id: 'in_1', subscription: 'sub_3', customer: 'cus_3' }),
    );
    expect(basil.fact).toMatchObject({
      type: 'InvoicePaid',
      data: { invoiceId: 'in_1', subscriptionId: 'sub_3', billingReason: 'subscription_cycle' },
    });
    const old = readStripeEvent({
      id: 'evt_o',
      type: 'invoice.payment_failed',
      created,
      data: { object: { id: 'in_2', subscription: 'sub_4', customer: 'cus_4' } },
    });
    expect(old.fact).toMatchObject({ type: 'InvoicePaymentFailed', data: { subscriptionId: 'sub_4' } });
  });

  it('grants a one-time checkout only when paid, and links a subscription checkout to its member', () => {
    const unpaid = readStripeEvent(
      checkoutEvent('checkout.session.completed', created * 1000, {
        id: 'cs_1',
        mode: 'payment',
        clientReferenceId: 'mem_5',
        paymentIntent: 'pi_5',
        paymentStatus: 'unpaid',
        priceId: 'pr_1',
      }),
    );
    expect(unpaid.fact).toMatchObject({
      type: 'OneTimePurchaseCompleted',
      data: { paid: false, memberId: 'mem_5', paymentIntentId: 'pi_5' },
    });
    expect(unpaid.hints.priceId).toBe('pr_1');
    const later = readStripeEvent(
      checkoutEvent('checkout.session.async_payment_succeeded', created * 1000, {
        id: 'cs_1',
        mode: 'payment',
        paymentIntent: 'pi_5',
        paymentStatus: 'unpaid',
      }),
    );
    expect(later.fact?.data).toMatchObject({ paid: true });
    const subscription = readStripeEvent(
      checkoutEvent('checkout.session.completed', created * 1000, {
        id: 'cs_2',
        mode: 'subscription',
        clientReferenceId: 'mem_6',
        customer: 'cus_6',
        subscription: 'sub_6',
        email: 'a@b.c',
      }),
    );
    expect(subscription).toEqual({
      fact: null,
      hints: { memberId: 'mem_6', customerId: 'cus_6', subscriptionId: 'sub_6', email: 'a@b.c' },
    });
  });

  it('treats only a full refund as full, and reads dispute outcomes', () => {
    const partial = readStripeEvent(
      chargeRefundedEvent(created * 1000, {
        charge: 'ch_1',
        paymentIntent: 'pi_1',
        amount: 1000,
        refunded: 400,
      }),
    );
    expect(partial.fact?.data).toMatchObject({ full: false });
    const full = readStripeEvent(
      chargeRefundedEvent(created * 1000, {
        charge: 'ch_1',
        paymentIntent: 'pi_1',
        amount: 1000,
        refunded: 1000,
      }),
    );
    expect(full.fact?.data).toMatchObject({ full: true, paymentIntentId: 'pi_1' });
    const lost = readStripeEvent(
      disputeEvent('charge.dispute.closed', created * 1000, {
        id: 'dp_1',
        charge: 'ch_1',
        paymentIntent: 'pi_1',
        status: 'lost',
      }),
    );
    expect(lost.fact).toMatchObject({ type: 'DisputeClosed', data: { status: 'lost', chargeId: 'ch_1' } });
  });

  it('yields no fact for a malformed or unknown event instead of throwing', () => {
    expect(readStripeEvent(null)).toEqual({ fact: null, hints: {} });
    expect(
      readStripeEvent({ type: 'customer.subscription.updated', data: { object: { id: 'sub_x' } } }).fact,
    ).toBeNull();
    expect(
      readStripeEvent({ type: 'payout.paid', created, data: { object: { id: 'po_1' } } }).fact,
    ).toBeNull();
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { StripeEvent } from '../stripe-event';
import * as kit from '../testing';
import { translateCharge, translateRefund } from './charge.translate';
import { translateCheckoutSession } from './checkout-session.translate';
import { translateCustomer } from './customer.translate';
import { translateDispute } from './dispute.translate';
import { translateInvoice } from './invoice.translate';
import { translateStripeEvent } from './stripe-event.translate';
import { translateSubscriptionSchedule } from './subscription-schedule.translate';
import { translateSubscription } from './subscription.translate';

const fixture = (name: string): StripeEvent =>
  JSON.parse(readFileSync(path.join(__dirname, '../testing/fixtures', name), 'utf8')) as StripeEvent;
const SHAPES = ['2024-06-20', '2025-03-31.basil'] as const;
const S = kit.FIXED_NOW;

describe('translators on the recorded fixtures', () => {
  it('reads a basil subscription renewal: period from the item, price and product from the item', () => {
    const event = fixture('customer.subscription.updated.renewal.basil.json');
    const sub = translateSubscription(event.data.object);
    expect(sub).toMatchObject({
      id: 'sub_1SAGUABe0ycHroRBHH0HMWOy',
      customerId: 'cus_T66xzarl5v73XN',
      status: 'active',
      currentPeriodStart: 1758919042000,
      currentPeriodEnd: 1759005442000,
      cancelAtPeriodEnd: false,
      cancelAt: null,
      latestInvoiceId: 'in_1SBiOcBe0ycHroRBRzEtNcba',
      scheduleId: null,
    });
    expect(sub.items).toEqual([
      {
        itemId: 'si_T6TR41zlO1VQ3e',
        priceId: 'price_1SAFNkBe0ycHroRBidLX2jgZ',
        productId: 'prod_T5k7ztL8jPMaTG',
        quantity: 1,
        currentPeriodStart: 1758919042000,
        currentPeriodEnd: 1759005442000,
      },
    ]);
    const t = translateStripeEvent(event);
    expect(t).toEqual({
      kind: 'fact',
      fact: {
        type: 'SubscriptionObserved',
        data: expect.objectContaining({
          subscriptionId: 'sub_1SAGUABe0ycHroRBHH0HMWOy',
          currentPeriodEnd: 1759005442000,
          observedAt: 1758919058000,
          eventId: 'evt_1SBiOdBe0ycHroRBN3pieuMu',
        }),
      },
    });
  });

  it('reads a pre-2025 checkout session and leaves subscription-mode checkouts to the subscription events', () => {
    const event = fixture('checkout.session.completed.subscription.legacy.json');
    expect(translateCheckoutSession(event.data.object)).toMatchObject({
      mode: 'subscription',
      paymentStatus: 'paid',
      customerId: 'cus_OV8zF7RMsBo1K1',
      subscriptionId: 'sub_1NiEd5CwEGCgBV8c3ON1VNaz',
      clientReferenceId: 'cllnlqdff0d103i8tvi0yrx5b',
      amountTotal: 100000,
      customerEmail: 'member@example.com',
      discounts: [],
    });
    expect(translateStripeEvent(event)).toMatchObject({ kind: 'ignored' });
  });
});

describe.each(SHAPES)('translators on kit events rendered in %s', (apiVersion) => {
  it('reads the subscription period wherever the version puts it', () => {
    const event = kit.customerSubscriptionCreated(
      {
        id: 'sub_a',
        periodStart: S,
        periodEnd: S + kit.MONTH,
        quantity: 3,
        priceId: 'price_x',
        productId: 'prod_x',
        trialStart: S - 10,
        trialEnd: S,
        metadata: { gatehouse_member_id: 'm1' },
        schedule: 'sub_sched_1',
      },
      { apiVersion },
    );
    const sub = translateSubscription(event.data.object);
    expect(sub).toMatchObject({
      currentPeriodStart: S * 1000,
      currentPeriodEnd: (S + kit.MONTH) * 1000,
      trialStart: (S - 10) * 1000,
      trialEnd: S * 1000,
      scheduleId: 'sub_sched_1',
      metadata: { gatehouse_member_id: 'm1' },
    });
    expect(sub.items[0]).toMatchObject({
      priceId: 'price_x',
      productId: 'prod_x',
      quantity: 3,
      currentPeriodEnd: (S + kit.MONTH) * 1000,
    });
    const t = translateStripeEvent(event);
    expect(t.kind === 'fact' && t.fact.data).toMatchObject({
      memberId: 'm1',
      quantity: 3,
      trialEnd: S * 1000,
      scheduleId: 'sub_sched_1',
    });
  });

  it('turns customer.subscription.deleted into SubscriptionDeleted with ended_at', () => {
    const t = translateStripeEvent(
      kit.customerSubscriptionDeleted({ cancelAtPeriodEnd: true, endedAt: S + 5 }, { apiVersion }),
    );
    expect(t).toMatchObject({
      kind: 'fact',
      fact: {
        type: 'SubscriptionDeleted',
        data: { status: 'canceled', endedAt: (S + 5) * 1000, cancelAtPeriodEnd: true },
      },
    });
  });

  it('treats trial_will_end as a notice, not a change', () => {
    expect(translateStripeEvent(kit.customerSubscriptionTrialWillEnd({}, { apiVersion })).kind).toBe(
      'ignored',
    );
  });

  it('reads an invoice: subscription, paid, proration lines with their prices, discounts', () => {
    const event = kit.invoicePaid(
      {
        id: 'in_1',
        subscription: 'sub_a',
        billingReason: 'subscription_update',
        discount: { coupon: 'SPRING', promotionCode: 'promo_1' },
        lines: [
          {
            amount: -500,
            priceId: 'price_old',
            proration: true,
            periodStart: S,
            periodEnd: S + 100,
            description: 'Unused time on Silver',
            parent: 'invoice_item_details',
          },
          {
            amount: 900,
            priceId: 'price_new',
            proration: true,
            periodStart: S,
            periodEnd: S + 100,
            quantity: 1,
          },
          { amount: 2000, priceId: 'price_new', periodStart: S + 100, periodEnd: S + 200, quantity: 2 },
        ],
      },
      { apiVersion },
    );
    const inv = translateInvoice(event.data.object);
    expect(inv).toMatchObject({
      id: 'in_1',
      subscriptionId: 'sub_a',
      billingReason: 'subscription_update',
      status: 'paid',
      paid: true,
      amountPaid: 2400,
      currency: 'usd',
    });
    expect(inv.lines.map((l) => [l.amount, l.priceId, l.proration, l.quantity])).toEqual([
      [-500, 'price_old', true, 1],
      [900, 'price_new', true, 1],
      [2000, 'price_new', false, 2],
    ]);
    expect(inv.lines[0]).toMatchObject({
      periodStart: S * 1000,
      periodEnd: (S + 100) * 1000,
      description: 'Unused time on Silver',
    });
    expect(inv.discounts).toHaveLength(1);
    if (apiVersion === '2024-06-20')
      expect(inv.discounts[0]).toMatchObject({ couponId: 'SPRING', promotionCodeId: 'promo_1' });
    const t = translateStripeEvent(event);
    expect(t).toMatchObject({
      kind: 'fact',
      fact: {
        type: 'InvoicePaid',
        data: { invoiceId: 'in_1', subscriptionId: 'sub_a', periodEnd: (S + 200) * 1000 },
      },
    });
  });

  it('reads failed and action-required invoices as unpaid', () => {
    const failed = kit.invoicePaymentFailed({}, { apiVersion });
    expect(translateInvoice(failed.data.object)).toMatchObject({
      paid: false,
      status: 'open',
      amountPaid: 0,
    });
    expect(translateStripeEvent(failed)).toMatchObject({ fact: { type: 'InvoicePaymentFailed' } });
    expect(translateStripeEvent(kit.invoicePaymentActionRequired({}, { apiVersion }))).toMatchObject({
      fact: { type: 'InvoicePaymentActionRequired' },
    });
    expect(translateStripeEvent(kit.invoiceFinalized({}, { apiVersion })).kind).toBe('ignored');
  });

  it('grants a one-time purchase only when paid or when no payment was required', () => {
    const base = {
      mode: 'payment' as const,
      paymentIntent: 'pi_1',
      metadata: { gatehouse_member_id: 'm1', gatehouse_stripe_price_id: 'price_once' },
    };
    for (const [paymentStatus, paid] of [
      ['paid', true],
      ['no_payment_required', true],
      ['unpaid', false],
    ] as const) {
      const t = translateStripeEvent(
        kit.checkoutSessionCompleted({ ...base, paymentStatus }, { apiVersion }),
      );
      expect(t).toMatchObject({
        kind: 'fact',
        fact: {
          type: 'OneTimePurchaseCompleted',
          data: { paid, memberId: 'm1', stripePriceId: 'price_once', paymentIntentId: 'pi_1' },
        },
      });
    }
    expect(
      translateStripeEvent(kit.checkoutSessionAsyncPaymentSucceeded(base, { apiVersion })),
    ).toMatchObject({ fact: { data: { paid: true } } });
    expect(translateStripeEvent(kit.checkoutSessionAsyncPaymentFailed(base, { apiVersion })).kind).toBe(
      'ignored',
    );
  });

  it('reads the discounts and promotion code of a checkout session', () => {
    const cs = translateCheckoutSession(
      kit.checkoutSessionCompleted(
        { discounts: [{ promotionCode: 'promo_9', coupon: 'co_9' }], amountDiscount: 500 },
        { apiVersion },
      ).data.object,
    );
    expect(cs).toMatchObject({
      discounts: [{ couponId: 'co_9', promotionCodeId: 'promo_9' }],
      amountDiscount: 500,
    });
  });

  it('reads a refund: full or partial, by payment intent', () => {
    const full = kit.chargeRefunded(
      { id: 'ch_1', amount: 5000, paymentIntent: 'pi_1', invoice: 'in_1' },
      { apiVersion },
    );
    expect(translateCharge(full.data.object)).toMatchObject({
      amount: 5000,
      amountRefunded: 5000,
      refunded: true,
      paymentIntentId: 'pi_1',
      invoiceId: apiVersion === '2024-06-20' ? 'in_1' : null,
    });
    expect(translateStripeEvent(full)).toMatchObject({
      fact: { type: 'OneTimePurchaseRefunded', data: { paymentIntentId: 'pi_1', full: true } },
    });
    const partial = kit.chargeRefunded(
      { amount: 5000, amountRefunded: 1000, paymentIntent: 'pi_2' },
      { apiVersion },
    );
    expect(translateStripeEvent(partial)).toMatchObject({
      fact: { data: { paymentIntentId: 'pi_2', full: false } },
    });
    expect(
      translateRefund(kit.buildRefund({ id: 're_1', amount: 1000, charge: 'ch_1', paymentIntent: 'pi_2' })),
    ).toEqual({ id: 're_1', amount: 1000, chargeId: 'ch_1', paymentIntentId: 'pi_2', status: 'succeeded' });
  });

  it('reads disputes and closes them only as won or lost', () => {
    const opened = kit.chargeDisputeCreated({ charge: 'ch_1', paymentIntent: 'pi_1' }, { apiVersion });
    expect(translateDispute(opened.data.object)).toMatchObject({
      status: 'needs_response',
      chargeId: 'ch_1',
      paymentIntentId: 'pi_1',
    });
    expect(translateStripeEvent(opened)).toMatchObject({
      fact: { type: 'DisputeOpened', data: { chargeId: 'ch_1', paymentIntentId: 'pi_1' } },
    });
    expect(
      translateStripeEvent(kit.chargeDisputeClosed({ charge: 'ch_1', status: 'won' }, { apiVersion })),
    ).toMatchObject({ fact: { type: 'DisputeClosed', data: { status: 'won' } } });
    expect(
      translateStripeEvent(
        kit.chargeDisputeClosed({ charge: 'ch_1', status: 'warning_closed' }, { apiVersion }),
      ).kind,
    ).toBe('ignored');
  });

  it('reads schedule phases with their prices and dates', () => {
    const event = kit.subscriptionScheduleUpdated(
      {
        id: 'sub_sched_1',
        subscription: 'sub_a',
        phases: [
          { priceId: 'price_gold', start: S, end: S + 100 },
          { priceId: 'price_silver', start: S + 100, iterations: 12 },
        ],
      },
      { apiVersion },
    );
    const sched = translateSubscriptionSchedule(event.data.object);
    expect(sched.phases.map((p) => [p.items[0].priceId, p.start, p.end, p.iterations])).toEqual([
      ['price_gold', S * 1000, (S + 100) * 1000, null],
      ['price_silver', (S + 100) * 1000, null, 12],
    ]);
    expect(translateStripeEvent(event)).toMatchObject({
      fact: {
        type: 'ScheduleObserved',
        data: {
          scheduleId: 'sub_sched_1',
          subscriptionId: 'sub_a',
          phases: [{ priceId: 'price_gold' }, { priceId: 'price_silver' }],
        },
      },
    });
    expect(translateStripeEvent(kit.subscriptionScheduleCompleted({}, { apiVersion }))).toMatchObject({
      fact: { type: 'ScheduleObserved' },
    });
  });
});

describe('shape differences', () => {
  it('reads clover schedule phases by duration', () => {
    const obj = kit.buildSubscriptionSchedule(
      { phases: [{ priceId: 'p', start: S, iterations: 6, interval: 'month' }] },
      '2025-09-30.clover',
    );
    expect(translateSubscriptionSchedule(obj).phases[0]).toMatchObject({
      iterations: null,
      duration: { interval: 'month', intervalCount: 6 },
    });
  });

  it('renders basil invoices without subscription, paid or discount, and pre-basil lines without pricing', () => {
    const basil = kit.buildInvoice({ subscription: 'sub_a' }, '2025-03-31.basil');
    expect(basil).not.toHaveProperty('subscription');
    expect(basil).not.toHaveProperty('paid');
    expect(basil).not.toHaveProperty('discount');
    const legacy = kit.buildInvoice({ subscription: 'sub_a' }, '2024-06-20');
    expect((legacy.lines as { data: object[] }).data[0]).not.toHaveProperty('pricing');
    expect(translateInvoice(basil).subscriptionId).toBe('sub_a');
    expect(translateInvoice(legacy).subscriptionId).toBe('sub_a');
  });

  it('reads expanded references (customer and price objects) as their ids', () => {
    const sub = kit.buildSubscription({ customer: 'cus_1' });
    expect(translateSubscription({ ...sub, customer: { id: 'cus_1', object: 'customer' } }).customerId).toBe(
      'cus_1',
    );
  });

  it('reads a customer', () => {
    expect(
      translateCustomer(
        kit.buildCustomer({ id: 'cus_1', email: 'a@b.c', metadata: { gatehouse_member_id: 'm1' } }),
      ),
    ).toEqual({
      id: 'cus_1',
      email: 'a@b.c',
      name: 'Test Member',
      metadata: { gatehouse_member_id: 'm1' },
    });
  });

  it('refuses to translate the wrong kind of object', () => {
    expect(() => translateInvoice(kit.buildCustomer())).toThrow(TypeError);
  });

  it('says why an event has no translation', () => {
    expect(translateStripeEvent(kit.buildEvent('customer.created', kit.buildCustomer()))).toEqual({
      kind: 'ignored',
      reason: 'no translation for customer.created',
    });
  });
});

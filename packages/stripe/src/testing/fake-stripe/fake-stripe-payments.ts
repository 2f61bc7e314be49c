import { BASIL_API, buildCharge, buildDispute, buildRefund } from '../stripe-objects';
import type { BillingCtx } from './fake-stripe-billing';
import { FakeStripeError, invalid, newId, type FakeObject } from './fake-stripe-store';
import { intParam, metadataParam, strParam, type Params } from './fake-stripe-params';

// Card payments as Stripe records them for a Checkout session in payment mode, and what can happen to
// them afterwards: refunds (the API, as from the Dashboard) and disputes (a card network's, so the
// fake opens and closes them on request). Amounts are what was paid: nothing is computed here.

export type Payment = {
  amount: number;
  currency: string;
  customer: string | null;
  email: string | null;
  metadata: Record<string, string>;
  description: string | null;
};

const REFUND_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'];

/** How long a merchant has to answer a dispute before it is decided without evidence. */
const DISPUTE_RESPONSE_SECONDS = 7 * 86_400;

function paymentError(message: string, code: string, param?: string): FakeStripeError {
  return new FakeStripeError(400, 'invalid_request_error', message, param, code);
}

export type PaymentMethod = 'card' | 'sepa_debit';

const METHOD_DETAILS: Record<PaymentMethod, Record<string, unknown>> = {
  card: {
    type: 'card',
    card: { brand: 'visa', country: 'US', exp_month: 12, exp_year: 2034, funding: 'credit', last4: '4242' },
  },
  sepa_debit: {
    type: 'sepa_debit',
    sepa_debit: { bank_code: '37040044', branch_code: null, country: 'DE', last4: '3000' },
  },
};

type Failure = { code: string; decline_code?: string; message: string; type?: string };

const DECLINED: Failure = {
  code: 'card_declined',
  decline_code: 'generic_decline',
  message: 'Your card was declined.',
  type: 'card_error',
};
const DEBIT_REFUSED: Failure = { code: 'insufficient_funds', message: 'The account has insufficient funds.' };

/**
 * A PaymentIntent for `p`, and a first attempt to charge it (`attempt`). By card it succeeds at
 * once, or is declined when `declined`; a SEPA debit is left `processing`, its charge `pending`
 * (`payment_intent.processing`, `charge.pending`) until `settle`. Returns the PaymentIntent.
 */
export function pay(
  ctx: BillingCtx,
  p: Payment,
  method: PaymentMethod = 'card',
  declined = false,
): FakeObject {
  const intent = createIntent(ctx, p);
  attempt(ctx, intent, method, method === 'card' ? (declined ? 'failed' : 'succeeded') : 'pending');
  return intent;
}

/** A PaymentIntent for `p`, not yet charged (`payment_intent.created`). */
export function createIntent(ctx: BillingCtx, p: Payment): FakeObject {
  const piId = newId('pi');
  const intent: FakeObject = {
    id: piId,
    object: 'payment_intent',
    amount: p.amount,
    amount_capturable: 0,
    amount_received: 0,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: 'automatic_async',
    client_secret: `${piId}_secret_${newId('x').slice(-24)}`,
    confirmation_method: 'automatic',
    created: ctx.now,
    currency: p.currency,
    customer: p.customer,
    description: p.description,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    metadata: p.metadata,
    payment_method: null,
    payment_method_types: ['card', 'sepa_debit'],
    receipt_email: p.email,
    status: 'requires_payment_method',
  };
  ctx.store.put(intent);
  ctx.emit('payment_intent.created', intent);
  return intent;
}

/**
 * One charge of the intent: `succeeded` (`charge.succeeded`, `payment_intent.succeeded`), `failed`
 * (`charge.failed`, `payment_intent.payment_failed`, the intent back to `requires_payment_method`
 * with its `last_payment_error`, as when Stripe's retry of an invoice is declined again), or
 * `pending` (a debit: `payment_intent.processing`, `charge.pending`). Returns the charge.
 */
export function attempt(
  ctx: BillingCtx,
  intent: FakeObject,
  method: PaymentMethod,
  outcome: 'succeeded' | 'failed' | 'pending',
): FakeObject {
  const email = (intent.receipt_email as string | null | undefined) ?? null;
  const paymentMethod = newId('pm');
  const charge = buildCharge(
    {
      amount: Number(intent.amount),
      currency: String(intent.currency),
      customer: intent.customer as string | null,
      paymentIntent: intent.id,
      extra: {
        billing_details: { address: null, email, name: null, phone: null },
        created: ctx.now,
        description: intent.description ?? null,
        failure_code: null,
        failure_message: null,
        outcome: {
          network_status: 'approved_by_network',
          reason: null,
          risk_level: 'normal',
          seller_message: 'Payment complete.',
          type: 'authorized',
        },
        paid: outcome === 'succeeded',
        payment_method: paymentMethod,
        payment_method_details: METHOD_DETAILS[method],
        receipt_email: email,
        status: outcome,
      },
    },
    BASIL_API,
  ) as FakeObject;
  ctx.store.put(charge);
  Object.assign(intent, { latest_charge: charge.id, payment_method: paymentMethod });
  if (outcome === 'pending') {
    intent.status = 'processing';
    ctx.emit('payment_intent.processing', intent);
    ctx.emit('charge.pending', charge);
  } else {
    finish(ctx, intent, charge, outcome);
  }
  return charge;
}

/** A charge's answer, and the intent's with it. */
function finish(
  ctx: BillingCtx,
  intent: FakeObject,
  charge: FakeObject,
  outcome: 'succeeded' | 'failed',
): void {
  if (outcome === 'succeeded') {
    Object.assign(charge, { paid: true, status: 'succeeded' });
    ctx.emit('charge.succeeded', charge);
    Object.assign(intent, { amount_received: intent.amount, last_payment_error: null, status: 'succeeded' });
    ctx.emit('payment_intent.succeeded', intent);
    return;
  }
  const debit = (charge.payment_method_details as { type?: string }).type === 'sepa_debit';
  const failure = debit ? DEBIT_REFUSED : DECLINED;
  Object.assign(charge, {
    failure_code: failure.code,
    failure_message: failure.message,
    outcome: {
      network_status: 'declined_by_network',
      reason: failure.decline_code ?? null,
      risk_level: 'normal',
      seller_message: debit ? 'The bank returned the debit.' : 'The bank did not approve this charge.',
      type: 'issuer_declined',
    },
    paid: false,
    status: 'failed',
  });
  ctx.emit('charge.failed', charge);
  Object.assign(intent, {
    last_payment_error: {
      ...failure,
      charge: charge.id,
      payment_method: { id: intent.payment_method, type: debit ? 'sepa_debit' : 'card' },
    },
    payment_method: null,
    status: 'requires_payment_method',
  });
  ctx.emit('payment_intent.payment_failed', intent);
}

/**
 * The bank's answer to a debit left `processing`: it succeeds (`charge.succeeded`,
 * `payment_intent.succeeded`) or fails (`charge.failed`, `payment_intent.payment_failed`, the
 * intent back to `requires_payment_method`). Returns the charge.
 */
export function settle(ctx: BillingCtx, intent: FakeObject, outcome: 'succeeded' | 'failed'): FakeObject {
  if (intent.status !== 'processing')
    throw invalid('payment_intent', `This PaymentIntent is ${String(intent.status)}, not processing.`);
  const charge = ctx.store.get('charge', String(intent.latest_charge));
  finish(ctx, intent, charge, outcome);
  return charge;
}

/** The charge a request names by `charge` or `payment_intent` (its latest charge). */
function chargeNamed(ctx: BillingCtx, params: Params): FakeObject {
  const chargeId = strParam(params, 'charge');
  const intentId = strParam(params, 'payment_intent');
  if (!chargeId && !intentId)
    throw paymentError(
      'One of the following params should be provided for this request: payment_intent or charge.',
      'parameter_missing',
    );
  let charge = chargeId ? ctx.store.get('charge', chargeId) : undefined;
  if (intentId) {
    const intent = ctx.store.get('payment_intent', intentId, 'payment_intent');
    if (charge && charge.payment_intent !== intentId)
      throw invalid('payment_intent', `The charge ${String(chargeId)} does not belong to ${intentId}.`);
    if (!charge) {
      if (typeof intent.latest_charge !== 'string')
        throw paymentError(
          `This PaymentIntent (${intentId}) does not have a successful charge to refund.`,
          'charge_not_refundable',
          'payment_intent',
        );
      charge = ctx.store.get('charge', intent.latest_charge);
    }
  }
  return charge as FakeObject;
}

/**
 * `POST /v1/refunds`: the whole unrefunded amount, or `amount` of it. The charge's `amount_refunded`
 * grows (`refunded` once nothing is left), with `charge.refunded` and `refund.created`.
 */
export function refund(ctx: BillingCtx, params: Params): FakeObject {
  const charge = chargeNamed(ctx, params);
  if (charge.disputed === true)
    throw paymentError(
      `Charge ${charge.id} has been charged back; cannot issue a refund.`,
      'charge_disputed',
      'charge',
    );
  if (charge.status !== 'succeeded')
    throw paymentError(
      `Charge ${charge.id} is ${String(charge.status)}: only a succeeded charge can be refunded.`,
      'charge_not_refundable',
      'charge',
    );
  const left = Number(charge.amount_captured) - Number(charge.amount_refunded);
  if (left <= 0)
    throw paymentError(`Charge ${charge.id} has already been refunded.`, 'charge_already_refunded', 'charge');
  const amount = intParam(params, 'amount') ?? left;
  if (amount <= 0) throw invalid('amount', 'Refund amount must be a positive integer.');
  if (amount > left)
    throw paymentError(
      `Refund amount (${amount}) is greater than unrefunded amount on charge (${left})`,
      'amount_too_large',
      'amount',
    );
  const reason = strParam(params, 'reason');
  if (reason !== undefined && !REFUND_REASONS.includes(reason))
    throw invalid('reason', `Invalid reason: must be one of ${REFUND_REASONS.join(', ')}`);
  const made = buildRefund({
    amount,
    charge: charge.id,
    paymentIntent: charge.payment_intent as string | null,
    extra: {
      balance_transaction: newId('txn'),
      created: ctx.now,
      currency: charge.currency,
      destination_details: { type: 'card', card: { type: 'refund' } },
      metadata: metadataParam(params),
      reason: reason ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      transfer_reversal: null,
    },
  }) as FakeObject;
  ctx.store.put(made);
  const before = { amount_refunded: charge.amount_refunded, refunded: charge.refunded };
  charge.amount_refunded = Number(charge.amount_refunded) + amount;
  charge.refunded = charge.amount_refunded === charge.amount_captured;
  ctx.emit('charge.refunded', charge, before);
  ctx.emit('refund.created', made);
  return made;
}

/**
 * The card network's side of a dispute, which no API call of Stripe's starts: the charge is
 * `disputed` and a dispute `needs_response`, with `charge.dispute.created`.
 */
export function openDispute(ctx: BillingCtx, charge: FakeObject, reason = 'fraudulent'): FakeObject {
  if (charge.disputed === true) throw invalid('charge', `Charge ${charge.id} is already disputed.`);
  if (charge.status !== 'succeeded')
    throw invalid('charge', `Charge ${charge.id} is ${String(charge.status)}: nothing was paid to dispute.`);
  const dispute = buildDispute({
    id: newId('du'),
    amount: Number(charge.amount) - Number(charge.amount_refunded),
    charge: charge.id,
    paymentIntent: (charge.payment_intent as string | null) ?? null,
    reason,
    extra: {
      created: ctx.now,
      currency: charge.currency,
      evidence_details: {
        due_by: ctx.now + DISPUTE_RESPONSE_SECONDS,
        has_evidence: false,
        past_due: false,
        submission_count: 0,
      },
    },
  }) as FakeObject;
  ctx.store.put(dispute);
  charge.disputed = true;
  ctx.emit('charge.dispute.created', dispute);
  return dispute;
}

/**
 * A dispute decided: `won` (the money comes back) or `lost`, as `POST /v1/disputes/:id/close` (the
 * merchant accepts it) or the network decides; `charge.dispute.closed`.
 */
export function closeDispute(ctx: BillingCtx, dispute: FakeObject, status: 'won' | 'lost'): FakeObject {
  if (dispute.status === 'won' || dispute.status === 'lost')
    throw paymentError(
      `This dispute is already closed (${String(dispute.status)}).`,
      'dispute_already_closed',
    );
  const before = { status: dispute.status };
  dispute.status = status;
  ctx.emit('charge.dispute.closed', dispute, before);
  return dispute;
}

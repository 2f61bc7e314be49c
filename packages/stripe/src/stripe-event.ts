import type { NewEvent } from '@gatehouse/ledger';
import { StripeNotAnEventError } from './stripe.errors';

/** A Stripe object as received: only `id` and `object` are relied upon at this level. */
export type StripeObject = { id?: string; object?: string; [field: string]: unknown };

/** A Stripe Event as delivered to a webhook or listed by the Events API, in any API version. */
export type StripeEvent = {
  id: string;
  object: 'event';
  type: string;
  created: number;
  api_version?: string | null;
  /** Set for events of a connected account (Connect). */
  account?: string | null;
  livemode?: boolean;
  pending_webhooks?: number;
  request?: { id: string | null; idempotency_key: string | null } | null;
  data: { object: StripeObject; previous_attributes?: Record<string, unknown> };
  [field: string]: unknown;
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the shape every Stripe event has, or throws `StripeNotAnEventError`. */
export function assertStripeEvent(value: unknown): asserts value is StripeEvent {
  if (!isRecord(value)) throw new StripeNotAnEventError('not a JSON object');
  if (value.object !== 'event') throw new StripeNotAnEventError('object is not "event"');
  if (typeof value.id !== 'string' || !/^evt_[A-Za-z0-9_]+$/.test(value.id)) {
    throw new StripeNotAnEventError('id is not an evt_ id');
  }
  if (typeof value.type !== 'string' || value.type === '') throw new StripeNotAnEventError('no type');
  if (typeof value.created !== 'number' || !Number.isInteger(value.created) || value.created <= 0) {
    throw new StripeNotAnEventError('created is not a unix timestamp');
  }
  if (!isRecord(value.data) || !isRecord(value.data.object))
    throw new StripeNotAnEventError('no data.object');
  if (value.account !== undefined && value.account !== null && typeof value.account !== 'string') {
    throw new StripeNotAnEventError('account is not a string');
  }
}

/** Parses raw webhook bytes into a Stripe event, or throws `StripeNotAnEventError`. */
export function parseStripeEventOrThrow(rawBody: Buffer): StripeEvent {
  let value: unknown;
  try {
    value = JSON.parse(rawBody.toString('utf8'));
  } catch {
    throw new StripeNotAnEventError('not JSON');
  }
  assertStripeEvent(value);
  return value;
}

/**
 * The ledger fact for a Stripe event: the event verbatim (with its `api_version`) under Stripe's
 * own id and type, in the community that owns it.
 */
export function stripeEventToLedgerFact(event: StripeEvent, communityId: string): NewEvent {
  const subject = event.data.object.id;
  return {
    id: event.id,
    type: event.type,
    communityId,
    subject: typeof subject === 'string' ? subject : null,
    occurredAt: new Date(event.created * 1000).toISOString(),
    source: 'stripe',
    data: event,
  };
}

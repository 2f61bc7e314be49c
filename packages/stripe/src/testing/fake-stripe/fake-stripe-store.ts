import { stripeId } from '../stripe-ids';

export type FakeObject = { id: string; object: string; created: number; [field: string]: unknown };

/** A Stripe-shaped API error; the server answers `{ error: { type, message, param, code } }`. */
export class FakeStripeError extends Error {
  constructor(
    readonly status: number,
    readonly type: 'invalid_request_error' | 'idempotency_error' | 'api_error' | 'card_error',
    message: string,
    readonly param?: string,
    readonly code?: string,
  ) {
    super(message);
  }

  toBody(): { error: Record<string, unknown> } {
    return {
      error: {
        type: this.type,
        message: this.message,
        ...(this.param && { param: this.param }),
        ...(this.code && { code: this.code }),
      },
    };
  }
}

export function missing(kind: string, id: string): FakeStripeError {
  return new FakeStripeError(
    404,
    'invalid_request_error',
    `No such ${kind}: '${id}'`,
    'id',
    'resource_missing',
  );
}

export function required(param: string): FakeStripeError {
  return new FakeStripeError(
    400,
    'invalid_request_error',
    `Missing required param: ${param}.`,
    param,
    'parameter_missing',
  );
}

export function invalid(param: string, message: string): FakeStripeError {
  return new FakeStripeError(400, 'invalid_request_error', message, param, 'parameter_invalid');
}

/** One Stripe account's objects (the platform's, or a connected account's), in insertion order. */
export class FakeAccountStore {
  /** Customers whose card is declined from now on (`setCardDeclines`); not part of any object. */
  readonly declining = new Set<string>();
  /** Where customers' cards were issued, when set (`setCardCountry`): `IN` follows RBI e-mandate rules. */
  readonly cardCountry = new Map<string, string>();
  private readonly objects = new Map<string, FakeObject>();
  private readonly order = new Map<string, number>();
  private seq = 0;

  put<T extends FakeObject>(obj: T): T {
    if (!this.order.has(obj.id)) this.order.set(obj.id, ++this.seq);
    this.objects.set(obj.id, obj);
    return obj;
  }

  get(kind: string, id: string, label = kind): FakeObject {
    const obj = this.objects.get(id);
    if (!obj || obj.object !== kind) throw missing(label, id);
    return obj;
  }

  find(id: string): FakeObject | undefined {
    return this.objects.get(id);
  }

  /** Newest first, as Stripe lists: by `created`, then by insertion. */
  all(kind: string): FakeObject[] {
    return [...this.objects.values()]
      .filter((o) => o.object === kind)
      .sort((a, b) => b.created - a.created || (this.order.get(b.id) ?? 0) - (this.order.get(a.id) ?? 0));
  }
}

export function newId(prefix: string): string {
  return stripeId(prefix);
}

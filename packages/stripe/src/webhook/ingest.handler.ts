import { DeadlineExceededError, withDeadline, type AppendResult, type Ledger } from '@gatehouse/ledger';
import { PLATFORM_HOLD, type QuarantineStore } from '../quarantine/quarantine.port';
import { parseStripeEventOrThrow, stripeEventToLedgerFact, type StripeEvent } from '../stripe-event';
import { StripeWebhookRejectedError } from '../stripe.errors';
import type { CommunityDirectory } from './community-directory.port';
import { createSignatureVerifier } from './verify-signature';

/** The part of a pino logger the ingestor uses. */
export type WebhookLogger = {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

export type WebhookIngestorOptions = {
  /** Only appends are needed: a group-committing `AppendBatcher` in front of the ledger fits. */
  ledger: Pick<Ledger, 'append'>;
  /** Every accepted `whsec_…` secret (two while a secret is rolled). */
  secrets: readonly string[];
  /** Defaults to 300 s; must be positive. Applies to old and to future timestamps. */
  toleranceSeconds?: number;
  directory: CommunityDirectory;
  quarantine: QuarantineStore;
  logger: WebhookLogger;
  clock: () => Date;
  /**
   * How long a delivery waits for the ledger (or the quarantine) to confirm before it is answered 503,
   * so that a stalled database holds no request for long: Stripe retries, and the retry shares the
   * append still under way. Default 10 s.
   */
  answerWithinMs?: number;
};

export type WebhookResponse = { status: number; body: unknown };

export type WebhookIngest = (
  rawBody: Buffer,
  signatureHeader: string | undefined,
) => Promise<WebhookResponse>;

type Outcome =
  | { kind: 'appended'; result: AppendResult; communityId: string }
  | { kind: 'quarantined'; accountId: string };

/**
 * The Stripe webhook, framework-free: mount it on the raw body, before any JSON parser.
 * 200 only once the event is durably in the ledger (also for a duplicate) or held in quarantine;
 * 400 with nothing written for a bad signature, a stale or future timestamp, or a body that is not
 * an event; 503 when the ledger (or the directory, or the quarantine) fails, so Stripe retries.
 */
export function createWebhookIngestor(options: WebhookIngestorOptions): WebhookIngest {
  const verify = createSignatureVerifier({
    secrets: options.secrets,
    toleranceSeconds: options.toleranceSeconds,
  });
  const { ledger, directory, quarantine, logger, clock } = options;
  const answerWithinMs = options.answerWithinMs ?? 10_000;
  // Stripe delivers in parallel and more than once: concurrent deliveries of one event share one append.
  const inFlight = new Map<string, Promise<Outcome>>();

  async function record(event: StripeEvent): Promise<Outcome> {
    const accountId = typeof event.account === 'string' ? event.account : null;
    const communityId = accountId
      ? await directory.communityForStripeAccount(accountId)
      : await directory.platformCommunity();
    if (!communityId) {
      const heldFor = accountId ?? PLATFORM_HOLD;
      await quarantine.put(heldFor, event);
      return { kind: 'quarantined', accountId: heldFor };
    }
    const [result] = await ledger.append([stripeEventToLedgerFact(event, communityId)]);
    return { kind: 'appended', result, communityId };
  }

  return async function ingest(rawBody, signatureHeader) {
    let event: StripeEvent;
    try {
      verify(rawBody, signatureHeader, clock());
      event = parseStripeEventOrThrow(rawBody);
    } catch (err) {
      if (err instanceof StripeWebhookRejectedError) {
        logger.warn({ code: err.code, bytes: rawBody.length }, 'stripe webhook refused');
        return { status: 400, body: { error: { code: err.code, message: err.message } } };
      }
      throw err;
    }

    let pending = inFlight.get(event.id);
    if (!pending) {
      pending = record(event);
      inFlight.set(event.id, pending);
      const id = event.id;
      void pending.then(
        () => inFlight.delete(id),
        () => inFlight.delete(id),
      );
    }
    const log = { eventId: event.id, type: event.type, account: event.account ?? null };
    try {
      const outcome = await withDeadline(pending, answerWithinMs);
      if (outcome.kind === 'quarantined') {
        logger.warn(
          { ...log, heldFor: outcome.accountId },
          'stripe event of an unknown account held in quarantine',
        );
        return { status: 200, body: { received: true, id: event.id, quarantined: true } };
      }
      logger.info(
        {
          ...log,
          communityId: outcome.communityId,
          position: outcome.result.position,
          duplicate: !outcome.result.appended,
        },
        'stripe event recorded',
      );
      return { status: 200, body: { received: true, id: event.id, duplicate: !outcome.result.appended } };
    } catch (err) {
      if (err instanceof DeadlineExceededError) {
        logger.warn(
          { ...log, waitedMs: answerWithinMs },
          'stripe event not confirmed by the ledger in time; answered 503, Stripe will retry',
        );
        return {
          status: 503,
          body: {
            error: {
              code: 'LEDGER_TIMEOUT',
              message: 'The ledger did not confirm the event in time; retry later',
            },
          },
        };
      }
      logger.error({ ...log, err }, 'stripe event not recorded; Stripe will retry');
      return {
        status: 503,
        body: {
          error: { code: 'LEDGER_UNAVAILABLE', message: 'The event could not be recorded; retry later' },
        },
      };
    }
  };
}

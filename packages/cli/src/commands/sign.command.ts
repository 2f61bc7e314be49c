import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig, withDevSecrets } from '@gatehouse/api';
import { computeSignature, parseStripeEventOrThrow } from '@gatehouse/stripe';
import { run } from './run';
import { CliUsageError } from './stripe.command';

// `gatehouse stripe sign`: the `Stripe-Signature` header for a payload, so an event can be sent to
// `/webhooks/stripe` by hand (curl) the way Stripe would send it.

export type SignOptions = { secret?: string; timestamp?: string };

/** `t=<timestamp>,v1=<HMAC-SHA256 of "t.body">`, over the exact bytes given. */
export function signatureHeader(body: Buffer, secret: string, timestamp: number): string {
  return `t=${timestamp},v1=${computeSignature(body, timestamp, secret)}`;
}

export function parseTimestampOrThrow(value: string | undefined, now: Date): number {
  if (value === undefined) return Math.floor(now.getTime() / 1000);
  if (!/^\d{1,12}$/.test(value.trim()))
    throw new CliUsageError(
      `--timestamp must be unix seconds (e.g. ${Math.floor(now.getTime() / 1000)}); got "${value}"`,
    );
  return Number(value.trim());
}

function readBody(file: string | undefined): Buffer {
  if (file === undefined || file === '-') return readFileSync(0);
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CliUsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

export function signCommand(file: string | undefined, opts: SignOptions): number {
  const timestamp = parseTimestampOrThrow(opts.timestamp, new Date());
  // The secret the local server checks: STRIPE_WEBHOOK_SECRET (its first secret), else the
  // development secret kept under GATEHOUSE_DATA_DIR.
  const secret = opts.secret ?? withDevSecrets(loadConfig()).stripeWebhookSecrets[0];
  if (!secret) throw new CliUsageError('no webhook secret: set STRIPE_WEBHOOK_SECRET or pass --secret');
  const body = readBody(file);
  if (body.length === 0) throw new CliUsageError('the payload is empty');
  // Bodies that are not Stripe events are signed too (to try the server's answers), with a warning.
  try {
    parseStripeEventOrThrow(body);
  } catch (err) {
    process.stderr.write(`note: the server will refuse this body (400): ${(err as Error).message}\n`);
  }
  process.stdout.write(`${signatureHeader(body, secret, timestamp)}\n`);
  return 0;
}

/** Adds `sign` under the `stripe` command group. */
export function registerSignCommand(program: Command): void {
  const stripe = program.commands.find((c) => c.name() === 'stripe') ?? program.command('stripe');
  stripe
    .command('sign')
    .description(
      'print the Stripe-Signature header for a payload (a file, or stdin), to send it to /webhooks/stripe by hand',
    )
    .argument('[file]', 'the payload, sent byte for byte (default: stdin)')
    .option(
      '--secret <whsec>',
      "the webhook secret (default: STRIPE_WEBHOOK_SECRET's first, or the dev secret)",
    )
    .option('--timestamp <unix>', 'the signing time in unix seconds (default: now)')
    .action(run((file: string | undefined, opts: SignOptions) => signCommand(file, opts)));
}

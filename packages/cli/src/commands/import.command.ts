import type { Command } from 'commander';
import pino from 'pino';
import { createStripeClient, ImportService, loadConfig, type ImportProgress } from '@gatehouse/api';
import { CatalogQuery, MigrationQuery } from '@gatehouse/projections';
import { openRegions } from './regions';
import { CliUsageError } from './stripe.command';
import { run } from './run';

// `gatehouse stripe import`: bring a community's existing Stripe subscribers in, without a new charge.

export type ImportCommandOptions = { community: string; price: string[]; dryRun?: boolean; json?: boolean };

function progressLine(p: ImportProgress): string {
  const of = p.total === undefined ? '' : ` of ${p.total}`;
  const what = { listing: 'subscriptions listed', appending: 'facts appended' }[p.phase];
  return `${p.done}${of} ${what}\n`;
}

export async function importCommand(opts: ImportCommandOptions): Promise<number> {
  const prices = opts.price
    .flatMap((p) => p.split(','))
    .map((p) => p.trim())
    .filter(Boolean);
  const bad = prices.filter((p) => !p.startsWith('price_'));
  if (prices.length === 0 || bad.length > 0)
    throw new CliUsageError(`--price takes Stripe price ids (price_…); got ${bad.join(', ') || 'none'}`);
  const config = loadConfig();
  const stripe = createStripeClient(config);
  if (!stripe) throw new CliUsageError('STRIPE_SECRET_KEY is not set: the Stripe API cannot be reached');
  // The stores of the community's region: its customers' data stays there.
  const set = await openRegions(
    config,
    pino({ level: config.logLevel, base: { service: 'gatehouse' } }, pino.destination(2)),
    opts.community,
  );
  const { stores } = set.regions[0];
  try {
    const imports = new ImportService({
      ledger: stores.ledger,
      clock: () => new Date(),
      stripe,
      catalog: new CatalogQuery(stores.dataSource),
      migration: new MigrationQuery(stores.dataSource),
    });
    process.stderr.write(
      `${opts.dryRun ? 'dry run: ' : ''}importing subscriptions on ${prices.join(', ')} into ${opts.community}…\n`,
    );
    const report = await imports.importStripeSubscriptions(
      { sub: 'cli:stripe-import', roles: ['platform-admin'] },
      { communityId: opts.community, stripePriceIds: prices, dryRun: opts.dryRun === true },
      (p) => process.stderr.write(progressLine(p)),
    );
    process.stdout.write(
      opts.json
        ? `${JSON.stringify(report, null, 2)}\n`
        : [
            `${report.dryRun ? 'would link' : 'linked'} ${report.linked}, ${report.dryRun ? 'would invite' : 'invited'} ${report.invited}, skipped ${report.skipped}`,
            ...report.problems.map((p) => `problem: ${p}`),
            '',
          ].join('\n'),
    );
    return 0;
  } finally {
    await set.close();
  }
}

/** Adds `import` under the `stripe` command group. */
export function registerImportCommand(program: Command): void {
  const stripe = program.commands.find((c) => c.name() === 'stripe') ?? program.command('stripe');
  stripe
    .command('import')
    .description(
      "import a community's existing Stripe subscriptions on the given prices; idempotent, resumable",
    )
    .requiredOption('--community <id>', 'the community (its connected Stripe account is read)')
    .requiredOption('--price <stripePriceIds...>', 'Stripe price ids (repeatable or comma-separated)')
    .option('--dry-run', 'report what would happen; write nothing')
    .option('--json', 'print the report as JSON')
    .action(run((opts: ImportCommandOptions) => importCommand(opts)));
}

import type { Command } from 'commander';
import { createLogger, loadConfig, openStores } from '@gatehouse/api';
import { exportJsonl } from '@gatehouse/ledger';
import { LedgerEventsQuery } from '@gatehouse/projections';
import { run } from './run';

type Window = { community?: string; since?: string; until?: string; types?: string };

function instant(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const relative = /^(\d+)(m|h|d)$/.exec(value);
  if (relative) {
    const ms =
      Number(relative[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 'm' | 'h' | 'd'];
    return new Date(Date.now() - ms).toISOString();
  }
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new Error(`--${flag} must be an ISO date-time or a duration like 72h or 30d, got "${value}"`);
  return new Date(t).toISOString();
}

function quietConfig() {
  const config = loadConfig();
  // Logs go to stderr at warn: stdout carries the data.
  const log = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  return { config, log };
}

async function exportCommand(opts: Window): Promise<number> {
  const { config, log } = quietConfig();
  const stores = await openStores(config, log, { reuseRunning: true });
  try {
    const filter = {
      communityId: opts.community,
      since: instant('since', opts.since),
      until: instant('until', opts.until),
      types: opts.types
        ? opts.types
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean)
        : undefined,
    };
    const started = Date.now();
    const interactive = process.stderr.isTTY;
    const done = await exportJsonl(
      stores.ledger,
      filter,
      process.stdout,
      (p) => {
        const rate = Math.round(p.exported / Math.max(0.001, (Date.now() - started) / 1000));
        const line = `exported ${p.exported} of ${p.scanned} scanned (${rate}/s)`;
        process.stderr.write(interactive ? `\r${line}` : `${line}\n`);
      },
      { progressEvery: 10_000 },
    );
    process.stderr.write(`${interactive ? '\n' : ''}done: ${done.exported} events exported\n`);
    return 0;
  } finally {
    await stores.close();
  }
}

async function verifyCommand(opts: { community?: string }): Promise<number> {
  const { config, log } = quietConfig();
  const stores = await openStores(config, log, { reuseRunning: true });
  try {
    const query = new LedgerEventsQuery(stores.dataSource);
    const [{ n }] = await stores.dataSource.query<{ n: number }[]>(
      'SELECT count(*)::int AS n FROM ledger_events WHERE $1::text IS NULL OR community_id = $1',
      [opts.community ?? null],
    );
    const broken = await query.verifyArchive(opts.community);
    if (broken) {
      process.stdout.write(
        `BROKEN: community ${broken.communityId}, event #${broken.sequence} (${broken.eventId}): ${broken.reason} ` +
          `expected ${broken.expected}, found ${broken.actual}\n`,
      );
      return 1;
    }
    process.stdout.write(`ok: ${n} archived events, every hash link holds\n`);
    return 0;
  } finally {
    await stores.close();
  }
}

async function tailCommand(opts: {
  community?: string;
  types?: string;
  fromStart?: boolean;
}): Promise<number> {
  const { config, log } = quietConfig();
  const stores = await openStores(config, log, { reuseRunning: true });
  const types = opts.types
    ? opts.types
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)
    : undefined;
  try {
    // Start at the current head unless asked to replay: a tail shows what arrives from now on.
    let after: string | undefined;
    if (!opts.fromStart) {
      for await (const e of stores.ledger.read({ communityId: opts.community }))
        after = stores.ledger.advance(after, e);
    }
    const sub = stores.ledger.subscribe(
      `tail-${process.pid}`,
      { after, communityId: opts.community, types },
      async (events) => {
        for (const e of events) process.stdout.write(JSON.stringify(e) + '\n');
      },
    );
    process.stderr.write('following the ledger (Ctrl-C to stop)\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      sub.done.then(resolve, (err: Error) => {
        process.stderr.write(`gatehouse: the subscription stopped: ${err.message}\n`);
        resolve();
      });
    });
    await sub.stop();
    return 0;
  } finally {
    await stores.close();
  }
}

export function registerLedgerCommands(program: Command): void {
  const ledger = program.command('ledger').description('read, export and verify the entitlement ledger');
  ledger
    .command('export')
    .description('stream ledger events as JSON Lines to stdout (progress on stderr)')
    .option('--community <id>', 'only this community')
    .option('--since <when>', 'recorded at or after (ISO date-time, or 72h / 30d ago)')
    .option('--until <when>', 'recorded before (ISO date-time, or a duration ago)')
    .option('--types <list>', 'comma-separated event types')
    .action(run((opts: Window) => exportCommand(opts)));
  ledger
    .command('verify')
    .description("check every community's hash chain in the archive; exit 1 at the first broken link")
    .option('--community <id>', 'only this community')
    .action(run((opts: { community?: string }) => verifyCommand(opts)));
  ledger
    .command('tail')
    .description('print ledger events as they are appended (JSON Lines)')
    .option('--community <id>', 'only this community')
    .option('--types <list>', 'comma-separated event types')
    .option('--from-start', 'print the whole ledger first')
    .action(run((opts: { community?: string; types?: string; fromStart?: boolean }) => tailCommand(opts)));
}

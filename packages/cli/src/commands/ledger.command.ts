import type { Command } from 'commander';
import { createLogger, loadConfig } from '@gatehouse/api';
import { exportJsonl, type Subscription } from '@gatehouse/ledger';
import { LedgerEventsQuery } from '@gatehouse/projections';
import { openRegions } from './regions';
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
  const set = await openRegions(config, log, opts.community);
  try {
    const started = Date.now();
    const interactive = process.stderr.isTTY;
    let exported = 0;
    const counts: string[] = [];
    // One region after another: events carry their community, and no order holds between regions.
    for (const r of set.regions) {
      const before = exported;
      const done = await exportJsonl(
        r.stores.ledger,
        filter,
        process.stdout,
        (p) => {
          const total = before + p.exported;
          const rate = Math.round(total / Math.max(0.001, (Date.now() - started) / 1000));
          const line = `${set.label(r.region)}exported ${p.exported} of ${p.scanned} scanned (${rate}/s)`;
          process.stderr.write(interactive ? `\r${line}` : `${line}\n`);
        },
        { progressEvery: 10_000 },
      );
      exported += done.exported;
      counts.push(`${r.region} ${done.exported}`);
    }
    const byRegion = set.multiRegion ? ` (${counts.join(', ')})` : '';
    process.stderr.write(`${interactive ? '\n' : ''}done: ${exported} events exported${byRegion}\n`);
    return 0;
  } finally {
    await set.close();
  }
}

async function verifyCommand(opts: { community?: string }): Promise<number> {
  const { config, log } = quietConfig();
  const set = await openRegions(config, log, opts.community);
  try {
    let failed = false;
    for (const r of set.regions) {
      const query = new LedgerEventsQuery(r.stores.dataSource);
      const [{ n }] = await r.stores.dataSource.query<{ n: number }[]>(
        'SELECT count(*)::int AS n FROM ledger_events WHERE $1::text IS NULL OR community_id = $1',
        [opts.community ?? null],
      );
      const broken = await query.verifyArchive(opts.community);
      if (broken) {
        process.stdout.write(
          `${set.label(r.region)}BROKEN: community ${broken.communityId}, event #${broken.sequence} (${broken.eventId}): ${broken.reason} ` +
            `expected ${broken.expected}, found ${broken.actual}\n`,
        );
        failed = true;
        continue;
      }
      process.stdout.write(`${set.label(r.region)}ok: ${n} archived events, every hash link holds\n`);
    }
    return failed ? 1 : 0;
  } finally {
    await set.close();
  }
}

async function tailCommand(opts: {
  community?: string;
  types?: string;
  fromStart?: boolean;
}): Promise<number> {
  const { config, log } = quietConfig();
  const set = await openRegions(config, log, opts.community);
  const types = opts.types
    ? opts.types
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)
    : undefined;
  try {
    const subscriptions: Subscription[] = [];
    for (const { stores } of set.regions) {
      // Start at the current head unless asked to replay: a tail shows what arrives from now on.
      const after = opts.fromStart ? undefined : ((await stores.ledger.head(opts.community)) ?? undefined);
      subscriptions.push(
        stores.ledger.subscribe(
          `tail-${process.pid}`,
          { after, communityId: opts.community, types },
          async (events) => {
            for (const e of events) process.stdout.write(JSON.stringify(e) + '\n');
          },
        ),
      );
    }
    process.stderr.write(
      `following the ledger${set.multiRegion ? ` of ${set.regions.map((r) => r.region).join(', ')}` : ''} (Ctrl-C to stop)\n`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      for (const sub of subscriptions)
        sub.done.then(resolve, (err: Error) => {
          process.stderr.write(`gatehouse: the subscription stopped: ${err.message}\n`);
          resolve();
        });
    });
    await Promise.all(subscriptions.map((sub) => sub.stop()));
    return 0;
  } finally {
    await set.close();
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
    .description(
      "check every community's hash chain in the archive (every region's); exit 1 on a broken link",
    )
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

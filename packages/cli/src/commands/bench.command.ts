import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { Client } from 'pg';
import { createLogger, loadConfig, openDatabase } from '@gatehouse/api';
import { runLedgerBench } from '@gatehouse/ledger';
import { runAccessBench, runProjectionBench } from '@gatehouse/projections';
import { runAccessHttpBench } from '../bench/access-http.bench';
import { runIngestBench } from '../bench/ingest.bench';
import { runReconcileBench } from '../bench/reconcile.bench';
import { run } from './run';

// `npm run bench -- <suite>`: figures, not tests. Each suite prints medians and its ratio against a
// baseline measured in the same process.

const SUITES = ['ledger', 'access', 'projection', 'ingest', 'reconcile'] as const;
type Suite = (typeof SUITES)[number];

const log = (line: string) => process.stdout.write(`${line}\n`);

/** A fresh database on the same server for the length of `fn`, so a benchmark never meets old read models. */
async function withScratchDatabase<T>(serverUrl: string, fn: (url: string) => Promise<T>): Promise<T> {
  const name = `gatehouse_bench_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string) => {
    const c = new Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  try {
    return await fn(u.toString());
  } finally {
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
}

export async function benchCommand(suites: string[], opts: { quick?: boolean }): Promise<number> {
  const chosen = (suites.length ? suites : ['ledger', 'access', 'projection']) as Suite[];
  for (const s of chosen) {
    if (!SUITES.includes(s)) {
      process.stderr.write(`gatehouse bench: unknown suite "${s}" (use ${SUITES.join(', ')})\n`);
      return 2;
    }
  }
  const config = loadConfig();
  const db = await openDatabase(config, createLogger({ logLevel: 'warn' }));
  try {
    for (const suite of chosen) {
      log(`\n== ${suite} (${new Date().toISOString()})`);
      if (suite === 'ledger') {
        await runLedgerBench({
          databaseUrl: db.url,
          kafkaBrokers: config.kafkaBrokers,
          events: opts.quick ? 2_000 : 5_000,
          log,
        });
      } else if (suite === 'projection') {
        await runProjectionBench({ databaseUrl: db.url, events: opts.quick ? 10_000 : 50_000, log });
      } else if (suite === 'access') {
        await runAccessBench({ databaseUrl: db.url, events: opts.quick ? 5_000 : 20_000, log });
        await withScratchDatabase(db.url, (url) =>
          runAccessHttpBench({ databaseUrl: url, seconds: opts.quick ? 3 : 8, log }),
        );
      } else if (suite === 'reconcile') {
        await withScratchDatabase(db.url, (url) =>
          runReconcileBench({ databaseUrl: url, quick: !!opts.quick, log }),
        );
      } else if (suite === 'ingest') {
        await runIngestBench({
          databaseUrl: db.url,
          kafkaBrokers: config.kafkaBrokers,
          quick: !!opts.quick,
          log,
        });
      }
    }
  } finally {
    await db.close();
  }
  return 0;
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(`print performance figures beside in-process baselines (suites: ${SUITES.join(', ')})`)
    .argument('[suites...]', 'which suites to run (default: ledger access projection)')
    .option('--quick', 'smaller runs')
    .action(run((suites: string[], opts: { quick?: boolean }) => benchCommand(suites, opts)));
}

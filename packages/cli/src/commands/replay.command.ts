import type { Command } from 'commander';
import {
  createLogger,
  loadConfig,
  openStores,
  regionProjector,
  regionStores,
  signToken,
  withDevSecrets,
} from '@gatehouse/api';
import { AccessIndex, ProjectorLease, type RebuildReport } from '@gatehouse/projections';
import { run } from './run';
import { GraphQLCallError, graphqlClient, serverAnswers, serverUrl } from './server-client';

// `gatehouse replay`: rebuild every read model from position zero of the ledger. With a server
// running, the server does it (its projector pauses, replays into shadow tables and swaps them in,
// so its in-memory access index follows); with none, this process does it on the stores directly.

export type ReplayOptions = { url?: string };

function printReports(reports: readonly (RebuildReport & { region?: string })[]): void {
  for (const r of reports) {
    const where = r.region ? ` [${r.region}]` : '';
    process.stdout.write(
      `${r.projection.padEnd(18)}${where} ${String(r.events).padStart(9)} events replayed in ${r.seconds.toFixed(1)} s\n`,
    );
  }
}

async function replayOnServer(url: string, jwtSecret: string): Promise<number> {
  process.stderr.write(`replaying the ledger on the server at ${url} (the answer comes when it is done)…\n`);
  const gql = graphqlClient(url, signToken(jwtSecret, { sub: 'cli:replay', roles: ['platform-admin'] }));
  try {
    const { rebuildProjections } = await gql<{ rebuildProjections: RebuildReport[] }>(
      'mutation { rebuildProjections { projection events seconds } }',
    );
    printReports(rebuildProjections);
    return 0;
  } catch (err) {
    if (err instanceof GraphQLCallError && err.codes.includes('UNAUTHENTICATED'))
      throw new Error(`the server at ${url} refused the token: is GATEHOUSE_JWT_SECRET the one it uses?`);
    throw new Error(`the server at ${url} did not rebuild: ${(err as Error).message}`);
  }
}

async function replayHere(): Promise<number> {
  const config = loadConfig();
  const log = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  const interactive = process.stderr.isTTY;
  for (const { region, config: regionConfig } of regionStores(config)) {
    const stores = await openStores(regionConfig, log.child({ region }), { reuseRunning: true });
    // Replayed under the projector lease: a server projecting these read models (one this command
    // cannot reach, say) would move them under the replay, and one that starts meanwhile follows.
    const lease = new ProjectorLease(stores.dataSource, { log });
    const idle = async () => undefined;
    try {
      await lease.start({ lead: idle, lose: idle, message: idle, resync: idle });
      if (!lease.isLeader())
        throw new Error(
          `${region}: a server projects these read models (it holds the projector lease): replay on it with --url, or stop it first`,
        );
      // The index is what the server keeps in memory; here it only receives the replayed rows.
      const projector = regionProjector({
        dataSource: stores.dataSource,
        ledger: stores.ledger,
        accessIndex: new AccessIndex(),
        log,
        lease,
      });
      // Each projection replays the ledger from the start: its own count is printed every 10,000.
      const printed = new Map<string, number>();
      const reports = await projector.rebuild(undefined, (p) => {
        if (p.events - (printed.get(p.projection) ?? 0) < 10_000) return;
        printed.set(p.projection, p.events);
        const line = `${region}: ${p.projection}: ${p.events} events replayed`;
        process.stderr.write(interactive ? `\r${line}   ` : `${line}\n`);
      });
      if (interactive && printed.size > 0) process.stderr.write('\n');
      printReports(reports.map((r) => ({ ...r, region })));
    } finally {
      await lease.stop();
      await stores.close();
    }
  }
  return 0;
}

export async function replayCommand(opts: ReplayOptions): Promise<number> {
  const config = withDevSecrets(loadConfig());
  const url = serverUrl(opts.url, config.port);
  if (await serverAnswers(url)) return replayOnServer(url, config.jwtSecret);
  if (opts.url) throw new Error(`no server answers at ${url}`);
  process.stderr.write(`no server answers at ${url}: replaying the ledger in this process\n`);
  return replayHere();
}

export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      'rebuild every read model from the start of the ledger (on the running server, else in this process)',
    )
    .option('--url <url>', 'the running server (default http://localhost:$PORT)')
    .action(run((opts: ReplayOptions) => replayCommand(opts)));
}

import type { Command } from 'commander';
import { registerBenchCommand } from './bench.command';
import { registerDemoCommand } from './demo.command';
import { registerImportCommand } from './import.command';
import { registerSignCommand } from './sign.command';
import { registerLedgerCommands } from './ledger.command';
import { migrateCommand } from './migrate.command';
import { registerReplayCommand } from './replay.command';
import { run } from './run';
import { schemaCommand } from './schema.command';
import { serveCommand } from './serve.command';
import { registerStripeCommands } from './stripe.command';
import { tokenCommand } from './token.command';

/** Every `gatehouse` command. A command module adds itself here. */
export function registerCommands(program: Command): void {
  program
    .command('serve')
    .description('start the server: GraphQL, webhooks, health, metrics and the projector')
    .addHelpText(
      'after',
      '\nConfigured by environment variables (README, Configuration; .env.example lists them): with no\n' +
        'DATABASE_URL an embedded PostgreSQL under GATEHOUSE_DATA_DIR. Of several servers on the same\n' +
        'read models one projects at a time; GATEHOUSE_PROJECTOR=off keeps this one from projecting.\n' +
        'SIGTERM or Ctrl-C: new connections are refused and open requests answered for up to\n' +
        'GATEHOUSE_SHUTDOWN_GRACE_SECONDS (15); a second signal stops waiting for them. A database query\n' +
        'that waits GATEHOUSE_DATABASE_TIMEOUT_SECONDS (30) without an answer has its connection closed.',
    )
    .action(run(() => serveCommand()));

  program
    .command('migrate')
    .description('apply read-model migrations and create the ledger tables or topic')
    .action(run(() => migrateCommand()));

  registerReplayCommand(program);
  registerLedgerCommands(program);
  registerDemoCommand(program);
  registerBenchCommand(program);

  registerStripeCommands(program);
  registerImportCommand(program);
  registerSignCommand(program);

  program
    .command('schema')
    .description('print the GraphQL schema (SDL) emitted by the resolvers')
    .option('--out <file>', 'write it to a file')
    .option('--check <file>', 'exit 1 when the file differs from the resolvers')
    .action(run((opts: { out?: string; check?: string }) => schemaCommand(opts)));

  program
    .command('token')
    .description('print a bearer token signed with GATEHOUSE_JWT_SECRET')
    .requiredOption('--sub <id>', "the caller's id (for a member: the member id)")
    .requiredOption(
      '--role <role...>',
      'platform-admin, admin:<communityId> or member:<communityId> (repeatable)',
    )
    .option('--expires <duration>', 'lifetime, e.g. 12h or 7d', '12h')
    .action(run((opts: { sub: string; role: string[]; expires: string }) => tokenCommand(opts)));
}

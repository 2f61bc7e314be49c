#!/usr/bin/env node
import 'reflect-metadata';
import { Command } from 'commander';
import { ConfigError } from '@gatehouse/api';
import { schemaCommand } from './commands/schema.command';
import { serveCommand } from './commands/serve.command';
import { tokenCommand } from './commands/token.command';

const program = new Command('gatehouse')
  .description('Gatehouse: payments and access for online communities')
  .showHelpAfterError();

function run<A extends unknown[]>(fn: (...args: A) => Promise<number> | number) {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`gatehouse: configuration error: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      const e = err as Error & { code?: string };
      process.stderr.write(`gatehouse: ${e.message}\n`);
      if (process.env.GATEHOUSE_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exitCode = 1;
    }
  };
}

program
  .command('serve')
  .description('start the server: GraphQL, webhooks, health, metrics and the projector')
  .action(run(() => serveCommand()));

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
  .requiredOption('--role <role...>', 'platform-admin, admin:<communityId> or member:<communityId> (repeatable)')
  .option('--expires <duration>', 'lifetime, e.g. 12h or 7d', '12h')
  .action(run((opts: { sub: string; role: string[]; expires: string }) => tokenCommand(opts)));

export { program };

if (require.main === module) {
  program.parseAsync(process.argv).catch((err: Error) => {
    process.stderr.write(`gatehouse: ${err.message}\n`);
    process.exit(1);
  });
}

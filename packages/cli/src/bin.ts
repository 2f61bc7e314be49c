#!/usr/bin/env node
import 'reflect-metadata';
import { Command } from 'commander';
import { registerCommands } from './commands';

const program = new Command('gatehouse')
  .description('Gatehouse: payments and access for online communities')
  .showHelpAfterError();

registerCommands(program);

export { program };

if (require.main === module) {
  program.parseAsync(process.argv).catch((err: Error) => {
    process.stderr.write(`gatehouse: ${err.message}\n`);
    process.exit(1);
  });
}

import { readFileSync, writeFileSync } from 'node:fs';
import { printSchema } from 'graphql';
import { buildGatehouseSchema } from '@gatehouse/api';

const HEADER =
  '# Emitted by `npm run schema` from the type-graphql resolvers in packages/api. Do not edit.\n\n';

export async function emitSchemaSdl(): Promise<string> {
  return HEADER + printSchema(await buildGatehouseSchema()) + '\n';
}

/** Write schema.graphql, or with `check` fail when the committed file differs from the code. */
export async function schemaCommand(opts: { out?: string; check?: string }): Promise<number> {
  const sdl = await emitSchemaSdl();
  if (opts.check) {
    let current = '';
    try {
      current = readFileSync(opts.check, 'utf8');
    } catch {
      process.stderr.write(`${opts.check} is missing: run \`npm run schema\`\n`);
      return 1;
    }
    if (current !== sdl) {
      process.stderr.write(
        `${opts.check} has drifted from the resolvers: run \`npm run schema\` and commit it\n`,
      );
      return 1;
    }
    process.stdout.write(`${opts.check} matches the resolvers\n`);
    return 0;
  }
  if (opts.out) {
    writeFileSync(opts.out, sdl);
    process.stdout.write(`wrote ${opts.out}\n`);
  } else process.stdout.write(sdl);
  return 0;
}

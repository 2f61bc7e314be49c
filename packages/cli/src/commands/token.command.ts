import { loadConfig, signToken } from '@gatehouse/api';

export function tokenCommand(opts: { sub: string; role: string[]; expires: string }): number {
  const config = loadConfig();
  if (config.jwtSecretGenerated) {
    process.stderr.write('GATEHOUSE_JWT_SECRET is not set: a token signed now would not be accepted by any server\n');
    return 1;
  }
  const roles = opts.role.flatMap((r) => r.split(',')).map((r) => r.trim()).filter(Boolean);
  for (const r of roles) {
    if (r !== 'platform-admin' && !/^(admin|member):[A-Za-z0-9_.-]+$/.test(r)) {
      process.stderr.write(`--role ${r}: use platform-admin, admin:<communityId> or member:<communityId>\n`);
      return 1;
    }
  }
  process.stdout.write(signToken(config.jwtSecret, { sub: opts.sub, roles }, opts.expires as never) + '\n');
  return 0;
}

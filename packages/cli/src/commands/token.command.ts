import { loadConfig, signToken, withDevSecrets } from '@gatehouse/api';

export function tokenCommand(opts: { sub: string; role: string[]; expires: string }): number {
  // Without GATEHOUSE_JWT_SECRET, the local server's development secret (under GATEHOUSE_DATA_DIR) signs it.
  const config = withDevSecrets(loadConfig());
  const roles = opts.role
    .flatMap((r) => r.split(','))
    .map((r) => r.trim())
    .filter(Boolean);
  for (const r of roles) {
    if (r !== 'platform-admin' && !/^(admin|member):[A-Za-z0-9_.-]+$/.test(r)) {
      process.stderr.write(`--role ${r}: use platform-admin, admin:<communityId> or member:<communityId>\n`);
      return 1;
    }
  }
  process.stdout.write(signToken(config.jwtSecret, { sub: opts.sub, roles }, opts.expires as never) + '\n');
  return 0;
}

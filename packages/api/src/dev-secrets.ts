import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config';

// Outside production, secrets that were not configured are generated once and kept under the data
// directory, so tokens stay valid across restarts and `gatehouse token` / `gatehouse demo` can sign
// what the local server accepts. Production requires them in the environment (config.ts).

type DevSecrets = { jwtSecret: string; stripeWebhookSecret: string };

export function devSecretsFile(dataDir: string): string {
  return path.join(dataDir, 'dev-secrets.json');
}

function loadOrCreate(dataDir: string): DevSecrets {
  const file = devSecretsFile(dataDir);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  mkdirSync(dataDir, { recursive: true });
  const secrets: DevSecrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    stripeWebhookSecret: `whsec_dev_${randomBytes(24).toString('hex')}`,
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  return secrets;
}

/** Fills in the secrets the environment left unset (never in production). */
export function withDevSecrets(config: Config): Config & { devSecrets: string[] } {
  const missing: string[] = [];
  if (config.production) return { ...config, devSecrets: missing };
  if (!config.jwtSecretGenerated && config.stripeWebhookSecrets.length > 0)
    return { ...config, devSecrets: missing };
  const dev = loadOrCreate(config.dataDir);
  let next: Config = config;
  if (config.jwtSecretGenerated) {
    next = { ...next, jwtSecret: dev.jwtSecret, jwtSecretGenerated: false };
    missing.push('GATEHOUSE_JWT_SECRET');
  }
  if (config.stripeWebhookSecrets.length === 0) {
    next = { ...next, stripeWebhookSecrets: [dev.stripeWebhookSecret] };
    missing.push('STRIPE_WEBHOOK_SECRET');
  }
  return { ...next, devSecrets: missing };
}

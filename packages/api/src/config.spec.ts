import { ConfigError, loadConfig } from './config';

const base = { STRIPE_WEBHOOK_SECRET: 'whsec_test', GATEHOUSE_JWT_SECRET: 'x'.repeat(32) };

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('config', () => {
  it('starts on the embedded defaults when nothing is set', () => {
    const c = loadConfig({});
    expect(c.port).toBe(4000);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.kafkaBrokers).toBeUndefined();
    expect(c.dataDir.endsWith('.gatehouse')).toBe(true);
    expect(c.stripeWebhookToleranceSeconds).toBe(300);
    expect(c.jwtSecretGenerated).toBe(true);
    expect(c.publicUrl).toBe('http://localhost:4000');
    expect(c.publicUrlFromListener).toBe(false);
  });

  it('takes invitation links’ base from the listening server on PORT=0, unless GATEHOUSE_PUBLIC_URL is set', () => {
    expect(loadConfig({ PORT: '0' }).publicUrlFromListener).toBe(true);
    expect(loadConfig({ PORT: '4100' })).toMatchObject({
      publicUrl: 'http://localhost:4100',
      publicUrlFromListener: false,
    });
    expect(
      loadConfig({ PORT: '0', GATEHOUSE_PUBLIC_URL: 'https://join.example.com' }).publicUrlFromListener,
    ).toBe(false);
  });

  it('reads every documented variable', () => {
    const c = loadConfig({
      ...base,
      PORT: '0',
      DATABASE_URL: 'postgres://u:p@db:5432/gh',
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      STRIPE_WEBHOOK_SECRET: 'whsec_old,whsec_new',
      STRIPE_SECRET_KEY: 'sk_test_123',
      STRIPE_API_BASE: 'http://127.0.0.1:12111',
      GATEHOUSE_PUBLIC_URL: 'https://join.example.com/',
      GATEHOUSE_REGIONS: '{"in":{"databaseUrl":"postgres://in:5432/gh","kafkaBrokers":"kin:9092"},"us":{}}',
    });
    expect(c.port).toBe(0);
    expect(c.kafkaBrokers).toEqual(['k1:9092', 'k2:9092']);
    expect(c.stripeWebhookSecrets).toEqual(['whsec_old', 'whsec_new']);
    expect(c.stripeApiBase?.port).toBe('12111');
    expect(c.publicUrl).toBe('https://join.example.com');
    expect(c.regions?.in).toEqual({ databaseUrl: 'postgres://in:5432/gh', kafkaBrokers: ['kin:9092'] });
  });

  it.each([
    ['PORT', { PORT: 'forty' }, /integer/],
    ['PORT', { PORT: '70000' }, /between/],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x/y' }, /postgres:\/\//],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }, /URL/],
    ['KAFKA_BROKERS', { KAFKA_BROKERS: 'localhost' }, /host:port/],
    ['STRIPE_WEBHOOK_SECRET', { STRIPE_WEBHOOK_SECRET: 'secret' }, /whsec_/],
    ['STRIPE_SECRET_KEY', { STRIPE_SECRET_KEY: 'pk_test_1' }, /sk_test_/],
    ['STRIPE_API_BASE', { STRIPE_API_BASE: 'ftp://x' }, /http/],
    ['STRIPE_WEBHOOK_TOLERANCE_SECONDS', { STRIPE_WEBHOOK_TOLERANCE_SECONDS: '0' }, /replay/],
    ['STRIPE_WEBHOOK_TOLERANCE_SECONDS', { STRIPE_WEBHOOK_TOLERANCE_SECONDS: '-5' }, /greater than 0/],
    ['GATEHOUSE_JWT_SECRET', { GATEHOUSE_JWT_SECRET: 'short' }, /32/],
    ['GATEHOUSE_REGIONS', { GATEHOUSE_REGIONS: '{"mars":{}}' }, /unknown region/],
    ['GATEHOUSE_REGIONS', { GATEHOUSE_REGIONS: '{' }, /JSON/],
    ['GATEHOUSE_PUBLIC_URL', { GATEHOUSE_PUBLIC_URL: 'nope' }, /URL/],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }, /one of/],
  ])('rejects a bad %s with a message naming it', (variable, env, message) => {
    const err = errorOf(env);
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(new RegExp(`^${variable}`));
    expect(err.message).toMatch(message);
  });

  it('projects by default; GATEHOUSE_PROJECTOR=off keeps the server off the projector lease', () => {
    expect(loadConfig({}).projector).toBe(true);
    expect(loadConfig({ GATEHOUSE_PROJECTOR: 'on' }).projector).toBe(true);
    expect(loadConfig({ GATEHOUSE_PROJECTOR: 'off' }).projector).toBe(false);
    expect(loadConfig({ GATEHOUSE_PROJECTOR: 'OFF' }).projector).toBe(false);
    const err = errorOf({ GATEHOUSE_PROJECTOR: 'no' });
    expect(err.message).toContain('GATEHOUSE_PROJECTOR');
    expect(err.message).toContain('must be on or off, got "no"');
  });

  it('lets open requests finish for 15 s on a stop signal; GATEHOUSE_SHUTDOWN_GRACE_SECONDS sets it', () => {
    expect(loadConfig({}).shutdownGraceSeconds).toBe(15);
    expect(loadConfig({ GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '0' }).shutdownGraceSeconds).toBe(0);
    expect(loadConfig({ GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '25' }).shutdownGraceSeconds).toBe(25);
    expect(errorOf({ GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '-1' }).message).toContain(
      'GATEHOUSE_SHUTDOWN_GRACE_SECONDS: must be between 0 and 3600, got -1',
    );
    expect(errorOf({ GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '2s' }).message).toContain(
      'GATEHOUSE_SHUTDOWN_GRACE_SECONDS: must be an integer, got "2s"',
    );
  });

  it('answers a webhook 503 after 10 s without the ledger; GATEHOUSE_WEBHOOK_TIMEOUT_SECONDS sets it', () => {
    expect(loadConfig({}).webhookTimeoutSeconds).toBe(10);
    expect(loadConfig({ GATEHOUSE_WEBHOOK_TIMEOUT_SECONDS: '3' }).webhookTimeoutSeconds).toBe(3);
    expect(errorOf({ GATEHOUSE_WEBHOOK_TIMEOUT_SECONDS: '0' }).message).toContain(
      'GATEHOUSE_WEBHOOK_TIMEOUT_SECONDS: must be between 1 and 120, got 0',
    );
  });

  it('gives a database query 30 s to be answered; GATEHOUSE_DATABASE_TIMEOUT_SECONDS sets it, 0 for no limit', () => {
    expect(loadConfig({}).databaseTimeoutSeconds).toBe(30);
    expect(loadConfig({ GATEHOUSE_DATABASE_TIMEOUT_SECONDS: '5' }).databaseTimeoutSeconds).toBe(5);
    expect(loadConfig({ GATEHOUSE_DATABASE_TIMEOUT_SECONDS: '0' }).databaseTimeoutSeconds).toBe(0);
    expect(errorOf({ GATEHOUSE_DATABASE_TIMEOUT_SECONDS: '-1' }).message).toContain(
      'GATEHOUSE_DATABASE_TIMEOUT_SECONDS: must be between 0 and 3600, got -1',
    );
  });

  it('keeps idle connections 65 s; GATEHOUSE_KEEP_ALIVE_SECONDS sets it', () => {
    expect(loadConfig({}).keepAliveSeconds).toBe(65);
    expect(loadConfig({ GATEHOUSE_KEEP_ALIVE_SECONDS: '620' }).keepAliveSeconds).toBe(620);
    expect(errorOf({ GATEHOUSE_KEEP_ALIVE_SECONDS: '0' }).message).toContain(
      'GATEHOUSE_KEEP_ALIVE_SECONDS: must be between 1 and 3600, got 0',
    );
  });

  it('refuses a reconciler interval without the Stripe key it lists events with', () => {
    expect(() => loadConfig({ GATEHOUSE_RECONCILE_INTERVAL: '60' })).toThrow(
      /GATEHOUSE_RECONCILE_INTERVAL: needs STRIPE_SECRET_KEY/,
    );
    expect(
      loadConfig({ GATEHOUSE_RECONCILE_INTERVAL: '60', STRIPE_SECRET_KEY: 'sk_test_1' })
        .reconcileIntervalSeconds,
    ).toBe(60);
    expect(loadConfig({ GATEHOUSE_RECONCILE_INTERVAL: '0' }).reconcileIntervalSeconds).toBe(0);
  });

  it('requires the secrets in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', STRIPE_WEBHOOK_SECRET: 'whsec_x' })).toThrow(
      /GATEHOUSE_JWT_SECRET/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', GATEHOUSE_JWT_SECRET: 'x'.repeat(32) })).toThrow(
      /STRIPE_WEBHOOK_SECRET/,
    );
  });
});

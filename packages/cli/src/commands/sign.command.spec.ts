import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { devSecretsFile } from '@gatehouse/api';
import { stripeTestKit as kit, verifyStripeSignature } from '@gatehouse/stripe';
import { CliUsageError } from './stripe.command';
import { parseTimestampOrThrow, signatureHeader, signCommand } from './sign.command';

const now = new Date('2026-01-10T12:00:00.000Z');

describe('gatehouse stripe sign', () => {
  it("makes the header Stripe's SDK makes for the same payload, secret and time", () => {
    const payload = JSON.stringify(kit.customerSubscriptionUpdated({ status: 'active' }), null, 2);
    const sdk = new Stripe('sk_test_x').webhooks.generateTestHeaderString({
      payload,
      secret: 'whsec_sign_spec',
      timestamp: 1_768_046_400,
    });
    expect(signatureHeader(Buffer.from(payload), 'whsec_sign_spec', 1_768_046_400)).toBe(sdk);
  });

  it('signs the exact bytes: a changed byte does not verify', () => {
    const body = Buffer.from('{"id":"evt_1","object":"event"}\n');
    const header = signatureHeader(body, 'whsec_a', 1_768_046_400);
    const verify = (raw: Buffer) =>
      verifyStripeSignature({ secrets: ['whsec_a'], rawBody: raw, header, now: new Date(1_768_046_400_000) });
    expect(() => verify(body)).not.toThrow();
    expect(() => verify(Buffer.from('{"id":"evt_1","object":"event"}'))).toThrow();
  });

  it.each(['abc', '-5', '1.5', '', '1e9'])('refuses --timestamp "%s"', (value) => {
    expect(() => parseTimestampOrThrow(value, now)).toThrow(CliUsageError);
  });

  it('signs at the current time unless told otherwise', () => {
    expect(parseTimestampOrThrow(undefined, now)).toBe(1_768_046_400);
    expect(parseTimestampOrThrow('1700000000', now)).toBe(1_700_000_000);
  });

  describe('without STRIPE_WEBHOOK_SECRET', () => {
    const saved = { ...process.env };
    let dir: string;
    let out: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'gh-sign-'));
      process.env.GATEHOUSE_DATA_DIR = dir;
      delete process.env.STRIPE_WEBHOOK_SECRET;
      delete process.env.NODE_ENV;
      out = '';
      jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
        out += String(chunk);
        return true;
      });
    });
    afterEach(() => {
      jest.restoreAllMocks();
      process.env = { ...saved };
      rmSync(dir, { recursive: true, force: true });
    });

    it("uses the local server's development secret", () => {
      const file = path.join(dir, 'event.json');
      const body = JSON.stringify(kit.customerSubscriptionUpdated({ status: 'active' }));
      writeFileSync(file, body);
      expect(signCommand(file, { timestamp: '1768046400' })).toBe(0);
      const { stripeWebhookSecret } = JSON.parse(readFileSync(devSecretsFile(dir), 'utf8')) as {
        stripeWebhookSecret: string;
      };
      expect(() =>
        verifyStripeSignature({
          secrets: [stripeWebhookSecret],
          rawBody: Buffer.from(body),
          header: out.trim(),
          now: new Date(1_768_046_400_000),
        }),
      ).not.toThrow();
    });

    it('says which file it cannot read', () => {
      expect(() => signCommand(path.join(dir, 'missing.json'), {})).toThrow(/cannot read .*missing\.json/);
    });
  });
});

import jwt from 'jsonwebtoken';
import { AuthError, callerFromAuthorization, signToken } from './auth';

const secret = 'auth-spec-secret-'.padEnd(40, 'x');
const bearer = (t: string) => `Bearer ${t}`;

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return (err as AuthError).code;
  }
  throw new Error('the token was accepted');
}

afterEach(() => jest.restoreAllMocks());

describe('callerFromAuthorization', () => {
  it('answers the same caller for a token it has verified before', () => {
    const token = signToken(secret, { sub: 'ann', roles: ['member:c1', 'admin:c2'] });
    const first = callerFromAuthorization(secret, bearer(token));
    expect(first).toEqual({ sub: 'ann', roles: ['member:c1', 'admin:c2'] });
    expect(callerFromAuthorization(secret, bearer(token))).toEqual(first);
  });

  it('refuses a verified token from the second its exp is reached, as jsonwebtoken does', () => {
    const start = Date.parse('2026-12-06T10:00:00.000Z');
    const now = jest.spyOn(Date, 'now').mockReturnValue(start);
    const token = signToken(secret, { sub: 'bob', roles: [] }, 60);
    expect(callerFromAuthorization(secret, bearer(token))?.sub).toBe('bob');
    now.mockReturnValue(start + 59_999);
    expect(callerFromAuthorization(secret, bearer(token))?.sub).toBe('bob');
    now.mockReturnValue(start + 60_000);
    expect(refusal(() => callerFromAuthorization(secret, bearer(token)))).toBe('UNAUTHENTICATED');
    // Not kept as valid after the refusal either.
    expect(refusal(() => callerFromAuthorization(secret, bearer(token)))).toBe('UNAUTHENTICATED');
  });

  it('keeps what it verified per secret: a token of one secret is refused under another', () => {
    const other = 'auth-spec-other-secret-'.padEnd(40, 'y');
    const token = signToken(other, { sub: 'cal', roles: ['platform-admin'] });
    expect(callerFromAuthorization(other, bearer(token))?.sub).toBe('cal');
    expect(refusal(() => callerFromAuthorization(secret, bearer(token)))).toBe('UNAUTHENTICATED');
  });

  it('refuses a tampered token after the genuine one was verified', () => {
    const token = signToken(secret, { sub: 'dot', roles: ['member:c1'] });
    callerFromAuthorization(secret, bearer(token));
    const [header, , signature] = token.split('.');
    const body = Buffer.from(JSON.stringify({ sub: 'dot', roles: ['platform-admin'] })).toString('base64url');
    expect(refusal(() => callerFromAuthorization(secret, bearer(`${header}.${body}.${signature}`)))).toBe(
      'UNAUTHENTICATED',
    );
  });

  it('refuses tokens without a subject, of another algorithm, not yet valid, or not Bearer', () => {
    const noSub = jwt.sign({ roles: [] }, secret, { algorithm: 'HS256' });
    expect(refusal(() => callerFromAuthorization(secret, bearer(noSub)))).toBe('UNAUTHENTICATED');
    const hs512 = jwt.sign({ roles: [] }, secret, { algorithm: 'HS512', subject: 'eve' });
    expect(refusal(() => callerFromAuthorization(secret, bearer(hs512)))).toBe('UNAUTHENTICATED');
    const later = jwt.sign({ roles: [] }, secret, { algorithm: 'HS256', subject: 'eve', notBefore: 60 });
    expect(refusal(() => callerFromAuthorization(secret, bearer(later)))).toBe('UNAUTHENTICATED');
    expect(refusal(() => callerFromAuthorization(secret, `Basic ${noSub}`))).toBe('UNAUTHENTICATED');
    expect(callerFromAuthorization(secret, undefined)).toBeNull();
  });
});

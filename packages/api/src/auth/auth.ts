import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';

// Bearer tokens: HS256 with GATEHOUSE_JWT_SECRET; `sub` is the caller, `roles` what it may do:
// `platform-admin`, `admin:<communityId>`, `member:<communityId>`.

export type Caller = { sub: string; roles: readonly string[] };

export class AuthError extends Error {
  constructor(
    readonly code: 'UNAUTHENTICATED' | 'FORBIDDEN',
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export function signToken(
  secret: string,
  caller: Caller,
  expiresIn: jwt.SignOptions['expiresIn'] = '12h',
): string {
  return jwt.sign({ roles: caller.roles }, secret, { algorithm: 'HS256', subject: caller.sub, expiresIn });
}

// jsonwebtoken turns a string secret into a key on every call, first trying to parse it as a public
// key; on the hot path (every GraphQL request) that costs more than the query. Keep one key per secret.
// A client sends the same token with every request, so what a token says is kept once it has been
// verified, until it expires (the same instant jsonwebtoken would refuse it): the signature is not
// checked again for each request. Tokens that fail are not kept.
type Verified = { caller: Caller; expiresAt: number | null };
const secrets = new Map<string, { key: KeyObject; verified: LRUCache<string, Verified> }>();
function forSecret(secret: string) {
  let entry = secrets.get(secret);
  if (!entry) {
    entry = {
      key: createSecretKey(Buffer.from(secret, 'utf8')),
      verified: new LRUCache<string, Verified>({ max: VERIFIED_TOKENS_KEPT }),
    };
    secrets.set(secret, entry);
  }
  return entry;
}

/** How many verified tokens each secret keeps (least recently used first out). */
export const VERIFIED_TOKENS_KEPT = 10_000;

/** The caller of a request: null without a token; throws UNAUTHENTICATED for a bad one. */
export function callerFromAuthorization(secret: string, header: string | undefined): Caller | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!m) throw new AuthError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
  const token = m[1];
  const { key, verified } = forSecret(secret);
  const known = verified.get(token);
  if (known) {
    // jsonwebtoken's rule: expired once the current second reaches `exp`.
    if (known.expiresAt === null || Math.floor(Date.now() / 1000) < known.expiresAt) return known.caller;
    verified.delete(token);
  }
  let payload: jwt.JwtPayload | string;
  try {
    payload = jwt.verify(token, key, { algorithms: ['HS256'] });
  } catch {
    throw new AuthError('UNAUTHENTICATED', 'the bearer token is invalid or expired');
  }
  if (typeof payload === 'string' || typeof payload.sub !== 'string' || !payload.sub) {
    throw new AuthError('UNAUTHENTICATED', 'the bearer token has no subject');
  }
  const roles = Array.isArray(payload.roles)
    ? payload.roles.filter((r): r is string => typeof r === 'string')
    : [];
  const caller: Caller = Object.freeze({ sub: payload.sub, roles: Object.freeze(roles) });
  verified.set(token, { caller, expiresAt: typeof payload.exp === 'number' ? payload.exp : null });
  return caller;
}

export const isPlatformAdmin = (c: Caller | null): boolean => !!c && c.roles.includes('platform-admin');

export const isCommunityAdmin = (c: Caller | null, communityId: string): boolean =>
  isPlatformAdmin(c) || (!!c && c.roles.includes(`admin:${communityId}`));

export const isMemberSelf = (c: Caller | null, communityId: string, memberId: string): boolean =>
  !!c && c.sub === memberId && c.roles.includes(`member:${communityId}`);

/** Admins of the community, or the member themself. */
export function assertAdminOrSelf(c: Caller | null, communityId: string, memberId: string): void {
  if (!c) throw new AuthError('UNAUTHENTICATED', 'sign in to see this');
  if (isCommunityAdmin(c, communityId) || isMemberSelf(c, communityId, memberId)) return;
  throw new AuthError('FORBIDDEN', 'you may not see or change this');
}

export function assertCommunityAdmin(c: Caller | null, communityId: string): void {
  if (!c) throw new AuthError('UNAUTHENTICATED', 'sign in to see this');
  if (!isCommunityAdmin(c, communityId)) throw new AuthError('FORBIDDEN', 'you may not see or change this');
}

export function assertPlatformAdmin(c: Caller | null): void {
  if (!c) throw new AuthError('UNAUTHENTICATED', 'sign in to see this');
  if (!isPlatformAdmin(c)) throw new AuthError('FORBIDDEN', 'only a platform admin may do this');
}

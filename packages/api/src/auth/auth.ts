import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';

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
const keys = new Map<string, KeyObject>();
function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    keys.set(secret, key);
  }
  return key;
}

/** The caller of a request: null without a token; throws UNAUTHENTICATED for a bad one. */
export function callerFromAuthorization(secret: string, header: string | undefined): Caller | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!m) throw new AuthError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
  let payload: jwt.JwtPayload | string;
  try {
    payload = jwt.verify(m[1], keyOf(secret), { algorithms: ['HS256'] });
  } catch {
    throw new AuthError('UNAUTHENTICATED', 'the bearer token is invalid or expired');
  }
  if (typeof payload === 'string' || typeof payload.sub !== 'string' || !payload.sub) {
    throw new AuthError('UNAUTHENTICATED', 'the bearer token has no subject');
  }
  const roles = Array.isArray(payload.roles)
    ? payload.roles.filter((r): r is string => typeof r === 'string')
    : [];
  return { sub: payload.sub, roles };
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

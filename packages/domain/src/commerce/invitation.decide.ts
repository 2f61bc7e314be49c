import type { Catalog } from '../catalog/catalog.evolve';
import { ConflictError, FieldChecks, ForbiddenError, NotFoundError } from '../errors';
import type { EpochMs } from '../time';
import type { InvitationAudience, InvitationLinkCreated, InvitationLinkRedeemed } from './commerce.events';
import { promoCodeKey } from './promo-code.decide';

export const INVITATION_AUDIENCES: readonly InvitationAudience[] = [
  'NEW_MEMBERS',
  'EXISTING_MEMBERS',
  'ANYONE',
];
export const MAX_INVITATION_PRICES = 10;

export type InvitationLinkDraft = {
  priceIds: string[];
  audience: InvitationAudience;
  promoCode?: string;
  expiresAt?: EpochMs;
  maxUses?: number;
};

export type InvitationLinkState = InvitationLinkCreated['data'] & { uses: number };

export type RedemptionOutcome = 'ACCEPTED' | 'EXPIRED' | 'USED_UP';

/** An accepted use given back: its Checkout session expired unpaid. */
export type RedemptionRelease = 'RELEASED';

/** A link that can no longer be used: the page answers 410 Gone, GraphQL CONFLICT. */
export class InvitationClosedError extends ConflictError {
  constructor(readonly reason: 'EXPIRED' | 'USED_UP') {
    super(
      reason === 'EXPIRED' ? 'This invitation link has expired' : 'This invitation link has been used up',
    );
  }
}

/** Validates a new link; `token` and `linkId` are chosen by the caller (randomness is I/O). */
export function decideInvitationLink(
  draft: InvitationLinkDraft,
  ctx: { catalog: Catalog; promoCodeKeys: ReadonlySet<string>; now: EpochMs },
): Omit<InvitationLinkCreated['data'], 'communityId' | 'linkId' | 'token' | 'createdAt'> {
  const checks = new FieldChecks();
  const priceIds = [...new Set(draft.priceIds)];
  checks
    .check(
      priceIds.length >= 1 && priceIds.length <= MAX_INVITATION_PRICES,
      'priceIds',
      `must name 1..${MAX_INVITATION_PRICES} prices`,
    )
    .check(
      INVITATION_AUDIENCES.includes(draft.audience),
      'audience',
      'must be NEW_MEMBERS, EXISTING_MEMBERS or ANYONE',
    )
    .check(draft.expiresAt === undefined || draft.expiresAt > ctx.now, 'expiresAt', 'must be in the future')
    .check(
      draft.maxUses === undefined || (Number.isInteger(draft.maxUses) && draft.maxUses >= 1),
      'maxUses',
      'must be at least 1',
    )
    .throwIfAny();
  for (const id of priceIds) {
    const price = ctx.catalog.prices[id];
    if (!price) throw new NotFoundError(`Price ${id} not found`);
    checks.check(price.active, 'priceIds', `price ${id} is superseded: offer its successor`);
  }
  const promo = draft.promoCode === undefined ? undefined : promoCodeKey(draft.promoCode);
  if (promo !== undefined && !ctx.promoCodeKeys.has(promo)) {
    throw new NotFoundError(`Promo code ${draft.promoCode} not found in this community`);
  }
  checks.throwIfAny();
  return {
    audience: draft.audience,
    priceIds,
    ...(promo !== undefined && { promoCode: promo }),
    ...(draft.expiresAt !== undefined && { expiresAt: draft.expiresAt }),
    ...(draft.maxUses !== undefined && { maxUses: draft.maxUses }),
  };
}

/**
 * Whether one more use of a link counts, given the uses accepted before it in log order. Time is the
 * redemption's own (when it was asked for), so a replay decides exactly as the live run did.
 */
export function decideRedemption(
  link: Pick<InvitationLinkState, 'expiresAt' | 'maxUses'>,
  acceptedSoFar: number,
  at: EpochMs,
): RedemptionOutcome {
  if (link.expiresAt !== undefined && at >= link.expiresAt) return 'EXPIRED';
  if (link.maxUses !== undefined && acceptedSoFar >= link.maxUses) return 'USED_UP';
  return 'ACCEPTED';
}

/** Folds redemptions in log order: how many counted and the outcome of each. */
export function foldRedemptions(
  link: Pick<InvitationLinkState, 'linkId' | 'expiresAt' | 'maxUses'>,
  redemptions: readonly InvitationLinkRedeemed['data'][],
): { uses: number; outcomes: Record<string, RedemptionOutcome> } {
  let uses = 0;
  const outcomes: Record<string, RedemptionOutcome> = {};
  for (const r of redemptions) {
    if (r.linkId !== link.linkId || r.redemptionId in outcomes) continue;
    const outcome = decideRedemption(link, uses, r.at);
    outcomes[r.redemptionId] = outcome;
    if (outcome === 'ACCEPTED') uses++;
  }
  return { uses, outcomes };
}

/**
 * May this visitor use the link now? Throws `InvitationClosedError` (expired, used up) or
 * `ForbiddenError` (wrong audience). `isMember` says whether the given member already belongs.
 */
export function assertInvitationOpen(
  link: InvitationLinkState,
  visitor: { memberId?: string; isMember: boolean },
  now: EpochMs,
): void {
  const outcome = decideRedemption(link, link.uses, now);
  if (outcome !== 'ACCEPTED') throw new InvitationClosedError(outcome);
  if (link.audience === 'NEW_MEMBERS' && visitor.memberId !== undefined && visitor.isMember) {
    throw new ForbiddenError('This invitation is for new members only');
  }
  if (link.audience === 'EXISTING_MEMBERS' && (visitor.memberId === undefined || !visitor.isMember)) {
    throw new ForbiddenError('This invitation is for existing members only: sign in as a member');
  }
}

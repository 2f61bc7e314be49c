import { BadUserInputError, ForbiddenError, NotFoundError } from '../errors';
import { buildCatalog, T0 } from '../testing/builders';
import { DAY_MS } from '../time';
import type { InvitationLinkRedeemed } from './commerce.events';
import {
  assertInvitationOpen,
  decideInvitationLink,
  decideRedemption,
  foldRedemptions,
  InvitationClosedError,
  type InvitationLinkState,
} from './invitation.decide';

const catalog = buildCatalog();
const ctx = { catalog, promoCodeKeys: new Set(['SPRING']), now: T0 };

const link = (o: Partial<InvitationLinkState> = {}): InvitationLinkState => ({
  communityId: 'c1',
  linkId: 'l1',
  token: 't',
  audience: 'ANYONE',
  priceIds: ['gold-monthly'],
  createdAt: T0,
  uses: 0,
  ...o,
});
const redemption = (n: number, at = T0 + n): InvitationLinkRedeemed['data'] => ({
  communityId: 'c1',
  linkId: 'l1',
  redemptionId: `r${n}`,
  memberId: `m${n}`,
  at,
});

describe('creating an invitation link', () => {
  it('keeps each price once and identifies the promo code case-insensitively', () => {
    expect(
      decideInvitationLink(
        {
          priceIds: ['gold-monthly', 'gold-monthly', 'g1-once'],
          audience: 'ANYONE',
          promoCode: 'spring',
          maxUses: 3,
        },
        ctx,
      ),
    ).toEqual({ audience: 'ANYONE', priceIds: ['gold-monthly', 'g1-once'], promoCode: 'SPRING', maxUses: 3 });
  });
  it('refuses an unknown price', () =>
    expect(() => decideInvitationLink({ priceIds: ['nope'], audience: 'ANYONE' }, ctx)).toThrow(
      NotFoundError,
    ));
  it('refuses an unknown promo code', () =>
    expect(() =>
      decideInvitationLink({ priceIds: ['gold-monthly'], audience: 'ANYONE', promoCode: 'NOPE' }, ctx),
    ).toThrow(NotFoundError));
  it('refuses an expiry in the past and a maximum below 1', () =>
    expect(() =>
      decideInvitationLink(
        { priceIds: ['gold-monthly'], audience: 'ANYONE', expiresAt: T0, maxUses: 0 },
        ctx,
      ),
    ).toThrow(BadUserInputError));
  it('refuses an empty offer', () =>
    expect(() => decideInvitationLink({ priceIds: [], audience: 'ANYONE' }, ctx)).toThrow(BadUserInputError));
});

describe('invitation uses are decided in log order', () => {
  it('accepts exactly maxUses redemptions, whatever came later', () => {
    const rs = Array.from({ length: 20 }, (_, i) => redemption(i));
    const { uses, outcomes } = foldRedemptions(link({ maxUses: 5 }), rs);
    expect(uses).toBe(5);
    expect(
      Object.entries(outcomes)
        .filter(([, o]) => o === 'ACCEPTED')
        .map(([id]) => id),
    ).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(Object.values(outcomes).filter((o) => o === 'USED_UP')).toHaveLength(15);
  });

  it('decides by log position, not by the time a request says it was made', () => {
    // r9 was asked for earlier but logged first: it takes the only use.
    const { outcomes } = foldRedemptions(link({ maxUses: 1 }), [
      redemption(9, T0 + 9),
      redemption(1, T0 + 1),
    ]);
    expect(outcomes).toEqual({ r9: 'ACCEPTED', r1: 'USED_UP' });
  });

  it('counts a redemption logged twice once', () => {
    expect(foldRedemptions(link({ maxUses: 2 }), [redemption(1), redemption(1), redemption(2)]).uses).toBe(2);
  });

  it('refuses redemptions made at or after the expiry without using up the link', () => {
    const l = link({ expiresAt: T0 + 10, maxUses: 2 });
    expect(decideRedemption(l, 0, T0 + 10)).toBe('EXPIRED');
    expect(foldRedemptions(l, [redemption(1, T0 + 11), redemption(2, T0 + 5)])).toEqual({
      uses: 1,
      outcomes: { r1: 'EXPIRED', r2: 'ACCEPTED' },
    });
  });

  it('never runs out without a maximum', () =>
    expect(decideRedemption(link(), 1_000_000, T0)).toBe('ACCEPTED'));
});

describe('who may use a link', () => {
  it('refuses an expired link as closed', () =>
    expect(() => assertInvitationOpen(link({ expiresAt: T0 - DAY_MS }), { isMember: false }, T0)).toThrow(
      InvitationClosedError,
    ));
  it('refuses a used-up link as closed', () =>
    expect(() => assertInvitationOpen(link({ maxUses: 2, uses: 2 }), { isMember: false }, T0)).toThrow(
      InvitationClosedError,
    ));
  it('keeps NEW_MEMBERS links from existing members', () =>
    expect(() =>
      assertInvitationOpen(link({ audience: 'NEW_MEMBERS' }), { memberId: 'm1', isMember: true }, T0),
    ).toThrow(ForbiddenError));
  it('lets an anonymous visitor use a NEW_MEMBERS link', () =>
    expect(() =>
      assertInvitationOpen(link({ audience: 'NEW_MEMBERS' }), { isMember: false }, T0),
    ).not.toThrow());
  it('keeps EXISTING_MEMBERS links from non-members and anonymous visitors', () => {
    expect(() =>
      assertInvitationOpen(link({ audience: 'EXISTING_MEMBERS' }), { memberId: 'm1', isMember: false }, T0),
    ).toThrow(ForbiddenError);
    expect(() =>
      assertInvitationOpen(link({ audience: 'EXISTING_MEMBERS' }), { isMember: false }, T0),
    ).toThrow(ForbiddenError);
  });
  it('lets anyone use an ANYONE link', () =>
    expect(() => assertInvitationOpen(link(), { memberId: 'm1', isMember: true }, T0)).not.toThrow());
});

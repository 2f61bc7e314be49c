import { BadUserInputError } from '@gatehouse/domain';
import { decodeCursorOrThrow, encodeCursor } from './ledger-events.query';

describe('ledger event cursors', () => {
  it('round-trip the community sequence through base64', () => {
    for (const n of [1, 42, 123_456_789_012]) expect(decodeCursorOrThrow(encodeCursor(n))).toBe(n);
    expect(encodeCursor(7)).toBe(Buffer.from('7').toString('base64'));
  });

  it.each([
    '',
    'not-a-cursor',
    Buffer.from('-1').toString('base64'),
    Buffer.from('1x').toString('base64'),
    Buffer.from('01').toString('base64'),
  ])('refuse a cursor this connection did not issue: %p', (cursor) => {
    expect(() => decodeCursorOrThrow(cursor)).toThrow(BadUserInputError);
  });
});

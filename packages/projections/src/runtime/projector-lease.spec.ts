import { peerPayloads, type PeerMessage } from './projector-lease';

describe('peerPayloads', () => {
  it('sends a small message as one payload', () => {
    const m: PeerMessage = { t: 'progress', p: 'membership', l: [['c1', '0:12']] };
    expect(peerPayloads(m)).toEqual([JSON.stringify(m)]);
  });

  it('splits long lists across payloads under 8,000 bytes, in order, losing nothing', () => {
    const members: [string, string][] = Array.from({ length: 900 }, (_, i) => [
      `community-${i % 7}`,
      `member-é-${i}`,
    ]);
    const catalogs = Array.from({ length: 300 }, (_, i) => `community-${i}`);
    const payloads = peerPayloads({ t: 'access', m: members, c: catalogs });
    expect(payloads.length).toBeGreaterThan(2);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8_000);
    const parts = payloads.map((p) => JSON.parse(p) as Extract<PeerMessage, { t: 'access' }>);
    expect(parts.every((p) => p.t === 'access')).toBe(true);
    expect(parts.flatMap((p) => p.m)).toEqual(members);
    expect(parts.flatMap((p) => p.c)).toEqual(catalogs);

    const passed: [string, string][] = Array.from({ length: 2_000 }, (_, i) => [
      `community-${i}`,
      `${i}:${i}`,
    ]);
    const progress = peerPayloads({ t: 'progress', p: 'archive', l: passed }).map(
      (p) => JSON.parse(p) as Extract<PeerMessage, { t: 'progress' }>,
    );
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.every((p) => p.p === 'archive')).toBe(true);
    expect(progress.flatMap((p) => p.l)).toEqual(passed);
  });
});

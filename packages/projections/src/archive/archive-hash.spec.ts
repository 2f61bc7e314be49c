import { createHash } from 'node:crypto';
import { chainHash, GENESIS_HASH, type EventEnvelope } from '@gatehouse/ledger';
import { archiveHash, archivedEnvelope } from './archive-hash';

const envelope: EventEnvelope = {
  id: 'evt_1',
  type: 'customer.subscription.created',
  communityId: 'com_1',
  subject: 'cus_1',
  occurredAt: '2026-01-02T03:04:05.678Z',
  recordedAt: '2026-01-02T03:04:06.000Z',
  source: 'stripe',
  actor: null,
  causationId: null,
  correlationId: 'corr_1',
  schemaVersion: 1,
  data: { z: 1, a: { y: [1, 2], b: 'x' } },
};

describe('archive hash', () => {
  it('is sha256 of the previous hash followed by the canonical envelope, with sorted keys', () => {
    const canonical =
      '{"actor":null,"causationId":null,"communityId":"com_1","correlationId":"corr_1","data":{"a":{"b":"x","y":[1,2]},"z":1},' +
      '"id":"evt_1","occurredAt":"2026-01-02T03:04:05.678Z","recordedAt":"2026-01-02T03:04:06.000Z","schemaVersion":1,' +
      '"source":"stripe","subject":"cus_1","type":"customer.subscription.created"}';
    const expected = createHash('sha256')
      .update(GENESIS_HASH + canonical)
      .digest('hex');
    expect(archiveHash(GENESIS_HASH, envelope)).toBe(expected);
  });

  it("equals the ledger's chain link for envelopes whose times are already in toISOString form", () => {
    expect(archiveHash('ab'.repeat(32), envelope)).toBe(chainHash('ab'.repeat(32), envelope));
  });

  it('normalises times so the link can be recomputed from timestamptz columns', () => {
    const loose = {
      ...envelope,
      occurredAt: '2026-01-02T04:04:05.678+01:00',
      recordedAt: '2026-01-02T03:04:06Z',
    };
    expect(archivedEnvelope(loose)).toEqual(envelope);
    expect(archiveHash(GENESIS_HASH, loose)).toBe(archiveHash(GENESIS_HASH, envelope));
  });

  it('changes when any byte of the data changes', () => {
    expect(archiveHash(GENESIS_HASH, { ...envelope, data: { z: 2, a: { y: [1, 2], b: 'x' } } })).not.toBe(
      archiveHash(GENESIS_HASH, envelope),
    );
  });
});

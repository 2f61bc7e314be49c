import { InMemoryLedger } from '@gatehouse/projections';
import type { Ledger, NewEvent } from '@gatehouse/ledger';
import { RegionRoutedLedger } from './region-ledger';

const event = (id: string, communityId: string): NewEvent => ({
  id,
  type: 'TierDefined',
  communityId,
  source: 'admin',
  occurredAt: '2026-01-01T00:00:00.000Z',
  data: {},
});

async function ids(ledger: Ledger): Promise<string[]> {
  const out: string[] = [];
  for await (const e of ledger.read()) out.push(e.id);
  return out;
}

describe('RegionRoutedLedger', () => {
  const us = new InMemoryLedger();
  const inLedger = new InMemoryLedger();
  const routed = new RegionRoutedLedger(
    [
      { region: 'us', ledger: us },
      { region: 'in', ledger: inLedger },
    ],
    { region: 'us', ledger: us },
  );

  it('appends each event to the ledger of its community’s region', async () => {
    await routed.append([event('evt_us', 'us_club'), event('evt_in', 'in_club'), event('evt_home', 'club')]);
    expect(await ids(us)).toEqual(['evt_us', 'evt_home']);
    expect(await ids(inLedger)).toEqual(['evt_in']);
  });

  it('tells which ids it holds, asking every region', async () => {
    expect(await routed.holds(['evt_in', 'evt_never', 'evt_home'])).toEqual(new Set(['evt_in', 'evt_home']));
    expect(await routed.holds([])).toEqual(new Set());
  });
});

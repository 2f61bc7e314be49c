import type { NewEvent } from '@gatehouse/ledger';

let counter = 0;

/** A valid new ledger event with overrides; ids are unique per call unless given. */
export function aNewEvent(overrides: Partial<NewEvent> = {}): NewEvent {
  counter++;
  return {
    id: `evt_test_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`,
    type: 'MemberJoined',
    communityId: 'com_a',
    subject: `mem_${counter % 17}`,
    occurredAt: new Date(Date.UTC(2026, 0, 1) + counter * 1000).toISOString(),
    source: 'admin',
    actor: 'usr_admin',
    data: { n: counter, note: 'hello', nested: { b: 2, a: [1, 'x', null] } },
    ...overrides,
  };
}

/** `count` events spread over `communities` communities, in order. */
export function manyEvents(count: number, communities = 3): NewEvent[] {
  return Array.from({ length: count }, (_, i) => aNewEvent({ communityId: `com_${i % communities}` }));
}

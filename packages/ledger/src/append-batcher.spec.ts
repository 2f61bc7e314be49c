import { AppendBatcher } from './append-batcher';
import { prepareBatch } from './envelope';
import { LedgerUnavailableError } from './ledger.errors';
import type { AppendResult, NewEvent } from './ledger.port';

const event = (id: string): NewEvent => ({
  id,
  type: 't',
  communityId: 'c',
  occurredAt: '2026-01-01T00:00:00.000Z',
  source: 'stripe',
  data: {},
});

/** A ledger answering after 5 ms; `order` (if given) gets `sent <ids>` for each call. */
function fakeLedger(fail?: (ids: string[]) => boolean, order?: string[]) {
  const calls: string[][] = [];
  const seen = new Set<string>();
  return {
    calls,
    async append(events: NewEvent[]): Promise<AppendResult[]> {
      const ids = events.map((e) => e.id!);
      calls.push(ids);
      order?.push(`sent ${ids.join(',')}`);
      await new Promise((r) => setTimeout(r, 5));
      if (fail?.(ids)) throw new Error(`refused ${ids.join(',')}`);
      return ids.map((id, i) => {
        const appended = !seen.has(id);
        seen.add(id);
        return { id, position: `p-${id}-${i}`, appended };
      });
    },
  };
}

describe('AppendBatcher', () => {
  it('writes concurrent appends as one batch and gives each caller its own results', async () => {
    const ledger = fakeLedger();
    const batcher = new AppendBatcher(ledger);
    const results = await Promise.all(['a', 'b', 'c'].map((id) => batcher.append([event(id)])));
    expect(ledger.calls).toEqual([['a', 'b', 'c']]);
    expect(results.map((r) => r[0].id)).toEqual(['a', 'b', 'c']);
  });

  it('keeps appending arrivals that come while a batch is being written, in order', async () => {
    const ledger = fakeLedger();
    const batcher = new AppendBatcher(ledger);
    const first = batcher.append([event('a')]);
    await new Promise((r) => setImmediate(r));
    const later = await Promise.all([batcher.append([event('b')]), batcher.append([event('c')])]);
    await first;
    expect(ledger.calls).toEqual([['a'], ['b', 'c']]);
    expect(later.map((r) => r[0].id)).toEqual(['b', 'c']);
  });

  it('retries callers one by one when a batch fails, so one bad event fails alone', async () => {
    const ledger = fakeLedger((ids) => ids.includes('bad'));
    const batcher = new AppendBatcher(ledger);
    const outcomes = await Promise.allSettled(['a', 'bad', 'c'].map((id) => batcher.append([event(id)])));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('fails every caller of a batch at once when the ledger is unavailable: one by one would only wait longer', async () => {
    const ledger = fakeLedger();
    const down = new LedgerUnavailableError('PostgreSQL ledger unavailable (append): no answer');
    ledger.append = async (events) => {
      ledger.calls.push(events.map((e) => e.id!));
      throw down;
    };
    const batcher = new AppendBatcher(ledger);
    const outcomes = await Promise.allSettled(['a', 'b', 'c'].map((id) => batcher.append([event(id)])));
    expect(outcomes).toEqual([0, 1, 2].map(() => ({ status: 'rejected', reason: down })));
    expect(ledger.calls).toEqual([['a', 'b', 'c']]);
  });

  it('reports a duplicate within one batch as not appended for the later caller', async () => {
    const ledger = fakeLedger();
    const batcher = new AppendBatcher(ledger);
    const [one, two] = await Promise.all([batcher.append([event('x')]), batcher.append([event('x')])]);
    expect(one[0].appended).toBe(true);
    expect(two[0].appended).toBe(false);
  });

  it('never puts more than the limit in one batch', async () => {
    const ledger = fakeLedger();
    const batcher = new AppendBatcher(ledger, 2);
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => batcher.append([event(id)])));
    expect(ledger.calls.every((c) => c.length <= 2)).toBe(true);
    expect(ledger.calls.flat()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('sends what queued meanwhile before answering the callers of the batch just written', async () => {
    const order: string[] = [];
    const batcher = new AppendBatcher(fakeLedger(undefined, order), 500, 1);
    const answered = (id: string) => batcher.append([event(id)]).then(() => order.push(`answered ${id}`));
    const first = answered('a');
    await new Promise((r) => setImmediate(r));
    const later = [answered('b'), answered('c')];
    await Promise.all([first, ...later]);
    expect(order).toEqual(['sent a', 'sent b,c', 'answered a', 'answered b', 'answered c']);
  });

  it('answers a caller whose batch of one failed, after sending the next batch', async () => {
    const order: string[] = [];
    const batcher = new AppendBatcher(
      fakeLedger((ids) => ids.includes('bad'), order),
      500,
      1,
    );
    const bad = batcher.append([event('bad')]).catch((err: Error) => order.push(`failed: ${err.message}`));
    await new Promise((r) => setImmediate(r));
    const good = batcher.append([event('good')]);
    await Promise.all([bad, good]);
    expect(order).toEqual(['sent bad', 'sent good', 'failed: refused bad']);
  });

  it('serializes each payload as it is queued: the batch stores it as it was then', async () => {
    const stored: string[] = [];
    const ledger = {
      async append(events: NewEvent[]): Promise<AppendResult[]> {
        stored.push(...prepareBatch(events, new Date()).json.map((j) => j.data));
        return events.map((e) => ({ id: e.id!, position: `p-${e.id}`, appended: true }));
      },
    };
    const batcher = new AppendBatcher(ledger);
    const queued = { ...event('a'), data: { n: 1 } };
    const appended = batcher.append([queued]);
    queued.data.n = 2;
    await appended;
    expect(stored).toEqual(['{"n":1}']);
    // A payload it cannot serialize is left to the ledger, which refuses it as it would have.
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(batcher.append([{ ...event('b'), data: circular }])).rejects.toThrow(TypeError);
  });

  it('writes the next batch while one commits, never more than maxInFlight at once', async () => {
    let running = 0;
    let most = 0;
    const calls: string[][] = [];
    const ledger = {
      async append(events: NewEvent[]): Promise<AppendResult[]> {
        calls.push(events.map((e) => e.id!));
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 10));
        running--;
        return events.map((e) => ({ id: e.id!, position: `p-${e.id}`, appended: true }));
      },
    };
    const batcher = new AppendBatcher(ledger, 500, 2);
    const pending: Promise<AppendResult[]>[] = [];
    // Arrivals spread over time, as webhooks come: each turn adds one.
    for (let i = 0; i < 12; i++) {
      pending.push(batcher.append([event(`e${i}`)]));
      await new Promise((r) => setTimeout(r, 2));
    }
    const results = await Promise.all(pending);
    expect(results.map((r) => r[0].id)).toEqual(Array.from({ length: 12 }, (_, i) => `e${i}`));
    expect(most).toBe(2);
    expect(calls.flat().sort()).toEqual(Array.from({ length: 12 }, (_, i) => `e${i}`).sort());
    // Batches still group what arrived while others were written.
    expect(calls.length).toBeLessThan(12);
  });
});

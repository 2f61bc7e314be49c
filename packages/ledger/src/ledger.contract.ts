import { randomUUID } from 'node:crypto';
import { LedgerPayloadTooLargeError, LedgerUnavailableError, LedgerValidationError } from './ledger.errors';
import type { Ledger, NewEvent, Position, RecordedEvent } from './ledger.port';

/** One empty ledger store for one test; `reopen()` gives another adapter instance over the same store. */
export type LedgerHarness = {
  ledger: Ledger;
  reopen(): Promise<Ledger>;
  dispose(): Promise<void>;
};

const T0 = Date.UTC(2026, 0, 1);

function newEvent(communityId: string, n: number, overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    type: 'TierDefined',
    communityId,
    source: 'admin',
    occurredAt: new Date(T0 + n * 1000).toISOString(),
    data: { n },
    ...overrides,
  };
}

async function collect(it: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits (up to 10 s) until a reader of the whole log after `after` can see `n` events. On
 * PostgreSQL an append is seen there once every transaction that began before it has ended, and
 * other suites share the server; in a quiet database that is at once.
 */
async function visible(ledger: Ledger, n: number, after?: Position): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await ledger.countAfter(after, n)) < n && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
}

function community(): string {
  return `c-${randomUUID()}`;
}

/** The behaviour every `Ledger` adapter must show. Call inside a `describe` with a harness factory. */
export function ledgerContract(name: string, makeLedger: () => Promise<LedgerHarness>): void {
  describe(`Ledger contract: ${name}`, () => {
    let h: LedgerHarness;
    let ledger: Ledger;

    beforeEach(async () => {
      h = await makeLedger();
      ledger = h.ledger;
    });

    afterEach(async () => {
      await h.dispose();
    });

    it('keeps a total order per community, equal to the order of sequential appends', async () => {
      const communities = [community(), community(), community()];
      const appended = new Map<string, Position[]>();
      await Promise.all(
        communities.map(async (c) => {
          const positions: Position[] = [];
          for (let i = 0; i < 15; i++) {
            const [r] = await ledger.append([newEvent(c, i, { id: `${c}-${i}` })]);
            positions.push(r.position);
          }
          appended.set(c, positions);
        }),
      );
      for (const c of communities) {
        const events = await collect(ledger.read({ communityId: c }));
        expect(events.map((e) => e.id)).toEqual(Array.from({ length: 15 }, (_, i) => `${c}-${i}`));
        expect(events.map((e) => e.position)).toEqual(appended.get(c));
        for (let i = 1; i < events.length; i++) {
          expect(ledger.comparePositions(events[i - 1].position, events[i].position)).toBeLessThan(0);
          expect(ledger.comparePositions(events[i].position, events[i - 1].position)).toBeGreaterThan(0);
        }
        expect(ledger.comparePositions(events[0].position, events[0].position)).toBe(0);
      }
    });

    it('records the full envelope with defaults and a UUIDv7 id', async () => {
      const c = community();
      const [r] = await ledger.append([
        newEvent(c, 1, { subject: 'm-1', actor: 'admin-1', correlationId: 'corr' }),
      ]);
      expect(r.appended).toBe(true);
      expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const [e] = await collect(ledger.read({ communityId: c }));
      expect(e).toEqual({
        id: r.id,
        type: 'TierDefined',
        communityId: c,
        subject: 'm-1',
        occurredAt: new Date(T0 + 1000).toISOString(),
        recordedAt: expect.any(String),
        source: 'admin',
        actor: 'admin-1',
        causationId: null,
        correlationId: 'corr',
        schemaVersion: 1,
        data: { n: 1 },
        position: r.position,
      });
      expect(Number.isNaN(Date.parse(e.recordedAt))).toBe(false);
    });

    it('treats a repeated id as a no-op reporting the original position', async () => {
      const c = community();
      const [first] = await ledger.append([newEvent(c, 1, { id: 'evt_dup' })]);
      await ledger.append([newEvent(c, 2)]);
      const [again] = await ledger.append([newEvent(c, 3, { id: 'evt_dup', data: { changed: true } })]);
      expect(first.appended).toBe(true);
      expect(again).toEqual({ id: 'evt_dup', position: first.position, appended: false });
      const events = await collect(ledger.read({ communityId: c }));
      expect(events.filter((e) => e.id === 'evt_dup')).toHaveLength(1);
      expect(events.find((e) => e.id === 'evt_dup')?.data).toEqual({ n: 1 });
    });

    it('writes an id repeated inside one batch, or already recorded, once', async () => {
      const c = community();
      const [old] = await ledger.append([newEvent(c, 0, { id: 'evt_old' })]);
      const results = await ledger.append([
        newEvent(c, 1, { id: 'evt_a' }),
        newEvent(c, 2, { id: 'evt_old' }),
        newEvent(c, 3, { id: 'evt_a' }),
        newEvent(c, 4, { id: 'evt_b' }),
      ]);
      expect(results.map((r) => [r.id, r.appended])).toEqual([
        ['evt_a', true],
        ['evt_old', false],
        ['evt_a', false],
        ['evt_b', true],
      ]);
      expect(results[1].position).toBe(old.position);
      expect(results[2].position).toBe(results[0].position);
      const events = await collect(ledger.read({ communityId: c }));
      expect(events.map((e) => [e.id, e.data])).toEqual([
        ['evt_old', { n: 0 }],
        ['evt_a', { n: 1 }],
        ['evt_b', { n: 4 }],
      ]);
    });

    it('has one effect for 20 concurrent appends of the same id, all reporting the same position', async () => {
      const c = community();
      const id = `evt_${randomUUID()}`;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => ledger.append([newEvent(c, i, { id })])),
      );
      const flat = results.map(([r]) => r);
      expect(flat.filter((r) => r.appended)).toHaveLength(1);
      expect(new Set(flat.map((r) => r.position)).size).toBe(1);
      const events = await collect(ledger.read({ communityId: c }));
      expect(events.map((e) => e.id)).toEqual([id]);
      expect(events[0].position).toBe(flat[0].position);
    });

    it('reads strictly after a given position', async () => {
      const c = community();
      const results = await ledger.append(
        Array.from({ length: 10 }, (_, i) => newEvent(c, i, { id: `${c}-${i}` })),
      );
      const after = await collect(ledger.read({ communityId: c, after: results[4].position, pageSize: 2 }));
      expect(after.map((e) => e.id)).toEqual([5, 6, 7, 8, 9].map((i) => `${c}-${i}`));
      expect(await collect(ledger.read({ communityId: c, after: results[9].position }))).toEqual([]);
    });

    it('filters by event type', async () => {
      const c = community();
      await ledger.append([
        newEvent(c, 1, { type: 'TierDefined' }),
        newEvent(c, 2, { type: 'PriceAdded' }),
        newEvent(c, 3, { type: 'ComplimentaryAccessGranted' }),
        newEvent(c, 4, { type: 'PriceAdded' }),
      ]);
      const prices = await collect(ledger.read({ communityId: c, types: ['PriceAdded'] }));
      expect(prices.map((e) => e.data)).toEqual([{ n: 2 }, { n: 4 }]);
      await visible(ledger, 4);
      const all = await collect(ledger.read({ types: ['PriceAdded', 'TierDefined'] }));
      expect(all.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
    });

    it('reads every community, keeping each community in order', async () => {
      const communities = [community(), community(), community(), community()];
      const batch: NewEvent[] = [];
      for (let i = 0; i < 40; i++) batch.push(newEvent(communities[i % 4], i, { id: `e-${i}` }));
      await ledger.append(batch.slice(0, 20));
      await ledger.append(batch.slice(20));
      await visible(ledger, 40);
      const events = await collect(ledger.read({ pageSize: 7 }));
      expect(events.map((e) => e.id).sort()).toEqual(batch.map((e) => e.id).sort());
      for (const c of communities) {
        const ns = events.filter((e) => e.communityId === c).map((e) => (e.data as { n: number }).n);
        expect(ns).toEqual([...ns].sort((a, b) => a - b));
      }
    });

    it('resumes a subscription from the stored checkpoint after a restart without loss or repeat', async () => {
      const communities = [community(), community(), community()];
      const first = Array.from({ length: 60 }, (_, i) => newEvent(communities[i % 3], i, { id: `s-${i}` }));
      await ledger.append(first);

      const seen: RecordedEvent[] = [];
      let checkpoint: Position | undefined;
      const sub = ledger.subscribe('contract', { maxBatch: 7 }, async (batch) => {
        expect(batch.length).toBeLessThanOrEqual(7);
        for (const e of batch) {
          seen.push(e);
          checkpoint = ledger.advance(checkpoint, e);
        }
      });
      await until(() => seen.length >= 20, 20_000, 'first deliveries');
      await sub.stop();
      await sub.done;
      const countAtStop = seen.length;

      const later = Array.from({ length: 30 }, (_, i) =>
        newEvent(communities[i % 3], 100 + i, { id: `s-${100 + i}` }),
      );
      await ledger.append(later.slice(0, 15));

      const restarted = await h.reopen();
      const sub2 = restarted.subscribe('contract', { after: checkpoint, maxBatch: 50 }, async (batch) => {
        for (const e of batch) {
          seen.push(e);
          checkpoint = restarted.advance(checkpoint, e);
        }
      });
      // events appended while the subscription is live are delivered too
      await restarted.append(later.slice(15));
      await until(() => seen.length >= 90, 30_000, 'all deliveries after the restart');
      await new Promise((r) => setTimeout(r, 300));
      await sub2.stop();
      await sub2.done;

      expect(countAtStop).toBeGreaterThanOrEqual(20);
      const ids = seen.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.sort()).toEqual([...first, ...later].map((e) => e.id!).sort());
      for (const c of communities) {
        const ns = seen.filter((e) => e.communityId === c).map((e) => (e.data as { n: number }).n);
        expect(ns).toEqual([...ns].sort((a, b) => a - b));
      }
    });

    it('ends a subscription with the handler error', async () => {
      await ledger.append([newEvent(community(), 1)]);
      const sub = ledger.subscribe('failing', {}, async () => {
        throw new Error('projection broke');
      });
      await expect(sub.done).rejects.toThrow('projection broke');
    });

    it('ends a subscription with the handler error also when it says something is unavailable', async () => {
      // An adapter waits out its own outages; the handler's (its read models' database, say) are its
      // caller's to retry.
      await ledger.append([newEvent(community(), 1)]);
      const gone = new LedgerUnavailableError('read models unavailable');
      const sub = ledger.subscribe('failing-unavailable', {}, async () => {
        throw gone;
      });
      await expect(sub.done).rejects.toBe(gone);
    });

    it('round-trips 10,000 events appended in batches: every id once, in order per community', async () => {
      const communities = Array.from({ length: 10 }, community);
      const events = Array.from({ length: 10_000 }, (_, i) =>
        newEvent(communities[i % 10], i, { id: `bulk-${i}` }),
      );
      for (let i = 0; i < events.length; i += 1_000) {
        const chunk = events.slice(i, i + 1_000);
        const results = await ledger.append(chunk);
        expect(results.every((r) => r.appended)).toBe(true);
      }
      const read = await collect(ledger.read({ pageSize: 1_000 }));
      expect(read).toHaveLength(10_000);
      expect(new Set(read.map((e) => e.id)).size).toBe(10_000);
      const next = new Map<string, number>();
      for (const e of read) {
        const n = (e.data as { n: number }).n;
        expect(n).toBeGreaterThan(next.get(e.communityId) ?? -1);
        next.set(e.communityId, n);
      }
    }, 120_000);

    it('refuses a batch with an invalid event and writes nothing of it', async () => {
      const c = community();
      const bad = { ...newEvent(c, 2), occurredAt: 'yesterday', source: 'email' } as unknown as NewEvent;
      await expect(ledger.append([newEvent(c, 1), bad])).rejects.toThrow(LedgerValidationError);
      const err = await ledger.append([newEvent(c, 1), bad]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'LEDGER_INVALID_EVENT', index: 1 });
      expect(Object.keys((err as LedgerValidationError).fields).sort()).toEqual(['occurredAt', 'source']);
      expect(await collect(ledger.read({ communityId: c }))).toEqual([]);
      expect(await ledger.head()).toBeNull();
    });

    it('refuses an event holding the character U+0000 and writes nothing of its batch', async () => {
      const c = community();
      const nul = newEvent(c, 2, { data: { name: 'Meetup\u0000' } });
      await expect(ledger.append([newEvent(c, 1), nul])).rejects.toMatchObject({
        code: 'LEDGER_INVALID_EVENT',
        index: 1,
        fields: { data: expect.stringMatching(/U\+0000/) },
      });
      expect(await collect(ledger.read({ communityId: c }))).toEqual([]);
      // the text backslash-u0000 is not the character, and is kept as given
      await ledger.append([newEvent(c, 3, { data: { path: 'C:\\u0000' } })]);
      expect((await collect(ledger.read({ communityId: c }))).map((e) => e.data)).toEqual([
        { path: 'C:\\u0000' },
      ]);
    });

    it('refuses an event over 1 MiB serialized and writes nothing', async () => {
      const c = community();
      const huge = newEvent(c, 2, { data: { blob: 'x'.repeat(1024 * 1024) } });
      await expect(ledger.append([newEvent(c, 1), huge])).rejects.toThrow(LedgerPayloadTooLargeError);
      expect(await collect(ledger.read({ communityId: c }))).toEqual([]);
    });

    it('reports the head of a community and of the whole log', async () => {
      const a = community();
      const b = community();
      expect(await ledger.head()).toBeNull();
      expect(await ledger.head(a)).toBeNull();
      const ra = await ledger.append([newEvent(a, 1), newEvent(a, 2)]);
      const rb = await ledger.append([newEvent(b, 3)]);
      expect(await ledger.head(a)).toBe(ra[1].position);
      expect(await ledger.head(b)).toBe(rb[0].position);
      const head = await ledger.head();
      expect(head).not.toBeNull();
      expect(await collect(ledger.read({ after: head! }))).toEqual([]);
      expect(await collect(ledger.read())).toHaveLength(3);
    });

    it('counts the events after a checkpoint, up to a cap', async () => {
      const a = community();
      const b = community();
      const start = await ledger.head();
      const before = start === null ? 0 : await ledger.countAfter(undefined, 1_000_000);
      await ledger.append([newEvent(a, 1), newEvent(b, 2), newEvent(a, 3)]);
      await ledger.append([newEvent(b, 4), newEvent(a, 5)]);
      await visible(ledger, 5, start ?? undefined);
      expect(await ledger.countAfter(start ?? undefined, 100)).toBe(5);
      expect(await ledger.countAfter(start ?? undefined, 3)).toBe(3);
      expect(await ledger.countAfter(undefined, 1_000_000)).toBe(before + 5);
      // A reader's checkpoint after the first three events has two to go; at the head, none.
      let checkpoint = start ?? undefined;
      let read = 0;
      for await (const e of ledger.read({ after: start ?? undefined })) {
        checkpoint = ledger.advance(checkpoint, e);
        if (++read === 3) break;
      }
      expect(await ledger.countAfter(checkpoint, 100)).toBe(2);
      expect(await ledger.countAfter((await ledger.head())!, 100)).toBe(0);
    });

    it('tells which of a list of ids it holds, in any community, and from another instance', async () => {
      const a = community();
      const b = community();
      const id = (x: string) => `evt_holds_${x}_${randomUUID()}`;
      const [inA, inB, never] = [id('a'), id('b'), id('never')];
      await ledger.append([newEvent(a, 1, { id: inA })]);
      await ledger.append([newEvent(b, 2, { id: inB })]);
      expect(await ledger.holds([never, inB, inA, inA])).toEqual(new Set([inA, inB]));
      expect(await ledger.holds([never])).toEqual(new Set());
      expect(await ledger.holds([])).toEqual(new Set());
      const other = await h.reopen();
      expect(await other.holds([inA, never, inB])).toEqual(new Set([inA, inB]));
    });

    it('answers ping while the store is reachable', async () => {
      await expect(ledger.ping()).resolves.toBeUndefined();
    });
  });
}

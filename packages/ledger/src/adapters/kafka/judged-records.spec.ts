import { JudgedRecords, type TopicRecord } from './judged-records';

type Event = { id: string; communityId: string; offset: string };

/** An id index in memory: the first offset claimed for an id (per partition) wins. */
function fakeIndex() {
  const owner = new Map<string, { partition: number; offset: bigint }>();
  const calls: number[] = [];
  let failNext = false;
  return {
    calls,
    failOnce() {
      failNext = true;
    },
    async claim(partition: number, rows: { id: string; offset: bigint }[]): Promise<Set<string>> {
      await new Promise((r) => setImmediate(r));
      if (failNext) {
        failNext = false;
        throw new Error('index unavailable');
      }
      calls.push(rows.length);
      const winners = new Set<string>();
      const first = new Map<string, bigint>();
      for (const r of rows) if (!first.has(r.id)) first.set(r.id, r.offset);
      for (const [id, offset] of first) {
        const o = owner.get(id);
        if (!o || (o.partition === partition && o.offset > offset)) owner.set(id, { partition, offset });
        const now = owner.get(id)!;
        if (now.partition === partition && now.offset === offset) winners.add(id);
      }
      return winners;
    },
  };
}

const record = (offset: number, id: string): TopicRecord => ({
  offset: BigInt(offset),
  value: Buffer.from(JSON.stringify({ id, communityId: 'c' })),
});

function setup(max?: number) {
  const index = fakeIndex();
  let decoded = 0;
  const judged = new JudgedRecords<Event>(
    (_partition, r) => {
      decoded++;
      return { ...(JSON.parse(r.value.toString('utf8')) as Event), offset: String(r.offset) };
    },
    (partition, rows) => index.claim(partition, rows),
    max,
  );
  return { index, judged, decoded: () => decoded };
}

const delivered = (js: { event: Event; delivered: boolean }[]) =>
  js.filter((j) => j.delivered).map((j) => `${j.event.id}@${j.event.offset}`);

describe('JudgedRecords', () => {
  it('decodes and judges each record once however many readers come by', async () => {
    const { index, judged, decoded } = setup();
    const batch = Array.from({ length: 50 }, (_, i) => record(i, `e${i}`));
    // Three readers at once (consumers following the head get the same records together), then one
    // later: the records are decoded once and the index asked once.
    const readers = await Promise.all([0, 1, 2].map(() => judged.judge(0, batch)));
    const later = await judged.judge(0, batch.slice(10, 30));
    for (const r of readers) expect(delivered(r)).toEqual(batch.map((_, i) => `e${i}@${i}`));
    expect(delivered(later)).toEqual(batch.slice(10, 30).map((_, i) => `e${i + 10}@${i + 10}`));
    expect(decoded()).toBe(50);
    expect(index.calls).toEqual([50]);
    const before = { decoded: decoded(), claims: index.calls.length };
    await judged.judge(0, batch);
    expect(decoded()).toBe(before.decoded);
    expect(index.calls.length).toBe(before.claims);
  });

  it('delivers the first record of an id and not its copies, in one batch or a later one', async () => {
    const { judged } = setup();
    const first = await judged.judge(0, [record(0, 'a'), record(1, 'b'), record(2, 'a')]);
    expect(delivered(first)).toEqual(['a@0', 'b@1']);
    const next = await judged.judge(0, [record(3, 'b'), record(4, 'c')]);
    expect(delivered(next)).toEqual(['c@4']);
    // A reader passing the same records later gets the same judgement.
    expect(delivered(await judged.judge(0, [record(2, 'a'), record(3, 'b'), record(4, 'c')]))).toEqual([
      'c@4',
    ]);
  });

  it('stops delivering a kept record once an earlier copy of its id took the id over', async () => {
    const { judged } = setup();
    // A reader at the head meets x at offset 100 first; a reader behind then meets a copy at 5 (one
    // produced behind the adapter's back), and the index moves x there.
    expect(delivered(await judged.judge(0, [record(100, 'x')]))).toEqual(['x@100']);
    expect(delivered(await judged.judge(0, [record(5, 'x')]))).toEqual(['x@5']);
    // The reader behind reaches offset 100: a copy now, as the index would say.
    expect(delivered(await judged.judge(0, [record(100, 'x')]))).toEqual([]);
  });

  it('keys records by partition as well as offset, and leaves tombstones out', async () => {
    const { judged } = setup();
    const p0 = await judged.judge(0, [record(0, 'x'), { offset: 1n, value: null }]);
    const p1 = await judged.judge(1, [record(0, 'y')]);
    expect(delivered(p0)).toEqual(['x@0']);
    expect(p0).toHaveLength(1);
    expect(delivered(p1)).toEqual(['y@0']);
  });

  it('keeps at most `max` records', async () => {
    const { judged } = setup(100);
    for (let start = 0; start < 1_000; start += 50) {
      await judged.judge(
        0,
        Array.from({ length: 50 }, (_, i) => record(start + i, `e${start + i}`)),
      );
      expect(judged.size).toBeLessThanOrEqual(100);
    }
  });

  it('keeps nothing when the index cannot judge: the next reader asks again', async () => {
    const { index, judged } = setup();
    index.failOnce();
    // Two readers at once: both see the failure (and no unhandled rejection is left behind).
    const both = [judged.judge(0, [record(0, 'a')]), judged.judge(0, [record(0, 'a')])];
    for (const r of both) await expect(r).rejects.toThrow('index unavailable');
    expect(judged.size).toBe(0);
    expect(delivered(await judged.judge(0, [record(0, 'a')]))).toEqual(['a@0']);
  });
});
